"""Full-batch losses over many cells, computed in checkpointed row chunks.

Full-batch graph models (scTAG, scDSC) run their encoder over every cell at
once, but their per-cell decoders and losses (ZINB likelihood, expression
reconstruction) need not hold ``n_cells x n_genes`` activations all
together: :func:`checkpointed_sum` evaluates a row-wise loss chunk by chunk
under activation checkpointing (:func:`torch.utils.checkpoint.checkpoint`),
so the forward pass keeps only each chunk's inputs and the backward pass
recomputes one chunk at a time.  Memory then grows with the chunk, not with
cells x genes; the gradient is the same up to float summation order.
"""

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from skdance.nn._counts import NormalizedCounts
from skdance.nn._likelihoods import get_likelihood

__all__ = [
    "FULL_BATCH_ENTRIES",
    "checkpointed_sum",
    "full_batch_counts",
    "reconstruction_mse",
    "zinb_loss",
]

#: Cells x genes up to which full-batch losses are computed in one piece
#: (exactly as before chunking existed); larger inputs are chunked.
FULL_BATCH_ENTRIES = 2**24


def _chunk_rows(n_genes):
    return max(1, FULL_BATCH_ENTRIES // 4 // max(n_genes, 1))


def checkpointed_sum(fn, tensors, n_rows, chunk_rows):
    """``sum(fn(rows, *[t[rows] for t in tensors]))`` over row chunks, checkpointed.

    Parameters
    ----------
    fn : callable
        ``fn(rows, *chunks)`` returns a scalar tensor (a sum over the rows of
        the slice ``rows``).
    tensors : sequence of torch.Tensor
        Row-aligned inputs, sliced per chunk.
    n_rows : int
        Number of rows.
    chunk_rows : int
        Rows per chunk.

    Returns
    -------
    total : torch.Tensor
        Scalar.
    """
    total = 0.0
    for start in range(0, n_rows, chunk_rows):
        rows = slice(start, min(start + chunk_rows, n_rows))
        chunks = [t[rows] for t in tensors]
        if torch.is_grad_enabled():
            part = checkpoint(fn, rows, *chunks, use_reentrant=False)
        else:
            part = fn(rows, *chunks)
        total = total + part
    return total


def full_batch_counts(data, device=None):
    """Return the counts a full-batch ZINB loss reads.

    A dense tensor when ``n_cells * n_genes <= FULL_BATCH_ENTRIES`` (the
    loss is then computed in one piece), else ``data`` itself, whose rows
    :func:`zinb_loss` densifies chunk by chunk.

    Parameters
    ----------
    data : NormalizedCounts
        Normalised counts of the training cells.
    device : torch.device, default=None
        Where the dense tensor goes.

    Returns
    -------
    counts : torch.Tensor or NormalizedCounts
    """
    n, g = data.shape
    if n * g <= FULL_BATCH_ENTRIES:
        counts = torch.from_numpy(data.dense_counts())
        return counts if device is None else counts.to(device)
    return data


def zinb_loss(heads, hidden, counts, size_factors):
    """Mean ZINB negative log-likelihood of all cells' counts.

    Parameters
    ----------
    heads : torch.nn.Module
        Maps ``hidden`` to ``(mean, disp, pi)`` (e.g.
        :class:`~skdance.nn.ZINBHeads`), row by row.
    hidden : torch.Tensor of shape (n_cells, d)
        Decoder output of every cell.
    counts : torch.Tensor or NormalizedCounts
        Dense counts (one piece), or sparse counts (see
        :func:`full_batch_counts`): then the heads and the likelihood run on
        checkpointed chunks whose counts are densified one at a time.
    size_factors : torch.Tensor of shape (n_cells,)
        Size factors scaling the mean.

    Returns
    -------
    loss : torch.Tensor
        Scalar, the mean over all entries of the ZINB negative
        log-likelihood (``get_likelihood("zinb").nll``).
    """
    zinb = get_likelihood("zinb")
    if not isinstance(counts, NormalizedCounts):
        mean, disp, pi = heads(hidden)
        return zinb.nll(counts, mean * size_factors[:, None], disp, pi).mean()
    n, g = counts.shape

    def part(rows, h, sf):
        x = torch.from_numpy(counts.dense_counts(rows)).to(h.device)
        mean, disp, pi = heads(h)
        return zinb.nll(x, mean * sf[:, None], disp, pi).sum()

    total = checkpointed_sum(part, (hidden, size_factors), n, _chunk_rows(g))
    return total / (n * g)


def reconstruction_mse(layer, hidden, target):
    """Mean squared error between ``layer(hidden)`` and ``target``.

    Above ``FULL_BATCH_ENTRIES`` entries, ``layer`` and the error run on
    checkpointed row chunks (``layer`` must act row by row).

    Parameters
    ----------
    layer : torch.nn.Module
        Output layer (e.g. the ``Linear`` reconstruction of an autoencoder).
    hidden : torch.Tensor of shape (n_cells, d)
        Its input.
    target : torch.Tensor of shape (n_cells, n_genes)
        What it reconstructs.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    n, g = target.shape
    if n * g <= FULL_BATCH_ENTRIES:
        return F.mse_loss(layer(hidden), target)

    def part(rows, h, t):
        return (layer(h) - t).square().sum()

    return checkpointed_sum(part, (hidden, target), n, _chunk_rows(g)) / (n * g)
