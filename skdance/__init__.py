"""skdance: the DANCE single-cell benchmark as scikit-learn estimators.

Subpackages
-----------
preprocessing
    NormalizeTotal, Log1p, HighlyVariableGenes, ScaleGenes, GeneAligner.
graph
    Graph builders (kNN, radius, spatial Gaussian, cell-gene, gene
    correlation, mutual nearest neighbours) as transformers.
annotation
    Cell-type classifiers.
clustering
    Cell clustering estimators.
imputation
    Imputation of dropout zeros (transformers).
spatial
    Cell-type deconvolution of spatial spots.
nn
    Shared torch building blocks and the training engine.
metrics
    Task metrics and scikit-learn scorers.
datasets
    Loaders for the benchmark datasets.
"""

__version__ = "0.1.0.dev0"

__all__ = [
    "annotation",
    "clustering",
    "datasets",
    "graph",
    "imputation",
    "metrics",
    "nn",
    "preprocessing",
    "spatial",
]
