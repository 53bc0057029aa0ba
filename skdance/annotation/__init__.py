"""Cell-type annotation classifiers."""

from skdance.annotation.celltypist import Celltypist
from skdance.annotation.singlecellnet import SingleCellNet
from skdance.annotation.svm import SVM

__all__ = ["SVM", "Celltypist", "SingleCellNet"]
