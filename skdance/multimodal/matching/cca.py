"""Baseline matcher: canonical correlation of the two modalities' PCs."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import TruncatedSVD
from sklearn.utils._param_validation import Interval

from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal.matching._base import BaseModalityMatcher
from skdance.utils import fill_doc

__all__ = ["CCAMatcher"]


def _reduce(X, n_components, seed):
    """Fit a truncated SVD of ``X`` (identity when there is nothing to reduce)."""
    k = min(n_components, X.shape[1] - 1, X.shape[0] - 1)
    if k < 1:
        return None
    svd = TruncatedSVD(n_components=k, random_state=seed).fit(X)
    # scikit-learn keeps components_ as a strided view; a pickle round trip
    # stores it contiguous, which takes another BLAS path (last-bit
    # differences): keep it contiguous from the start
    svd.components_ = np.ascontiguousarray(svd.components_)
    return svd


def _project(svd, X):
    if svd is None:
        return X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    return svd.transform(X)


@fill_doc
class CCAMatcher(BaseModalityMatcher):
    """Match cells across modalities in a shared canonical space (baseline).

    The competition starter kits' idea: reduce each modality (truncated
    SVD, which keeps sparse ATAC sparse), learn a linear map between the
    two on the paired training cells, and match new cells by nearness.
    Here the shared space is canonical correlation analysis
    (:class:`sklearn.cross_decomposition.CCA`) of the two reductions; a
    cell's scores are a softmax over the cosine similarities of its
    ``n_partners`` nearest partners (the rest zero).

    Parameters
    ----------
    n_svd_components : int, default=50
        Truncated-SVD components per modality (fewer when a modality has
        fewer features); ``n_components`` is the number of canonical
        components.
    n_components : int, default=20
        Canonical components (at most the smaller reduction).
    n_partners : int or None, default=50
        Candidate partners kept per cell (a sparse result); None keeps all.
    temperature : float, default=0.1
        Softmax temperature on the cosine similarities.
    {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the randomized SVD.

    Attributes
    ----------
    svd_mod1_, svd_mod2_ : TruncatedSVD or None
        The reductions (None for a modality with a single feature).
    cca_ : sklearn.cross_decomposition.CCA
        The canonical map fitted on the paired training cells.
    n_features_in_ : int
        Features of the first modality.
    n_features_mod2_ : int
        Features of the second modality.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.matching import CCAMatcher
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(200, 5))
    >>> X = Z @ rng.normal(size=(5, 30)) + 0.1 * rng.normal(size=(200, 30))
    >>> Y = Z @ rng.normal(size=(5, 12)) + 0.1 * rng.normal(size=(200, 12))
    >>> model = CCAMatcher(n_svd_components=10, n_components=5).fit(X[:150], Y[:150])
    >>> S = model.match(X[150:], Y[150:])
    >>> S.shape, model.score(X[150:], Y[150:]) * 50 > 5
    ((50, 50), True)
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_svd_components": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_partners": [Interval(Integral, 1, None, closed="left"), None],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        n_svd_components=50,
        n_components=20,
        n_partners=50,
        temperature=0.1,
        mudata_mods=None,
        random_state=None,
    ):
        self.n_svd_components = n_svd_components
        self.n_components = n_components
        self.n_partners = n_partners
        self.temperature = temperature
        self.mudata_mods = mudata_mods
        self.random_state = random_state

    def _fit(self, X, Y):
        seed = self.random_state
        self.svd_mod1_ = _reduce(X, self.n_svd_components, seed)
        self.svd_mod2_ = _reduce(Y, self.n_svd_components, seed)
        A, B = _project(self.svd_mod1_, X), _project(self.svd_mod2_, Y)
        k = min(self.n_components, A.shape[1], B.shape[1], X.shape[0] - 1)
        self.cca_ = CCA(n_components=max(k, 1), max_iter=1000).fit(A, B)

    def _embed(self, X, Y):
        A, B = self.cca_.transform(
            _project(self.svd_mod1_, X), _project(self.svd_mod2_, Y)
        )
        A = A.reshape(len(A), -1)
        B = B.reshape(len(B), -1)
        A /= np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
        B /= np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
        return A, B

    def _match(self, X, Y):
        A, B = self._embed(X, Y)
        logits = (A @ B.T) / self.temperature
        k = B.shape[0] if self.n_partners is None else min(self.n_partners, len(B))
        if k < len(B):
            keep = np.argpartition(-logits, k - 1, axis=1)[:, :k]
            rows = np.repeat(np.arange(len(A)), k)
            kept = logits[rows, keep.ravel()].reshape(len(A), k)
            weights = np.exp(kept - kept.max(axis=1, keepdims=True))
            return sp.csr_matrix(
                (weights.ravel(), (rows, keep.ravel())), shape=logits.shape
            )
        return np.exp(logits - logits.max(axis=1, keepdims=True))
