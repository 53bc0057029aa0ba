"""Every estimator uses the project's parameter vocabulary.

The vocabulary and how to add a name: ``doc/user_guide/vocabulary.rst``.
"""

import pytest

from skdance.graph._base import BaseGraphBuilder
from skdance.utils import all_estimators
from skdance.utils._vocabulary import SYNONYMS, VOCABULARY, vocabulary_table

ESTIMATORS = all_estimators()
USERS = {}
for _name, _cls in ESTIMATORS:
    for _param in _cls._get_param_names():
        USERS.setdefault(_param, []).append(_name)

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
def test_every_parameter_is_in_the_vocabulary(name, cls):
    unknown = [p for p in cls._get_param_names() if p not in VOCABULARY]
    advice = [
        f"{p!r}: use {SYNONYMS[p]}"
        if p in SYNONYMS
        else f"{p!r}: use an existing name or add it to "
        "skdance/utils/_vocabulary.py with its meaning"
        for p in unknown
    ]
    assert not unknown, f"{name}: " + "; ".join(advice)


def test_vocabulary_has_no_stale_names_and_no_synonym_is_allowed():
    stale = sorted(set(VOCABULARY) - set(USERS))
    assert not stale, f"no estimator takes {stale}: remove them from VOCABULARY"
    both = sorted(set(VOCABULARY) & set(SYNONYMS))
    assert not both, f"{both} are both vocabulary names and synonyms"


def test_every_meaning_is_a_sentence():
    bad = [
        n
        for n, m in VOCABULARY.items()
        if not ((m[:1].isupper() or m.startswith("``")) and m.endswith("."))
    ]
    assert not bad, f"meanings of {bad} must be capitalised sentences"


def test_the_docs_table_lists_every_name_with_its_users():
    table = vocabulary_table(USERS)
    for name in VOCABULARY:
        assert f"   * - ``{name}``\n     - {VOCABULARY[name]}\n" in table
    assert "     - BABEL, CMAE" in table  # the users of max_epochs, sorted


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
