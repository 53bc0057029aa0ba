"""JAE's torch module, its losses, its input reduction and cell-cycle scores.

JAE (Liu et al., the "Amateur" team's winning joint embedding of the
NeurIPS 2021 multimodal competition, adapted from scDEC) is an autoencoder
of the reduced, concatenated modalities whose embedding is split into four
parts: cell type logits, batch logits, cell-cycle scores and the rest
(DANCE paper, appendix D.2, eqs. 50-52).  This module holds the pieces
:class:`~skdance.multimodal.embedding.JAE` assembles: the network
(:class:`JAEModule`), the batch "randomness" loss
(:func:`uniform_batch_loss`), the per-modality truncated SVD / LSI
(:class:`ModalityReducer`).  The cell-cycle scores are
:func:`skdance.multimodal.embedding.cell_cycle_scores`.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from torch import nn
from torch.nn import functional as F

from skdance.multimodal._scmogcn import LSI
from skdance.nn import FCLayers

__all__ = [
    "JAEModule",
    "ModalityReducer",
    "uniform_batch_loss",
]


class ModalityReducer:
    """One modality's reduction: truncated SVD, LSI, or the values as given.

    ``method="svd"``: :class:`~sklearn.decomposition.TruncatedSVD` of the
    values as given (JAE's code reduces log-normalised expression and
    peaks this way); ``"lsi"``: DANCE's LSI (tf-idf, log, truncated SVD
    without its first component; a modality with negative values, e.g.
    CLR proteins, gets the SVD alone).  A modality with no more features
    than ``n_components`` (or ``n_components=None``) is used as given.
    Sparse input stays sparse.

    Parameters
    ----------
    n_components : int or None
        Components kept (at most ``n_cells - 1`` and ``n_features - 1``).
    method : {"svd", "lsi"}
        Decomposition.
    random_state : int
        Seed of the randomised SVD.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._jae import ModalityReducer
    >>> X = np.random.default_rng(0).poisson(1.0, (20, 10)).astype(float)
    >>> ModalityReducer(3, "svd", 0).fit_transform(X).shape
    (20, 3)
    >>> ModalityReducer(30, "svd", 0).fit_transform(X).shape
    (20, 10)
    """

    def __init__(self, n_components, method, random_state):
        self.n_components = n_components
        self.method = method
        self.random_state = random_state

    def fit_transform(self, X):
        """Fit on the training cells ``X`` and return their reduced values."""
        n_cells, n_features = X.shape
        if self.n_components is None or self.n_components >= n_features:
            self.decomposition_ = None
            return self.transform(X)
        k = max(1, min(self.n_components, n_features - 1, n_cells - 1))
        if self.method == "lsi":
            k = max(1, min(k, n_features - 2, n_cells - 2))
            self.decomposition_ = LSI(k, self.random_state)
            return np.asarray(self.decomposition_.fit_transform(X), dtype=np.float64)
        self.decomposition_ = TruncatedSVD(k, random_state=self.random_state)
        return self.decomposition_.fit_transform(X).astype(np.float64, copy=False)

    def transform(self, X):
        """Reduced values of cells ``X``."""
        if self.decomposition_ is None:
            return X.toarray() if sp.issparse(X) else np.array(X, dtype=np.float64)
        return np.asarray(self.decomposition_.transform(X), dtype=np.float64)


def uniform_batch_loss(logits):
    """Cross-entropy of the batch logits against the uniform distribution.

    ``mean_i sum_k -(1/K) log softmax(logits_i)_k``: JAE's "random
    classification" loss, smallest (``log K``) when the batch part predicts
    every batch equally, i.e. says nothing about the batch.  Batch labels
    do not enter it; their number ``K`` sizes the part.

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal._jae import uniform_batch_loss
    >>> round(float(uniform_batch_loss(torch.zeros(4, 2))), 4)  # log 2
    0.6931
    """
    return -F.log_softmax(logits, dim=-1).mean(dim=-1).mean()


class JAEModule(nn.Module):
    """JAE's autoencoder with an embedding of four parts (DANCE's network).

    Encoder: per width of ``hidden_dims`` a block ``Linear -> GELU ->
    BatchNorm -> Dropout``, then a linear layer to ``n_components``
    dimensions: the embedding ``[cell type | batch | cell cycle | rest]``
    whose first ``part_sizes[0]`` dimensions are the cell-type logits, the
    next ``part_sizes[1]`` the batch logits, the next ``part_sizes[2]``
    the cell-cycle scores.  Decoder: ``Linear -> ReLU`` per width of
    ``decoder_dims``, then ``Linear -> ReLU`` to the input (DANCE's and
    JAE's final ReLU kept).

    Parameters
    ----------
    n_inputs : int
        Width of the reduced, concatenated modalities.
    part_sizes : tuple of int
        Sizes ``(c, b, s)`` of the cell-type, batch and cell-cycle parts.
    n_components : int
        Embedding width ``d = c + b + s + z``.
    hidden_dims : tuple of int
        Encoder widths.
    decoder_dims : tuple of int
        Decoder hidden widths.
    dropout : float
        Dropout rate of the encoder blocks.
    """

    def __init__(
        self, n_inputs, part_sizes, n_components, hidden_dims, decoder_dims, dropout
    ):
        super().__init__()
        blocks = []
        width = n_inputs
        for h in hidden_dims:
            blocks += [nn.Linear(width, h), nn.GELU(), nn.BatchNorm1d(h)]
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            width = h
        blocks.append(nn.Linear(width, n_components))
        self.encoder = nn.Sequential(*blocks)
        self.decoder = FCLayers([n_components, *decoder_dims, n_inputs])
        bounds = np.cumsum([0, *part_sizes])
        self.parts = tuple(slice(int(a), int(b)) for a, b in zip(bounds, bounds[1:]))

    def forward(self, x):
        """Return ``(reconstruction, embedding)`` of the rows ``x``."""
        h = self.encoder(x)
        return self.decoder(h), h

    def losses(self, x, cell_type, batch_on, cycle):
        """Return the four losses of JAE (eq. 52) on the rows ``x``.

        Parameters
        ----------
        x : torch.Tensor
            Reduced inputs.
        cell_type : torch.Tensor of int
            Class index per row; -1 for an unlabelled row (no loss).
        batch_on : bool
            Whether the batch part exists.
        cycle : torch.Tensor or None
            Cell-cycle scores per row, when the part exists.

        Returns
        -------
        losses : dict of str to torch.Tensor
            ``reconstruction`` (MSE), ``cell_type`` (cross-entropy of the
            labelled rows; 0 when none), ``batch`` (uniform cross-entropy),
            ``cell_cycle`` (MSE).
        """
        recon, h = self(x)
        c_part, b_part, s_part = self.parts
        zero = x.new_zeros(())
        cycle_loss = zero if cycle is None else F.mse_loss(h[:, s_part], cycle)
        labelled = cell_type >= 0
        if bool(labelled.any()):
            ce = F.cross_entropy(h[labelled, c_part], cell_type[labelled])
        else:
            ce = zero
        return {
            "reconstruction": F.mse_loss(recon, x),
            "cell_type": ce,
            "batch": uniform_batch_loss(h[:, b_part]) if batch_on else zero,
            "cell_cycle": cycle_loss,
        }
