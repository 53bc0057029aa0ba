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
    Spatial transcriptomics: deconvolution of spots, spatial domains.
multimodal
    Paired modalities: prediction, matching, joint embedding.
nn
    Shared torch building blocks and the training engine.
metrics
    Task metrics and scikit-learn scorers.
datasets
    Loaders for the benchmark datasets.
tl
    Fit on AnnData / MuData and write the results where scanpy and
    squidpy read them (``obs``, ``obsm``, ``obsp``, ``layers``, ``uns``).
"""

__version__ = "0.1.0.dev0"

__all__ = [
    "annotation",
    "clustering",
    "datasets",
    "graph",
    "imputation",
    "metrics",
    "multimodal",
    "nn",
    "preprocessing",
    "spatial",
    "tl",
]
