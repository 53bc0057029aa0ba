"""scikit-learn conformance of every public skdance estimator."""

import importlib
import inspect
import pickle
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import (
    check_estimator,
    check_param_validation,
    parametrize_with_checks,
)

from skdance.graph._base import BaseGraphBuilder
from skdance.testing import (
    INIT_PARAMS,
    METHOD_FAILED_CHECKS,
    check_data,
    check_instance,
    estimator_output,
    expected_failed_checks,
    fast_instance,
    fit_estimator,
    with_check_coords,
)
from skdance.utils import all_estimators
from skdance.utils._tags import get_skdance_tags


def _instances():
    # estimators that need coordinates run the checks through the subclass
    # that reads each row's position from X (their missing-coords error is
    # tested in test_missing_side_information_raises)
    for _, cls in all_estimators():
        est = fast_instance(cls)
        if get_skdance_tags(cls).requires_coords:
            est = with_check_coords(cls)(**est.get_params(deep=False))
        yield est


def _public_estimators():
    """Estimator classes named in the ``__all__`` of skdance's packages.

    Found through the public names (``skdance.__all__`` and each package's
    ``__all__``, recursively), independently of ``all_estimators``' walk
    over the package's modules.
    """
    import skdance

    found = {}

    def visit(module):
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if obj is None:  # a subpackage not imported by its parent
                obj = importlib.import_module(f"{module.__name__}.{name}")
            if inspect.ismodule(obj):
                if obj.__name__.startswith(module.__name__ + "."):
                    visit(obj)
            elif (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and not inspect.isabstract(obj)
            ):
                found[name] = obj

    for package in skdance.__all__:
        visit(importlib.import_module(f"skdance.{package}"))
    return found


def test_all_estimators_discovered():
    # all_estimators finds exactly the public estimators, so that a new one
    # is checked by every common test without being listed anywhere
    discovered = dict(all_estimators())
    assert discovered == _public_estimators()
    # one at least of every task the tags know, and of the shared layers
    tasks = {get_skdance_tags(cls).task for cls in discovered.values()}
    assert {
        "annotation",
        "clustering",
        "imputation",
        "deconvolution",
        "spatial_domain",
        "modality_prediction",
        "modality_matching",
        "joint_embedding",
    } <= tasks
    assert any(issubclass(cls, BaseGraphBuilder) for cls in discovered.values())


def test_expected_failures_name_real_estimators():
    classes = {cls for _, cls in all_estimators()}
    assert set(METHOD_FAILED_CHECKS) <= classes and set(INIT_PARAMS) <= classes


# Parameters that set how long an estimator runs: epochs of any phase,
# iterations.  A warm-up (kl_warmup_epochs) only weights the loss.
RUN_LENGTH = re.compile(r"(^|_)(epochs|iter|iterations)$")


def _is_run_length(param):
    return bool(RUN_LENGTH.search(param)) and "warmup" not in param


def _run_length_params(cls):
    return sorted(p for p in cls().get_params(deep=False) if _is_run_length(p))


def test_run_length_parameter_names():
    names = [
        "max_epochs",
        "pretrain_epochs",
        "search_max_epochs",
        "max_iter",
        "n_iterations",
        "kl_warmup_epochs",
        "decay_steps",
        "n_iter_no_change",
        "update_interval",
    ]
    assert [n for n in names if _is_run_length(n)] == names[:5]


def test_fast_parameters_for_every_estimator_that_iterates():
    # every estimator with a run-length parameter has fast parameters that
    # set each of them (a new deep model must not run its full schedule in
    # the suite), and the table's entries that set one are exactly those
    iterating = {cls: _run_length_params(cls) for _, cls in all_estimators()}
    iterating = {cls: params for cls, params in iterating.items() if params}
    unset = {
        cls.__name__: [p for p in params if p not in INIT_PARAMS.get(cls, {})]
        for cls, params in iterating.items()
    }
    unset = {name: params for name, params in unset.items() if params}
    assert not unset, f"set these in skdance.testing.INIT_PARAMS: {unset}"
    with_schedule = {
        cls
        for cls, params in INIT_PARAMS.items()
        if any(_is_run_length(p) for p in params)
    }
    assert with_schedule == set(iterating)


@parametrize_with_checks(
    list(_instances()), expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------
# The recipe skdance.testing gives users: check_estimator on
# the plain fast instance, with skdance's expected failures.
# ---------------------------------------------------------------------------
NEED_COORDS = [
    (n, c) for n, c in all_estimators() if get_skdance_tags(c).requires_coords
]


def test_sklearn_compatible_runs_the_documented_recipe():
    # test_sklearn_compatible checks the plain fast instance of every
    # estimator that needs no coordinates, with the same expected failures
    # as the recipe (an expected failure that passes is an error there:
    # xfail_strict), so only the others need the recipe run again below
    for (name, cls), est in zip(all_estimators(), _instances(), strict=True):
        if get_skdance_tags(cls).requires_coords:
            assert type(est) is not cls, name  # reads coordinates from X
        else:
            assert type(est) is cls, name
            assert repr(est) == repr(fast_instance(cls)), name
    assert {n for n, _ in NEED_COORDS} >= {"STAGATE", "RadiusGraph", "CARD"}


@pytest.mark.parametrize("name,cls", NEED_COORDS)
def test_documented_recipe_without_coordinates(name, cls):
    est = fast_instance(cls)
    results = check_estimator(
        est, expected_failed_checks=expected_failed_checks(est), on_fail=None
    )
    failed = [
        f"{r['check_name']}: {r['exception']}"
        for r in results
        if r["status"] == "failed"
    ]
    passed_though_expected = [
        r["check_name"]
        for r in results
        if r["expected_to_fail"] and r["status"] == "passed"
    ]
    assert not failed, "failed checks:\n" + "\n".join(failed)
    assert not passed_though_expected, (
        "listed as expected failures, but pass: " + ", ".join(passed_though_expected)
    )
    assert any(r["status"] == "xfail" for r in results)


@pytest.mark.parametrize("name,cls", all_estimators())
def test_clone_and_pickle_roundtrip(name, cls):
    import pickle

    from sklearn.base import clone

    est = fast_instance(cls)
    cloned = clone(est)
    # nested estimators (graph builders) are cloned, so compare them by repr
    assert {k: repr(v) for k, v in cloned.get_params().items()} == {
        k: repr(v) for k, v in est.get_params().items()
    }
    restored = pickle.loads(pickle.dumps(est))
    assert {k: repr(v) for k, v in restored.get_params().items()} == {
        k: repr(v) for k, v in est.get_params().items()
    }


# ---------------------------------------------------------------------------
# skdance's own common checks: every discovered estimator, fitted as its
# tags say (labels, coordinates) on 120 real PBMC cells x 150 genes.
# ---------------------------------------------------------------------------
ESTIMATORS = all_estimators()
_BASELINE = {}


def _seeded(cls):
    """Check-data instance with ``random_state=0`` where the class has one."""
    est = check_instance(cls)
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    return est


def _baseline(cls):
    """One fit per class on the dense counts, shared by the checks below."""
    if cls not in _BASELINE:
        data = check_data()
        est = fit_estimator(_seeded(cls), data.X, data)
        _BASELINE[cls] = (est, estimator_output(est, data.X, data))
    return _BASELINE[cls]


def _has_param(cls, param):
    return param in fast_instance(cls).get_params()


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_same_seed_same_output(name, cls, capsys):
    data = check_data()
    _, expected = _baseline(cls)
    capsys.readouterr()
    again = fit_estimator(_seeded(cls), data.X, data)
    output = estimator_output(again, data.X, data)
    if _has_param(cls, "verbose"):  # quiet by default (verbose=0)
        shown = capsys.readouterr()
        assert not shown.out and not shown.err, shown
    np.testing.assert_array_equal(output, expected)


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_fitted_pickle_round_trip(name, cls):
    data = check_data()
    est, _ = _baseline(cls)
    restored = pickle.loads(pickle.dumps(est))
    # both outputs computed here, one after the other, so that only the
    # round trip differs between them
    expected = estimator_output(est, data.X, data)
    np.testing.assert_array_equal(estimator_output(restored, data.X, data), expected)
    if hasattr(est, "labels_"):
        np.testing.assert_array_equal(restored.labels_, est.labels_)


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_anndata_and_dataframe_input(name, cls):
    data = check_data()
    _, expected = _baseline(cls)
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(data.X.shape[0])])
    adata = ad.AnnData(
        data.X.copy(),
        obs=obs,
        var=pd.DataFrame(index=data.genes),
        obsm={"spatial": data.coords.copy()},
    )
    frame = pd.DataFrame(data.X.copy(), columns=data.genes)
    for X in (adata, frame):
        est = fit_estimator(_seeded(cls), X, data)
        assert list(est.feature_names_in_) == list(data.genes)
        np.testing.assert_allclose(
            estimator_output(est, X, data), expected, rtol=1e-6, atol=1e-9
        )


@pytest.mark.parametrize(
    "name,cls", [(n, c) for n, c in ESTIMATORS if _has_param(c, "verbose")]
)
def test_verbose_runs_and_changes_nothing(name, cls, capsys):
    data = check_data()
    _, expected = _baseline(cls)
    capsys.readouterr()
    est = fit_estimator(_seeded(cls).set_params(verbose=1), data.X, data)
    output = estimator_output(est, data.X, data)  # DSTG trains in predict
    # progress bars (tqdm) go to stderr, per-epoch losses to either stream
    shown = capsys.readouterr()
    assert shown.out or shown.err, f"{name}(verbose=1) shows no progress"
    np.testing.assert_array_equal(output, expected)


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_param_validation(name, cls):
    check_param_validation(name, fast_instance(cls))


@pytest.mark.parametrize(
    "name,cls",
    [(n, c) for n, c in ESTIMATORS if get_skdance_tags(c).requires_coords],
)
def test_missing_side_information_raises(name, cls):
    data = check_data()
    tags = get_skdance_tags(cls)
    if tags.requires_coords == "fit":
        with pytest.raises(ValueError, match="coords"):
            fit_estimator(_seeded(cls), data.X, data, coords=False)
        return
    est = fit_estimator(_seeded(cls), data.X, data)
    with pytest.raises(ValueError, match="coords"):
        estimator_output(est, data.X, data, coords=False)
    with pytest.raises(ValueError, match="rows|one row per cell"):
        method = getattr(
            est, "predict" if tags.task == "deconvolution" else "transform"
        )
        method(data.X, coords=data.coords[:-1])


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_inputs_never_modified(name, cls):
    data = check_data()
    dense = data.X.copy()
    sparse = sp.csr_matrix(data.X)
    adata = ad.AnnData(
        data.X.copy(),
        var=pd.DataFrame(index=data.genes),
        obsm={"spatial": data.coords.copy()},
    )
    coords = data.coords.copy()
    for X in (dense, sparse, adata):
        est = fit_estimator(_seeded(cls), X, data)
        estimator_output(est, X, data)
    np.testing.assert_array_equal(dense, data.X)
    np.testing.assert_array_equal(sparse.toarray(), data.X)
    np.testing.assert_array_equal(adata.X, data.X)
    np.testing.assert_array_equal(adata.obsm["spatial"], data.coords)
    np.testing.assert_array_equal(coords, data.coords)


# ---------------------------------------------------------------------------
# set_output: DataFrames from every transformer with a dense per-cell output;
# graph builders (sparse adjacencies) refuse them clearly.
# ---------------------------------------------------------------------------
TRANSFORMERS = [(n, c) for n, c in ESTIMATORS if hasattr(c, "transform")]
DENSE_TRANSFORMERS = [
    (n, c) for n, c in TRANSFORMERS if get_skdance_tags(c).output == "samples"
]
GRAPH_BUILDERS = [(n, c) for n, c in ESTIMATORS if issubclass(c, BaseGraphBuilder)]


def test_transformers_are_all_covered():
    dense = {n for n, _ in DENSE_TRANSFORMERS}
    graphs = {n for n, _ in GRAPH_BUILDERS}
    assert dense | graphs == {n for n, _ in TRANSFORMERS} and not dense & graphs
    assert {"STAGATE", "SpaGCN", "JAE", "DeepImpute", "GraphSC", "ScDSC"} <= dense


@pytest.mark.parametrize("name,cls", DENSE_TRANSFORMERS)
def test_set_output_pandas(name, cls):
    data = check_data()
    index = pd.Index([f"cell{i}" for i in range(data.X.shape[0])])
    frame = pd.DataFrame(data.X.copy(), columns=data.genes, index=index)
    est = _seeded(cls).set_output(transform="pandas")
    tags = get_skdance_tags(cls)
    y = data.y if est.__sklearn_tags__().target_tags.required else None
    side = {"coords": data.coords} if tags.requires_coords == "fit" else {}
    out = est.fit_transform(frame, y, **side)
    assert isinstance(out, pd.DataFrame)
    names = est.get_feature_names_out()
    assert list(out.columns) == list(names) and len(names) == out.shape[1]
    assert out.index.equals(index)
    # the DataFrame holds the default output's values
    if "coords" not in inspect.signature(est.transform).parameters:
        side = {}
    framed = est.transform(frame, **side)
    plain = est.set_output(transform="default").transform(frame, **side)
    assert isinstance(framed, pd.DataFrame) and isinstance(plain, np.ndarray)
    np.testing.assert_array_equal(framed.to_numpy(), plain)


@pytest.mark.parametrize("name,cls", GRAPH_BUILDERS)
def test_graph_builders_refuse_dataframe_output(name, cls):
    est = fast_instance(cls)
    assert est.set_output(transform="default") is est
    for container in ("pandas", "polars"):
        with pytest.raises(ValueError, match="sparse adjacency.*no DataFrame output"):
            est.set_output(transform=container)
    # a global DataFrame configuration leaves the adjacency sparse
    data = check_data()
    side = {"coords": data.coords} if get_skdance_tags(cls).requires_coords else {}
    with config_context(transform_output="pandas"):
        assert sp.issparse(fast_instance(cls).fit_transform(data.X, **side))


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_set_output_only_with_transform(name, cls):
    # the optional fit_transform of the spatial-domain models stays absent
    # where there is no transform, also through with_check_coords
    classes = [cls]
    if get_skdance_tags(cls).requires_coords:
        classes.append(with_check_coords(cls))
    for klass in classes:
        est = klass(**fast_instance(cls).get_params(deep=False))
        has = {m for m in ("fit_transform", "set_output") if hasattr(est, m)}
        if hasattr(est, "transform"):
            assert has == {"fit_transform", "set_output"}
        else:
            assert not has and not hasattr(est, "get_feature_names_out")
