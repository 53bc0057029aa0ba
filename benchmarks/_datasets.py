"""What a benchmark dataset is (``DatasetSpec``) and what loading it gives (``Data``).

``Data`` carries every aligned view of one set of cells (or spots): the first
modality ``X``, labels ``y``, a paired second modality ``mod2`` (ADT, ATAC;
same cells, same order), spatial ``coords`` and ``batch``.  The single-cell
tasks use ``X`` and ``y``; the spatial-domain and multimodal tasks read
``coords`` and ``mod2``.  ``DATASETS`` is the catalogue the tasks draw from.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from skdance import datasets
from skdance.preprocessing import filter_genes


def _n_rows(a):
    return a.shape[0] if hasattr(a, "shape") else len(a)


def _take(a, rows):
    if a is None:
        return None
    if hasattr(a, "iloc"):
        return a.iloc[rows]
    return a[rows]


@dataclass
class Data:
    """One loaded dataset; every field is aligned by row (cell or spot).

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_obs, n_features)
        The first modality (mod1): gene expression, counts unless the
        dataset's description says otherwise.
    y : array-like of shape (n_obs,) or None
        Labels (cell type, cluster, spatial domain).
    mod2 : array-like or sparse matrix of shape (n_obs, n_mod2) or None
        A second modality measured in the same cells (ADT, ATAC).
    coords : ndarray of shape (n_obs, n_dims) or None
        Spatial coordinates of the cells or spots.
    batch : array-like of shape (n_obs,) or None
        Batch of every row.
    var_names, mod2_names : array-like or None
        Feature names of ``X`` and ``mod2``.
    """

    X: Any
    y: Any = None
    mod2: Any = None
    coords: Any = None
    batch: Any = None
    var_names: Any = None
    mod2_names: Any = None

    _ALIGNED = ("y", "mod2", "coords", "batch")

    def __post_init__(self):
        n = _n_rows(self.X)
        for name in self._ALIGNED:
            value = getattr(self, name)
            if value is not None and _n_rows(value) != n:
                raise ValueError(
                    f"{name} has {_n_rows(value)} rows but X has {n}: the views "
                    "of a dataset must be aligned by row."
                )

    @property
    def n_obs(self):
        """Number of cells (or spots)."""
        return _n_rows(self.X)

    @property
    def paired(self):
        """Whether a second modality is present."""
        return self.mod2 is not None

    @property
    def spatial(self):
        """Whether spatial coordinates are present."""
        return self.coords is not None

    def __iter__(self):
        """Unpack as ``X, y`` (the single-modality tasks' view)."""
        return iter((self.X, self.y))

    def subset(self, rows):
        """Return the rows ``rows`` of every aligned view."""
        return replace(
            self,
            X=_take(self.X, rows),
            **{name: _take(getattr(self, name), rows) for name in self._ALIGNED},
        )

    def select_features(self, columns):
        """Return the data with only the columns ``columns`` of ``X``."""
        names = None if self.var_names is None else np.asarray(self.var_names)[columns]
        return replace(self, X=self.X[:, columns], var_names=names)

    @classmethod
    def from_anndata(
        cls, adata, *, label_key=None, spatial_key=None, batch_key=None, layer=None
    ):
        """Build from an AnnData (``obs[label_key]``, ``obsm[spatial_key]``...).

        Parameters
        ----------
        adata : AnnData
            Cells (or spots) x genes.
        label_key, batch_key : str or None
            Columns of ``adata.obs`` holding the labels and the batch.
        spatial_key : str or None
            Key of ``adata.obsm`` holding the coordinates (e.g. "spatial").
        layer : str or None
            Layer to use as ``X`` instead of ``adata.X``.
        """
        return cls(
            X=adata.X if layer is None else adata.layers[layer],
            y=None if label_key is None else adata.obs[label_key].to_numpy(),
            coords=None
            if spatial_key is None
            else np.asarray(adata.obsm[spatial_key], dtype=float),
            batch=None if batch_key is None else adata.obs[batch_key].to_numpy(),
            var_names=np.asarray(adata.var_names),
        )

    @classmethod
    def from_paired(
        cls,
        mod1,
        mod2,
        *,
        label_key=None,
        batch_key=None,
        layer=None,
        mod2_layer=None,
    ):
        """Build from two AnnData objects of the same cells (NeurIPS 2021 layout).

        Labels and batch are read from ``mod1.obs``; the two objects must list
        the same cells in the same order.
        """
        if not np.array_equal(np.asarray(mod1.obs_names), np.asarray(mod2.obs_names)):
            raise ValueError(
                "mod1 and mod2 must hold the same cells in the same order."
            )
        data = cls.from_anndata(
            mod1, label_key=label_key, batch_key=batch_key, layer=layer
        )
        return replace(
            data,
            mod2=mod2.X if mod2_layer is None else mod2.layers[mod2_layer],
            mod2_names=np.asarray(mod2.var_names),
        )


@dataclass
class DatasetSpec:
    """How to load one benchmark dataset and what it holds.

    Parameters
    ----------
    name : str
        Name used on the command line (``--datasets``) and in the result rows.
    loader : callable
        ``loader(**kwargs)`` returns ``(X, y)`` or a :class:`Data`.
    kwargs : dict
        Arguments of ``loader``.
    counts : bool
        True when ``X`` holds raw counts, False when it is log-normalised.
    labelled : bool
        Whether ``y`` is present.
    modalities : tuple of str
        ``("gex",)``, or two names for paired data (``("gex", "adt")``).
    spatial : bool
        Whether the loaded data has coordinates.
    min_cells : int or None
        Drop the genes of ``X`` detected in fewer cells (scanpy's QC); None
        keeps all.
    note : str
        How the file relates to DANCE's (shown nowhere but here and in docs).
    """

    name: str
    loader: Callable
    kwargs: dict = field(default_factory=dict)
    counts: bool = True
    labelled: bool = True
    modalities: tuple = ("gex",)
    spatial: bool = False
    min_cells: int | None = 3
    note: str = ""

    @property
    def provides(self):
        """What the loaded data holds beyond ``X``: "labels", "coords", "mod2"."""
        out = set()
        if self.labelled:
            out.add("labels")
        if self.spatial:
            out.add("coords")
        if len(self.modalities) > 1:
            out.add("mod2")
        return out

    def load(self):
        """Load, check the declared views are there, then filter rare genes."""
        try:
            loaded = self.loader(**self.kwargs)
        except datasets.DatasetNotFoundError as exc:
            raise datasets.DatasetNotFoundError(
                f"dataset {self.name!r} is not available: {exc} (only the "
                "shipped sets run without it: python -m benchmarks all --quick)"
            ) from None
        data = loaded if isinstance(loaded, Data) else Data(*loaded)
        declared = {
            "labels": data.y is not None,
            "coords": data.spatial,
            "mod2": data.paired,
        }
        for view, present in declared.items():
            if present != (view in self.provides):
                raise ValueError(
                    f"dataset {self.name!r}: {view} "
                    f"{'present' if present else 'missing'}, against its description."
                )
        if self.min_cells is not None:
            data = data.select_features(filter_genes(data.X, min_cells=self.min_cells))
        return data


def _spatial_loader(name):
    """Load a spatial slice as Data: counts, layers, coordinates."""
    X, y, coords = datasets.load_spatial_dataset(name)
    return Data(X, y, coords=coords)


def _merfish_loader():
    """Load the MERFISH cells as Data: values, cell class, um, z plane as batch."""
    adata = datasets.load_spatial_dataset("merfish_hypothalamus", return_anndata=True)
    return Data(
        sp.csr_matrix(adata.X, dtype=np.float32),
        adata.obs["cell_class"].astype(str).to_numpy(),
        coords=np.asarray(adata.obsm["spatial"], dtype=float),
        batch=adata.obs["z"].to_numpy(dtype=float),
    )


def _paired_loader(name):
    """Load a paired set as Data: GEX, mod2 (competition units), type, batch."""
    rna, mod2 = datasets.load_multimodal(name)
    return Data.from_paired(rna, mod2, label_key="cell_type", batch_key="batch")


DATASETS = {
    d.name: d
    for d in [
        DatasetSpec(
            "worm_neuron_cell",
            datasets.load_worm_neuron_cell,
            {"n_genes": "all"},
            note="exact DANCE file",
        ),
        DatasetSpec(
            "worm_neuron_cell_top2000",
            datasets.load_worm_neuron_cell,
            {"n_genes": 2000},
        ),
        DatasetSpec(
            "mouse_bladder_cell",
            datasets.load_mouse_bladder_cell,
            note="all DANCE cells, top 2000 genes",
        ),
        DatasetSpec(
            "pbmc_10x_4k",
            datasets.load_pbmc_10x_4k,
            note="all DANCE cells, top 2000 genes",
        ),
        DatasetSpec(
            "mouse_es_cell_subset",
            datasets.load_mouse_es_cell,
            note="1000-cell subset; not comparable to DANCE",
        ),
        DatasetSpec(
            "pbmc3k",
            datasets.load_pbmc3k,
            labelled=False,
            note="raw counts, unlabelled (imputation only)",
        ),
        DatasetSpec(
            "pbmc68k_reduced",
            datasets.load_pbmc68k_reduced,
            counts=False,
            note="log-normalised input",
        ),
        # spatial slices (skdance.datasets.load_spatial_dataset): counts,
        # manual layers (a few NaN: unannotated spots), coordinates
        *(
            DatasetSpec(
                name,
                _spatial_loader,
                {"name": name},
                spatial=True,
                min_cells=None,
                note=note,
            )
            for name, note in (
                ("dlpfc_151673", "DANCE's slice, 5,000 top genes"),
                ("dlpfc_151676", "DANCE's slice, 5,000 top genes"),
                (
                    "dlpfc_151673_subset",
                    "1,062 spots of DANCE's 151673, all layers, 3,000 genes (shipped)",
                ),
                ("dlpfc_151510", "500 genes; same donor as DANCE's 151507"),
                ("starmap_bz5", "STARmap mPFC section BZ5, 166 genes"),
                ("starmap_bz9", "STARmap mPFC section BZ9, 166 genes"),
                ("starmap_bz14", "STARmap mPFC section BZ14, 166 genes"),
                ("mouse_olfactory_bulb", "Spatial Transcriptomics, 262 spots"),
            )
        ),
        DatasetSpec(
            "merfish_hypothalamus",
            _merfish_loader,
            spatial=True,
            counts=False,
            min_cells=None,
            note="single cells, two z planes; volume-normalised values",
        ),
        # paired multimodal sets (skdance.datasets.load_multimodal), in the
        # NeurIPS 2021 units: log-normalised GEX, CLR ADT, binarised ATAC
        *(
            DatasetSpec(
                name,
                _paired_loader,
                {"name": name},
                counts=False,
                modalities=("gex", mod2),
                min_cells=None,
                note=note,
            )
            for name, mod2, note in (
                (
                    "neurips2021_bmmc_cite_starter",
                    "adt",
                    "the competition's CITE data, 600-cell starter subsample",
                ),
                ("teaseq_pbmc", "adt", "TEA-seq PBMC, one batch"),
                ("cbmc_citeseq", "adt", "CITE-seq CBMC, one batch, 10 proteins"),
                (
                    "snareseq_mouse_cortex",
                    "atac",
                    "SNARE-seq cortex, 12 libraries, 25,734 peaks",
                ),
                (
                    "neurips2021_bmmc_multiome_starter",
                    "atac",
                    "the competition's multiome data, 500-cell starter subsample",
                ),
                ("scicar_mouse_kidney", "atac", "sci-CAR kidney, 2 replicates"),
            )
        ),
    ]
}

# The dataset of every --quick run: shipped inside the package (offline).
QUICK_DATASET = DatasetSpec("pbmc_4k_subset (shipped)", datasets.load_pbmc_4k_subset)
