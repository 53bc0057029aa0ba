"""Every estimator uses the project's parameter vocabulary (doc/contributing.rst)."""

import pytest

from skdance.graph._base import BaseGraphBuilder
from skdance.utils import all_estimators

ESTIMATORS = all_estimators()

# Synonyms no estimator may take as a parameter, each mapped to the vocabulary
# name to use instead.  Not listed: ``latent_dims`` (ScDSC's tuple of encoder
# widths) and ``gamma`` (SVM's kernel coefficient, scGNN's reconstruction
# weight).
SYNONYMS = {
    "knn": "graph (a builder from skdance.graph, e.g. AdaptiveKernelGraph)",
    "epochs": "max_epochs (or pretrain_epochs)",
    "n_epochs": "max_epochs (or pretrain_epochs)",
    "num_epochs": "max_epochs (or pretrain_epochs)",
    "lr": "learning_rate",
    "l2": "weight_decay",
    "top_genes": "n_top_genes",
    "embed_dim": "latent_dim",
    "embedding_dim": "latent_dim",
    "in_feats": "n_components (a PCA size) or n_features",
    "hidden": "hidden_dim (or hidden_dims, a tuple)",
    "w_adj": "adjacency_weight",
    "w_zinb": "zinb_weight",
    "w_cluster": "cluster_weight",
    "w_bce": "cluster_weight",
    "w_gcn": "gcn_weight",
    "w_rec": "reconstruction_weight",
    "le": "zinb_weight (a loss weight named after what it weighs)",
    "la": "adjacency_weight (a loss weight named after what it weighs)",
    "ka": "kl_weight (a loss weight named after what it weighs)",
    "ke": "mse_weight (a loss weight named after what it weighs)",
    "regu": "trs_weight / *_regularization_weight (named after what it weighs)",
    "use_gpu": "device",
    "cuda": "device",
}

# Names that meant two or three things across estimators; each now keeps one
# meaning, held by the listed estimators (a new use must add itself here on
# purpose, with the same meaning).
ONE_MEANING = {
    "alpha": (
        "degrees of freedom of the DEC Student-t kernel",
        # SpaGCN's kernel is the same Student-t, raised to -(alpha + 1)
        {"ScDeepCluster", "ScDCC", "ScDSC", "ScTAG", "SpaGCN"},
    ),
    "sigma": ("a kernel width on spatial coordinates", {"CARD"}),
    "gamma": ("scikit-learn SVC's kernel coefficient", {"SVM"}),
}


@pytest.mark.parametrize("param", sorted(ONE_MEANING))
def test_ambiguous_names_keep_one_meaning(param):
    meaning, allowed = ONE_MEANING[param]
    users = {name for name, cls in ESTIMATORS if param in cls._get_param_names()}
    assert users <= allowed, (
        f"{sorted(users - allowed)} use {param!r}, which in skdance means "
        f"{meaning}; name the parameter after what it is"
    )


# Estimators with max_epochs or learning_rate that do not train with torch,
# hence take no ``device``.
NON_TORCH = {
    # scikit-learn SGDClassifier; max_epochs counts its mini-batch SGD epochs
    "Celltypist",
}

TORCH_PARAMS = ("device", "random_state", "verbose")
TRAINED = [
    (name, cls)
    for name, cls in ESTIMATORS
    if name not in NON_TORCH
    and set(cls._get_param_names()) & {"max_epochs", "learning_rate"}
]


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[n for n, _ in ESTIMATORS])
def test_no_parameter_synonyms(name, cls):
    params = cls._get_param_names()
    wrong = {p: SYNONYMS[p] for p in params if p in SYNONYMS}
    assert not wrong, f"{name}: rename " + ", ".join(
        f"{old!r} to {new}" for old, new in wrong.items()
    )


# Neighbour-graph settings belong to the graph builder a model takes as
# ``graph=`` (skdance.graph._fit.fit_graph), not to the model.
GRAPH_SETTINGS = ("n_neighbors", "prune", "metric")
MODELS = [
    (name, cls) for name, cls in ESTIMATORS if not issubclass(cls, BaseGraphBuilder)
]


@pytest.mark.parametrize("name, cls", MODELS, ids=[n for n, _ in MODELS])
def test_models_take_graph_builders_not_neighbour_counts(name, cls):
    params = cls._get_param_names()
    wrong = [p for p in GRAPH_SETTINGS if p in params]
    assert not wrong, f"{name}: take graph= (a skdance.graph builder), not {wrong}"


@pytest.mark.parametrize("name, cls", TRAINED, ids=[n for n, _ in TRAINED])
def test_torch_estimators_take_device_seed_and_verbosity(name, cls):
    missing = [p for p in TORCH_PARAMS if p not in cls._get_param_names()]
    assert not missing, f"{name} trains with torch but lacks {missing}"


def test_non_torch_exemptions_are_current():
    names = dict(ESTIMATORS)
    for name in NON_TORCH:
        params = set(names[name]._get_param_names())
        assert params & {"max_epochs", "learning_rate"}, name
        assert "device" not in params, name
