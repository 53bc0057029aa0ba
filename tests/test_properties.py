"""Property-based layer: every discovered estimator on generated hostile input.

For each estimator that :func:`skdance.utils.all_estimators` discovers (a new
one joins on its own), hypothesis draws inputs:

* 1 to 24 cells (of 1 to 3 cell types) and 1 to 12 features of real PBMC
  counts, rows drawn with repetition (duplicated cells), optionally
  all-zero cells or features;
* as a dense array, a CSR matrix, a DataFrame, an AnnData or a MuData;
* with NaN, +inf, -inf, a huge or a negative value at a drawn position;
* coordinates (for the spatial models) that are random, all identical,
  collinear or duplicated;
* predict / transform data whose named features are permuted or renamed.

Each example must end in a valid output (one finite row per cell) or in a
``ValueError`` / ``TypeError`` raised by skdance's or scikit-learn's own
validation; never in a hang, an error from deep inside torch, numpy or
scipy, or a modified input.  The examples are derandomised (the same in
every run) and each has a hard time limit.
"""

import copy
import signal
import traceback
import warnings
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skdance.datasets import load_pbmc_4k_subset
from skdance.testing import fast_instance
from skdance.utils import all_estimators
from skdance.utils._tags import get_skdance_tags

ESTIMATORS = all_estimators()
EXAMPLES = 25  # per estimator
TIME_LIMIT = 90  # seconds per example, a hard limit (SIGALRM)
PAIRED = ("joint_embedding", "modality_prediction", "modality_matching")
# where a ValueError / TypeError may come from: the validation of skdance
# and scikit-learn (anndata / pandas for an invalid container they build)
VALIDATORS = ("skdance", "sklearn")

_POOL = {}


def _pool():
    """Real counts to draw from: 200 PBMC cells x their 40 most detected genes."""
    if "X" not in _POOL:
        X, y = load_pbmc_4k_subset()
        X = X[:200].toarray().astype(np.float64)
        # the 40 genes detected in most cells: few cells are empty by chance
        genes = np.argsort(-(X > 0).sum(axis=0), kind="stable")[:40]
        _POOL["X"], _POOL["y"] = X[:, genes], np.asarray(y)[:200]
    return _POOL["X"], _POOL["y"]


@st.composite
def hostile_inputs(draw):
    X_pool, y_pool = _pool()
    n = draw(st.integers(1, 24))
    p = draw(st.integers(1, 12))
    # cells of 1 to 3 types, so that classifiers see several cells per type
    kinds = st.sampled_from(sorted(set(y_pool)))
    types = draw(st.lists(kinds, min_size=1, max_size=3, unique=True))
    members = np.flatnonzero(np.isin(y_pool, types))
    rows = draw(st.lists(st.sampled_from(members.tolist()), min_size=n, max_size=n))
    cols = draw(
        st.lists(
            st.integers(0, X_pool.shape[1] - 1), min_size=p, max_size=p, unique=True
        )
    )
    X = X_pool[np.ix_(rows, cols)].copy()
    y = y_pool[rows].copy()
    defect = draw(
        st.sampled_from(
            [
                "none",
                "none",
                "nan",
                "inf",
                "-inf",
                "huge",
                "negative",
                "zero_cell",
                "zero_feature",
            ]
        )
    )
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, p - 1))
    if defect in ("nan", "inf", "-inf", "huge", "negative"):
        X[i, j] = {
            "nan": np.nan,
            "inf": np.inf,
            "-inf": -np.inf,
            "huge": 1e30,
            "negative": -3.0,
        }[defect]
    elif defect == "zero_cell":
        X[i] = 0.0
    elif defect == "zero_feature":
        X[:, j] = 0.0
    # a second modality of the same cells: other genes, log-normalised
    Y = np.log1p(X_pool[np.ix_(rows, [(c + 7) % X_pool.shape[1] for c in cols])])
    layout = draw(st.sampled_from(["random", "degenerate", "collinear", "duplicated"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    coords = rng.uniform(0, 10, size=(n, 2))
    if layout == "degenerate":
        coords[:] = 3.0
    elif layout == "collinear":
        coords[:, 1] = 2 * coords[:, 0] + 1
    elif layout == "duplicated":
        coords[n // 2 :] = coords[: n - n // 2]
    container = draw(
        st.sampled_from(["dense", "csr", "dataframe", "anndata", "mudata"])
    )
    at_predict = draw(st.sampled_from(["same", "same", "permuted", "renamed"]))
    return {
        "X": X,
        "Y": Y,
        "y": y,
        "coords": coords,
        "container": container,
        "at_predict": at_predict,
        "finite": bool(np.isfinite(X).all()),
    }


def _wrap(X, Y, container, genes):
    """``X`` (and ``Y``) in the drawn container: what the estimator gets."""
    proteins = [f"p{k}" for k in range(Y.shape[1])]
    if container == "dense":
        return X.copy(), Y.copy()
    if container == "csr":
        return sp.csr_matrix(X), sp.csr_matrix(Y)
    if container == "dataframe":
        return pd.DataFrame(X, columns=genes), pd.DataFrame(Y, columns=proteins)
    cells = [f"cell{k}" for k in range(X.shape[0])]
    rna = ad.AnnData(X.copy(), obs=pd.DataFrame(index=cells))
    rna.var_names = genes
    prot = ad.AnnData(Y.copy(), obs=pd.DataFrame(index=cells))
    prot.var_names = proteins
    if container == "anndata":
        return rna, prot
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"rna": rna, "prot": prot})
    return mdata, mdata


def _snapshot(obj):
    if isinstance(obj, md.MuData):
        return {k: _snapshot(a) for k, a in obj.mod.items()}
    if isinstance(obj, ad.AnnData):
        return (_snapshot(obj.X), list(obj.var_names), list(obj.obs_names))
    if isinstance(obj, pd.DataFrame):
        return (obj.to_numpy().copy(), list(obj.columns))
    if sp.issparse(obj):
        return obj.toarray()
    if isinstance(obj, tuple):
        return tuple(_snapshot(o) for o in obj)
    return copy.deepcopy(obj)


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    return a == b


def _call(est, method, X, Y, data):
    """Call ``method`` ("fit" or "output") as the estimator's task requires."""
    tags = get_skdance_tags(est)
    task = tags.task
    coords = {"coords": data["coords"]} if tags.requires_coords else {}
    if method == "fit":
        fit_coords = coords if tags.requires_coords == "fit" else {}
        if task in ("annotation", "deconvolution"):
            return est.fit(X, data["y"], **fit_coords)
        if task in ("modality_prediction", "modality_matching"):
            return est.fit(X, Y)
        if task == "joint_embedding":
            pair = X if isinstance(X, md.MuData) else (X, Y)
            labels = data["y"] if est.__sklearn_tags__().target_tags.required else None
            return est.fit(pair, labels)
        return est.fit(X, **fit_coords)
    if task in ("annotation", "modality_prediction"):
        return est.predict(X)
    if task == "deconvolution":
        return est.predict(X, **(coords if tags.requires_coords == "predict" else {}))
    if task == "modality_matching":
        return est.match(X, Y if not isinstance(X, md.MuData) else None)
    if task == "joint_embedding":
        return est.transform(X if isinstance(X, md.MuData) else (X, Y))
    if hasattr(est, "transform"):
        side = coords if tags.requires_coords in ("fit", "transform") else {}
        return est.transform(X, **side)
    return est.labels_


def _check_raised(exc):
    """A ValueError / TypeError raised by skdance's or scikit-learn's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = Path(frames[-1].filename).parts if frames else ()
    assert isinstance(exc, ValueError | TypeError), (
        f"{type(exc).__name__} instead of a clear ValueError/TypeError: {exc}"
    )
    assert any(part in VALIDATORS for part in where), (
        f"{type(exc).__name__} raised in {frames[-1].filename}:{frames[-1].lineno}"
        f", not by skdance's or scikit-learn's validation: {exc}"
    )


def _check_output(out, n, est):
    if get_skdance_tags(est).output in ("gene_adjacency", "bipartite"):
        return
    values = out.toarray() if sp.issparse(out) else np.asarray(out)
    assert values.shape[0] == n, f"{values.shape[0]} output rows for {n} cells"
    if values.dtype.kind in "fc":
        assert np.isfinite(values).all(), "non-finite output"


class _Timeout(BaseException):
    """Raised by the alarm: not an Exception, so no code under test eats it."""


def _alarm(signum, frame):
    raise _Timeout(f"no answer within {TIME_LIMIT} s")


@pytest.mark.parametrize("name,cls", ESTIMATORS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # the hard SIGALRM limit below bounds every example
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=hostile_inputs())
def test_hostile_input_gives_output_or_a_clear_error(name, cls, data):
    tags = get_skdance_tags(cls)
    n, p = data["X"].shape
    genes = [f"g{k}" for k in range(p)]
    X, Y = _wrap(data["X"], data["Y"], data["container"], genes)
    given_in = (X, Y, data["coords"], data["y"])
    before = _snapshot(given_in)
    est = fast_instance(cls)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _call(est, "fit", X, Y, data)
                if data["container"] in ("dataframe", "anndata") and p > 1:
                    if data["at_predict"] == "permuted":
                        order = list(range(p))[::-1]
                        X = X[:, order] if hasattr(X, "obs") else X.iloc[:, order]
                    elif data["at_predict"] == "renamed" and hasattr(X, "columns"):
                        X = X.rename(columns={genes[0]: "other"})
                out = _call(est, "output", X, Y, data)
            except (ValueError, TypeError) as exc:
                _check_raised(exc)
                event(f"clear {type(exc).__name__}")
            else:
                event("valid output")
                mudata_ok = data["container"] != "mudata" or tags.task in PAIRED
                assert mudata_ok, "a single-modality estimator accepted a MuData"
                if not data["finite"]:
                    assert est.__sklearn_tags__().input_tags.allow_nan, (
                        "non-finite input accepted"
                    )
                _check_output(out, n, est)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert _same(before, _snapshot(given_in)), "the input was modified"
