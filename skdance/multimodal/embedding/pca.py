"""Baseline joint embedding: PCA of the per-modality-normalised blocks."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.preprocessing import LSI
from skdance.utils import fill_doc

__all__ = ["JointPCA"]


def _dense(X):
    X = X.toarray() if sp.issparse(X) else X
    return np.asarray(X, dtype=np.float64)


def _is_binary(X):
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    return bool(np.isin(values, (0.0, 1.0)).all())


def _top_dispersion_genes(X, n_top_genes):
    """Columns of scanpy's ``highly_variable_genes(flavor="seurat")`` on log data."""
    from skdance.preprocessing import HighlyVariableGenes

    if X.shape[1] <= n_top_genes:
        return np.arange(X.shape[1])
    hvg = HighlyVariableGenes(
        n_top_genes=n_top_genes, flavor="seurat", log_normalize=False
    ).fit(X)
    return np.flatnonzero(hvg.highly_variable_)


class _GexBlock:
    """Log-normalised GEX -> highly variable genes -> scale -> PCA."""

    def __init__(self, n_top_genes, n_components, seed):
        self.n_top_genes, self.n_components, self.seed = n_top_genes, n_components, seed

    def fit_transform(self, X):
        self.genes_ = _top_dispersion_genes(X, self.n_top_genes)
        kept = _dense(X[:, self.genes_])
        self.scaler_ = StandardScaler().fit(kept)
        k = min(self.n_components, len(self.genes_), X.shape[0] - 1)
        self.pca_ = PCA(k, random_state=self.seed)
        return self.pca_.fit_transform(self.scaler_.transform(kept))

    def transform(self, X):
        return self.pca_.transform(self.scaler_.transform(_dense(X[:, self.genes_])))


class _AdtBlock:
    """CLR proteins -> scale (few features: no reduction)."""

    def fit_transform(self, X):
        self.scaler_ = StandardScaler().fit(_dense(X))
        return self.scaler_.transform(_dense(X))

    def transform(self, X):
        return self.scaler_.transform(_dense(X))


class _AtacBlock:
    """Binary peaks -> tf-idf -> LSI without its first (depth) component."""

    def __init__(self, n_components, seed):
        self.n_components, self.seed = n_components, seed

    def fit_transform(self, X):
        k = min(self.n_components, X.shape[1] - 2, X.shape[0] - 2)
        self.lsi_ = LSI(max(k, 1), random_state=self.seed)
        return self.lsi_.fit_transform(X)

    def transform(self, X):
        return self.lsi_.transform(X)


@fill_doc
class JointPCA(BaseJointEmbedding):
    """PCA of the two modalities, each normalised its own way (baseline).

    The obvious joint embedding every method should beat: each block is
    reduced as single-modality analyses do it, the blocks are scaled to
    the same weight and a PCA of their concatenation is the embedding.

    * GEX (log-normalised expression, the first block): the
      ``n_top_genes`` most dispersed genes
      (:class:`~skdance.preprocessing.HighlyVariableGenes` with
      ``flavor="seurat"``, scanpy's recipe for log data), scaled to zero mean and
      unit variance, PCA with ``n_block_components`` components.
    * ADT (CLR protein levels): scaled, not reduced (tens of proteins).
    * ATAC (binary peaks): tf-idf and LSI with ``n_block_components``
      components (:class:`~skdance.preprocessing.LSI`), the
      first (sequencing-depth) component dropped.

    Which of the last two the second block is follows ``mod2``.  With
    ``modalities="both"`` each block's rows are divided by the block's
    mean row norm (so neither dominates by its size) and a PCA with
    ``n_components`` of the concatenation is returned; ``"mod1"`` or
    ``"mod2"`` return one block's reduction alone (the single-modality
    baselines).

    Parameters
    ----------
    n_features_mod1 : int or None, default=None
        Number of GEX columns when ``X`` is ``[mod1 | mod2]`` column blocks
        (not needed when ``X`` is a pair).
    modalities : {"both", "mod1", "mod2"}, default="both"
        Which blocks the embedding uses.
    n_components : int, default=100
        Components of the joint PCA (at most the concatenated width).
    n_block_components : int, default=50
        Components of each block's own reduction: the GEX PCA and the ATAC
        LSI (``n_components`` is the size of the joint PCA).
    n_top_genes : int, default=2000
        Highly variable genes kept (all genes when there are fewer).
    mod2 : {"auto", "adt", "atac"}, default="auto"
        Kind of the second block; ``"auto"``: ATAC when every value is 0
        or 1, else ADT.
    {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the randomised decompositions.

    Attributes
    ----------
    mod2_kind_ : str
        ``"adt"`` or ``"atac"``.
    block_scales_ : ndarray of shape (n_blocks,)
        The mean row norm each block was divided by.
    pca_ : sklearn.decomposition.PCA or None
        The joint PCA (None for a single block).
    n_features_in_ : int
        Columns of ``X`` (both blocks; GEX columns when ``X`` is a pair).
    n_features_mod2_ : int
        Columns of the second block.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.embedding import JointPCA
    >>> rng = np.random.default_rng(0)
    >>> gex = np.log1p(rng.poisson(2.0, (80, 40)).astype(float))
    >>> adt = np.log1p(rng.poisson(5.0, (80, 6)).astype(float))
    >>> model = JointPCA(n_components=10, n_block_components=8, random_state=0)
    >>> Z = model.fit_transform((gex, adt))
    >>> Z.shape
    (80, 10)
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_features_mod1": [Interval(Integral, 1, None, closed="left"), None],
        "modalities": [StrOptions({"both", "mod1", "mod2"})],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_block_components": [Interval(Integral, 1, None, closed="left")],
        "n_top_genes": [Interval(Integral, 1, None, closed="left")],
        "mod2": [StrOptions({"auto", "adt", "atac"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_features_mod1=None,
        *,
        modalities="both",
        n_components=100,
        n_block_components=50,
        n_top_genes=2000,
        mod2="auto",
        mudata_mods=None,
        random_state=None,
    ):
        self.n_features_mod1 = n_features_mod1
        self.modalities = modalities
        self.n_components = n_components
        self.n_block_components = n_block_components
        self.n_top_genes = n_top_genes
        self.mod2 = mod2
        self.mudata_mods = mudata_mods
        self.random_state = random_state

    def _seed(self):
        rs = self.random_state
        if rs is None or isinstance(rs, Integral):
            return rs
        return np.random.RandomState(rs.randint(np.iinfo(np.int32).max))

    def _fit(self, X1, X2, y):
        if X1.shape[0] < 3:
            raise ValueError(
                "JointPCA needs at least 3 cells to embed; got "
                f"n_samples={X1.shape[0]}."
            )
        seed = self._seed()
        kind = self.mod2
        if kind == "auto":
            kind = "atac" if _is_binary(X2) else "adt"
        self.mod2_kind_ = kind
        self.blocks_ = {}
        parts = []
        if self.modalities in ("both", "mod1"):
            self.blocks_["mod1"] = _GexBlock(
                self.n_top_genes, self.n_block_components, seed
            )
            parts.append(self.blocks_["mod1"].fit_transform(X1))
        if self.modalities in ("both", "mod2"):
            block = (
                _AtacBlock(self.n_block_components, seed)
                if kind == "atac"
                else _AdtBlock()
            )
            self.blocks_["mod2"] = block
            parts.append(block.fit_transform(X2))
        norms = [np.linalg.norm(p, axis=1).mean() for p in parts]
        self.block_scales_ = np.array([n if n > 0 else 1.0 for n in norms])
        if len(parts) == 1:
            self.pca_ = None
            return
        joined = np.hstack([p / s for p, s in zip(parts, self.block_scales_)])
        k = min(self.n_components, joined.shape[1], joined.shape[0] - 1)
        self.pca_ = PCA(k, random_state=seed).fit(joined)

    def _transform(self, X1, X2):
        parts = []
        if "mod1" in self.blocks_:
            parts.append(self.blocks_["mod1"].transform(X1))
        if "mod2" in self.blocks_:
            parts.append(self.blocks_["mod2"].transform(X2))
        if self.pca_ is None:
            return np.asarray(parts[0], dtype=np.float64)
        joined = np.hstack([p / s for p, s in zip(parts, self.block_scales_)])
        return self.pca_.transform(joined).astype(np.float64)
