"""Preprocessing transformers that match scanpy's numerics on arrays and sparse."""

from skdance.preprocessing._align import GeneAligner
from skdance.preprocessing._hvg import HighlyVariableGenes
from skdance.preprocessing._lsi import LSI
from skdance.preprocessing._normalize import Log1p, NormalizeTotal
from skdance.preprocessing._qc import filter_cells, filter_genes
from skdance.preprocessing._scale import ScaleGenes
from skdance.preprocessing._utils import mean_var, normalize_rows, row_sums, scale_rows

__all__ = [
    "GeneAligner",
    "HighlyVariableGenes",
    "LSI",
    "Log1p",
    "NormalizeTotal",
    "ScaleGenes",
    "filter_cells",
    "filter_genes",
    "mean_var",
    "normalize_rows",
    "row_sums",
    "scale_rows",
]
