"""Adjacency reconstruction losses of graph autoencoders, dense or sampled.

An inner-product decoder scores every pair of nodes, ``sigmoid(h_i . h_j)``.
The exact loss compares all ``n ** 2`` scores with the 0/1 adjacency, which
takes ``O(n ** 2)`` memory: 16 GiB per dense float32 matrix at 64k cells.
The sampled loss scores the observed edges and as many non-edges drawn
uniformly at random (PyG's graph autoencoder,
``torch_geometric.utils.negative_sampling``), with the non-edge term scaled so
that its expectation is the exact loss: memory ``O(edges)``.
"""

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from skdance.nn._chunked import checkpointed_sum
from skdance.nn._losses import balanced_adjacency_bce

__all__ = ["EdgeSampler", "adjacency_reconstruction_loss"]

#: Cells from which ``adjacency_loss="auto"`` samples non-edges.
SAMPLED_ADJACENCY_FROM = 5000


class EdgeSampler:
    """The positive entries of a 0/1 adjacency and uniform draws of its zeros.

    Parameters
    ----------
    target : scipy.sparse matrix of shape (n, n)
        The adjacency to reconstruct; its non-zero entries (self loops
        included where the model reconstructs them) are the positives.
    generator : torch.Generator
        Generator of the draws (so a fixed seed gives fixed draws).
    negative_ratio : float, default=1.0
        Non-edges drawn per positive entry at every call of
        :meth:`negatives`.

    Attributes
    ----------
    n : int
        Number of nodes.
    positives : torch.LongTensor of shape (2, n_pos)
        Row and column of every positive entry.
    n_negative : int
        Number of zero entries, ``n ** 2 - n_pos``.
    """

    def __init__(self, target, generator, negative_ratio=1.0):
        A = sp.csr_matrix(target)
        A.eliminate_zeros()
        A.sort_indices()
        self.n = A.shape[0]
        rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(A.indptr))
        cols = A.indices.astype(np.int64)
        self.positives = torch.from_numpy(np.vstack([rows, cols]))
        self._keys = torch.from_numpy(rows * self.n + cols)  # sorted
        self.n_negative = self.n * self.n - cols.size
        self.n_samples = min(
            self.n_negative, max(1, int(np.ceil(negative_ratio * cols.size)))
        )
        self.generator = generator

    def negatives(self):
        """Draw ``n_samples`` zero entries ``(i, j)`` uniformly, with replacement.

        Pairs are drawn uniformly over all ``n ** 2`` entries and the
        positive ones are rejected, so the kept ones are uniform over the
        zeros.

        Returns
        -------
        index : torch.LongTensor of shape (2, n_samples)
            Rows and columns.
        """
        n, need, found = self.n, self.n_samples, []
        density = 1.0 - self.n_negative / (n * n)
        while need > 0:
            draw = int(need / max(1.0 - density, 1e-3) * 1.1) + 16
            keys = torch.randint(0, n * n, (draw,), generator=self.generator)
            pos = torch.searchsorted(self._keys, keys).clamp_(max=len(self._keys) - 1)
            keys = keys[self._keys[pos] != keys][:need]
            found.append(keys)
            need -= len(keys)
        keys = torch.cat(found)
        return torch.stack([keys // n, keys % n])


#: Node pairs scored at once by the sampled loss (checkpointed chunks).
EDGE_CHUNK = 2**18


def _pair_sum(h, index, fn):
    """``sum(fn(h_i . h_j))`` over the pairs ``index``, in checkpointed chunks.

    Only one chunk's gathered rows are held at a time (also in the backward
    pass), so memory stays ``O(EDGE_CHUNK x d)`` beyond ``h`` itself.
    """

    def part(rows, pairs):
        return fn((h[pairs[:, 0]] * h[pairs[:, 1]]).sum(dim=1)).sum()

    return checkpointed_sum(part, (index.T,), index.shape[1], EDGE_CHUNK)


def adjacency_reconstruction_loss(h, target, *, kind="mse", sampler=None):
    """Reconstruction loss of an inner-product decoder ``sigmoid(h h^T)``.

    Parameters
    ----------
    h : torch.Tensor of shape (n, d)
        Node representations fed to the inner product.
    target : torch.Tensor of shape (n, n) or None
        Dense 0/1 adjacency for the exact loss; None with ``sampler``.
    kind : {"mse", "balanced_bce"}, default="mse"
        ``"mse"``: mean squared error of ``sigmoid(h h^T)`` (scTAG);
        ``"balanced_bce"``: :func:`~skdance.nn.balanced_adjacency_bce` of the
        logits (Kipf's GAE), which equals half the mean BCE over the edges
        plus half the mean BCE over the non-edges.
    sampler : EdgeSampler, default=None
        When given, the loss is estimated from all positive entries and
        ``sampler.n_samples`` non-edges drawn uniformly (fresh draws at every
        call), in ``O(edges)`` memory; the estimate is unbiased: the
        non-edge term is scaled by ``n_negative / n_samples`` (``"mse"``) or
        averaged (``"balanced_bce"``).

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from skdance.nn import EdgeSampler, adjacency_reconstruction_loss
    >>> h = torch.zeros(3, 2)
    >>> sampler = EdgeSampler(sp.identity(3), torch.Generator().manual_seed(0))
    >>> float(adjacency_reconstruction_loss(h, None, sampler=sampler))
    0.25
    """
    if kind not in ("mse", "balanced_bce"):
        raise ValueError(f"kind must be 'mse' or 'balanced_bce', got {kind!r}.")
    if sampler is None:
        logits = h @ h.T
        if kind == "mse":
            return F.mse_loss(torch.sigmoid(logits), target)
        return balanced_adjacency_bce(logits, target)
    pos = sampler.positives.to(h.device)
    neg = sampler.negatives().to(h.device)
    n_pos, n_neg = pos.shape[1], neg.shape[1]
    if kind == "mse":
        pos_sum = _pair_sum(h, pos, lambda x: (torch.sigmoid(x) - 1.0).square())
        neg_sum = _pair_sum(h, neg, lambda x: torch.sigmoid(x).square()) * (
            sampler.n_negative / n_neg
        )
        return (pos_sum + neg_sum) / (sampler.n * sampler.n)
    # BCE with logits: -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x))
    # = softplus(x)
    pos_mean = _pair_sum(h, pos, lambda x: F.softplus(-x)) / n_pos
    return 0.5 * (pos_mean + _pair_sum(h, neg, F.softplus) / n_neg)
