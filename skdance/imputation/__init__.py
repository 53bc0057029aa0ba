"""Imputation transformers and DANCE's masked-dropout evaluation."""

from skdance.imputation._masking import imputation_scores, mask_dropout
from skdance.imputation.deepimpute import DeepImpute
from skdance.imputation.graphsci import GraphSCI
from skdance.imputation.magic import MAGIC
from skdance.imputation.scgnn import ScGNN
from skdance.imputation.scgnn2 import ScGNN2

__all__ = [
    "MAGIC",
    "DeepImpute",
    "GraphSCI",
    "ScGNN",
    "ScGNN2",
    "imputation_scores",
    "mask_dropout",
]
