"""Loaders for the DANCE benchmark datasets (offline first, sha256-verified)."""

from skdance.datasets._base import DatasetNotFoundError, get_data_home
from skdance.datasets._deconvolution import (
    DECONVOLUTION_DATASETS,
    load_deconvolution_dataset,
)
from skdance.datasets._imputation import IMPUTATION_DATASETS, load_imputation_dataset
from skdance.datasets._loaders import (
    load_mouse_bladder_cell,
    load_mouse_es_cell,
    load_pbmc3k,
    load_pbmc68k_reduced,
    load_pbmc_4k_subset,
    load_pbmc_10x_4k,
    load_worm_neuron_cell,
)
from skdance.datasets._multimodal import (
    MULTIMODAL_DATASETS,
    load_multimodal,
    read_competition,
    split_multimodal,
)
from skdance.datasets._pseudo_spots import make_pseudo_spots
from skdance.datasets._scdeepsort import MCA_BENCHMARKS, load_scdeepsort
from skdance.datasets._spatial import (
    SPATIAL_DATASETS,
    load_spatial_dataset,
    read_layer_labels,
    read_visium,
)

__all__ = [
    "DatasetNotFoundError",
    "DECONVOLUTION_DATASETS",
    "IMPUTATION_DATASETS",
    "MCA_BENCHMARKS",
    "MULTIMODAL_DATASETS",
    "SPATIAL_DATASETS",
    "get_data_home",
    "load_deconvolution_dataset",
    "load_imputation_dataset",
    "load_mouse_bladder_cell",
    "load_multimodal",
    "load_mouse_es_cell",
    "load_pbmc3k",
    "load_pbmc68k_reduced",
    "load_pbmc_10x_4k",
    "load_pbmc_4k_subset",
    "load_scdeepsort",
    "load_spatial_dataset",
    "load_worm_neuron_cell",
    "make_pseudo_spots",
    "read_competition",
    "read_layer_labels",
    "read_visium",
    "split_multimodal",
]
