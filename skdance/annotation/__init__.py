"""Cell-type annotation classifiers."""

from skdance.annotation.actinn import ACTINN
from skdance.annotation.celltypist import Celltypist, majority_vote
from skdance.annotation.scdeepsort import ScDeepsort
from skdance.annotation.scheteronet import ScHeteroNet
from skdance.annotation.singlecellnet import SingleCellNet
from skdance.annotation.svm import SVM

__all__ = [
    "ACTINN",
    "SVM",
    "Celltypist",
    "ScDeepsort",
    "ScHeteroNet",
    "SingleCellNet",
    "majority_vote",
]
