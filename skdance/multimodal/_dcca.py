"""DCCA's torch module: one variational autoencoder per modality.

DCCA (Zuo, Dai & Chen 2021) models each modality with its own VAE and
couples them only through an *attention-transfer* loss: while one VAE (the
student) trains, the other (the teacher, frozen, in evaluation mode)
encodes the same cells and the student's latent code is pulled towards the
teacher's.  This module holds the pieces the estimator
:class:`~skdance.multimodal.embedding.DCCA` trains:

* :class:`SparseInputLinear`, a first layer that reads a mini-batch of CSR
  rows without densifying it (SNARE-seq's 25,734 peaks are 0.4 % non-zero,
  so the dense product would cost a hundred times the sparse one);
* :class:`DCCAVAE`, the VAE of one modality (DCCA's ``VAE``: encoder
  ``Linear -> BatchNorm -> ReLU -> Dropout`` blocks, Gaussian posterior,
  decoder blocks and the heads of a negative binomial, ZINB, Bernoulli or
  Gaussian likelihood) and its loss;
* :class:`DCCAModule`, the pair of VAEs;
* :func:`cycle_stages`, DCCA's training schedule.
"""

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from skdance.nn import (
    FCLayers,
    GaussianEncoder,
    bernoulli_nll,
    dense_rows,
    gaussian_kl,
    nb_nll,
    zinb_nll,
)

__all__ = [
    "ATTENTION_LOSSES",
    "DCCAModule",
    "DCCAVAE",
    "ModalityRows",
    "SparseInputLinear",
    "SparseRows",
    "attention_distance",
    "cycle_stages",
]

#: Distances between the student's and the teacher's codes (DCCA's
#: ``attention_loss``: ``"Eucli"``, the default of every DCCA script, and
#: ``"L1"``).
ATTENTION_LOSSES = ("euclidean", "l1")

_COUNT_LIKELIHOODS = ("nb", "zinb")
# DCCA's BatchNorm1d settings (``build_multi_layers``).
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3
# Numerical guard on the log dispersion (DCCA exponentiates it unbounded).
_LOG_DISP_BOUND = 12.0


class SparseRows:
    """A mini-batch of CSR rows in the form ``embedding_bag`` reads.

    Parameters
    ----------
    indices : torch.Tensor of int64
        Column of every stored entry, row after row.
    offsets : torch.Tensor of int64
        Start of every row in ``indices`` (CSR ``indptr[:-1]``).
    values : torch.Tensor of float32
        Stored values.
    rows : torch.Tensor of int64
        Row (within the batch) of every stored entry.
    csr : scipy.sparse.csr_matrix or None
        The same rows as a scipy matrix (kept for batches on the CPU, whose
        weight gradient scipy computes).
    """

    def __init__(self, indices, offsets, values, rows, csr=None):
        self.indices, self.offsets, self.values = indices, offsets, values
        self.rows, self.csr = rows, csr

    @classmethod
    def from_csr(cls, X, device="cpu"):
        """Tensors of the CSR matrix ``X`` (float32), on ``device``."""
        X = sp.csr_matrix(X, dtype=np.float32)
        counts = np.diff(X.indptr)
        tensors = (
            torch.from_numpy(X.indices.astype(np.int64)),
            torch.from_numpy(X.indptr[:-1].astype(np.int64)),
            torch.from_numpy(X.data),
            torch.from_numpy(np.repeat(np.arange(X.shape[0]), counts)),
        )
        tensors = [t.to(device) for t in tensors]
        on_cpu = torch.device(device).type == "cpu"
        return cls(*tensors, csr=X if on_cpu else None)

    def __len__(self):
        return self.offsets.shape[0]


class _RowsMatmul(torch.autograd.Function):
    """``X @ W`` for CSR rows ``X``; the weight's gradient without densifying.

    The forward pass is ``embedding_bag`` (a weighted sum of the rows of
    ``W`` that a cell's stored entries select).  The weight's gradient
    ``X^T G`` is scipy's sparse-dense product on the CPU (faster than
    ``embedding_bag``'s own backward and torch's sparse products on wide
    inputs) and an ``index_add_`` of the stored entries' contributions on
    other devices.
    """

    @staticmethod
    def forward(ctx, weight, batch):
        ctx.batch = batch
        ctx.n_in = weight.shape[0]
        return F.embedding_bag(
            batch.indices,
            weight,
            batch.offsets,
            mode="sum",
            per_sample_weights=batch.values,
        )

    @staticmethod
    def backward(ctx, grad_out):
        batch = ctx.batch
        if batch.csr is not None and grad_out.device.type == "cpu":
            grad = batch.csr.T @ grad_out.detach().numpy()
            grad_weight = torch.from_numpy(np.ascontiguousarray(grad, np.float32))
        else:
            grad_weight = grad_out.new_zeros(ctx.n_in, grad_out.shape[1])
            contrib = grad_out[batch.rows] * batch.values.unsqueeze(1)
            grad_weight.index_add_(0, batch.indices, contrib)
        return grad_weight, None


class SparseInputLinear(nn.Module):
    """A linear layer whose input may be a batch of CSR rows.

    ``y = x W + b`` with ``W`` stored as (in_features, out_features), the
    layout ``embedding_bag`` reads, and initialised as ``torch.nn.Linear``
    (uniform in ``+-1 / sqrt(in_features)``).  A dense tensor input gives
    the ordinary product; a :class:`SparseRows` input costs time in its
    stored entries, and the weight's gradient is made without densifying
    the batch.

    Parameters
    ----------
    in_features, out_features : int
        Widths.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, torch
    >>> from skdance.multimodal._dcca import SparseInputLinear, SparseRows
    >>> layer = SparseInputLinear(6, 3)
    >>> X = sp.random(4, 6, density=0.3, format="csr", random_state=0)
    >>> dense = layer(torch.from_numpy(X.toarray()).float())
    >>> torch.allclose(layer(SparseRows.from_csr(X)), dense, atol=1e-6)
    True
    """

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()

    def reset_parameters(self):
        """Uniform in ``+-1 / sqrt(in_features)``, as ``torch.nn.Linear``."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        """``x W + b`` for a dense tensor or :class:`SparseRows` ``x``."""
        if isinstance(x, SparseRows):
            out = _RowsMatmul.apply(self.weight, x)
        else:
            out = x @ self.weight
        return out + self.bias


def _set_batch_norm(module):
    """Give every BatchNorm1d of ``module`` DCCA's momentum and epsilon."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm1d):
            layer.momentum, layer.eps = _BN_MOMENTUM, _BN_EPS


def _blocks(dims, dropout):
    """DCCA's ``build_multi_layers``: Linear, BatchNorm, ReLU, Dropout per width.

    :class:`~skdance.nn.FCLayers` with a dropout after its last block too
    (DCCA drops out after every block); empty when ``dims`` has one width.
    """
    if len(dims) < 2:
        return nn.Identity()
    layers = FCLayers(dims, batch_norm=True, dropout=dropout)
    block = nn.Sequential(layers, nn.Dropout(dropout)) if dropout > 0 else layers
    _set_batch_norm(block)
    return block


class DCCAVAE(nn.Module):
    """The VAE of one modality in DCCA.

    Encoder: a :class:`SparseInputLinear` first layer, then BatchNorm
    (momentum 0.01, eps 0.001), ReLU and Dropout, then the same blocks for
    the other widths of ``hidden_dims``; a Gaussian posterior (mean and log
    variance layers, reparameterised in training mode, the mean otherwise).
    Decoder: the blocks of ``decoder_dims`` from the latent code (none:
    the heads read the code directly, DCCA's ATAC decoder) and the heads of
    the likelihood:

    * ``"nb"``: mean ``library * softmax(.)`` and dispersion ``exp(.)``
      (DCCA's ``Decoder_logNorm_NB``); ``"zinb"`` adds zero-inflation
      logits (``Decoder_logNorm_ZINB``);
    * ``"bernoulli"``: logits (DCCA's ``Decoder`` with a sigmoid);
    * ``"normal"``: the mean, fitted by squared error.

    Parameters
    ----------
    n_features : int
        Features of the modality.
    hidden_dims : tuple of int
        Encoder widths (at least one).
    decoder_dims : tuple of int
        Decoder widths, latent side first (may be empty).
    latent_dim : int
        Latent dimensions.
    likelihood : {"nb", "zinb", "bernoulli", "normal"}
        Likelihood of the modality.
    dropout : float, default=0.1
        Dropout rate after every hidden block.
    """

    def __init__(
        self, n_features, hidden_dims, decoder_dims, latent_dim, likelihood, dropout=0.1
    ):
        super().__init__()
        if likelihood not in (*_COUNT_LIKELIHOODS, "bernoulli", "normal"):
            raise ValueError(f"unknown likelihood {likelihood!r}.")
        self.likelihood = likelihood
        first = hidden_dims[0]
        self.input_layer = SparseInputLinear(n_features, first)
        head = [nn.BatchNorm1d(first), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        self.input_block = nn.Sequential(*head)
        self.hidden = _blocks(hidden_dims, dropout)
        self.posterior = GaussianEncoder(hidden_dims[-1], latent_dim)
        self.decoder = _blocks((latent_dim, *decoder_dims), dropout)
        width = decoder_dims[-1] if decoder_dims else latent_dim
        n_heads = {"nb": 2, "zinb": 3, "bernoulli": 1, "normal": 1}[likelihood]
        self.heads = nn.ModuleList(nn.Linear(width, n_features) for _ in range(n_heads))
        _set_batch_norm(self)

    def encode(self, x):
        """Return ``(z, mean, log_var)``: ``z`` sampled in training mode."""
        h = self.hidden(self.input_block(self.input_layer(x)))
        return self.posterior(h)

    def decode(self, z):
        """Raw head outputs (before the library size) for the codes ``z``."""
        h = self.decoder(z)
        return [head(h) for head in self.heads]

    def reconstruction(self, target, params, library):
        """Negative log-likelihood of every cell (summed over features)."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(target, params[0]).sum(dim=1)
        if self.likelihood == "normal":
            return (target - params[0]).square().sum(dim=1)
        mean = library.unsqueeze(1) * F.softmax(params[0], dim=1)
        disp = torch.exp(params[1].clamp(-_LOG_DISP_BOUND, _LOG_DISP_BOUND))
        if self.likelihood == "nb":
            return nb_nll(target, mean, disp).sum(dim=1)
        # zinb_nll averages over every entry; DCCA sums over the features
        pi = torch.sigmoid(params[2])
        total = zinb_nll(target, mean, disp, pi) * target.numel()
        return total.expand(target.shape[0]) / target.shape[0]

    def loss(
        self,
        x,
        target,
        library,
        teacher=None,
        *,
        kl_weight,
        attention_weight,
        attention="euclidean",
    ):
        """DCCA's per-cell loss, averaged over the batch.

        ``reconstruction + kl_weight * KL(q(z | x) || N(0, I)) +
        attention_weight * d(z, teacher)`` where ``z`` is the student's
        (sampled, in training mode) code and ``teacher`` the teacher's code
        of the same cells (None: no attention term).

        Returns
        -------
        loss : torch.Tensor
            Scalar.
        parts : dict
            Batch means of the reconstruction, KL and attention terms.
        """
        z, mean, log_var = self.encode(x)
        rec = self.reconstruction(target, self.decode(z), library)
        kl = gaussian_kl(mean, log_var)
        total = rec + kl_weight * kl
        att = torch.zeros_like(rec)
        if teacher is not None:
            att = attention_distance(z, teacher, attention)
            total = total + attention_weight * att
        parts = {
            "reconstruction": rec.mean().detach(),
            "kl": kl.mean().detach(),
            "attention": att.mean().detach(),
        }
        return total.mean(), parts


def attention_distance(z, teacher, kind="euclidean"):
    """Per-cell distance between student codes ``z`` and teacher codes.

    ``"euclidean"``: squared Euclidean distance (DCCA's ``Eucli_dis``);
    ``"l1"``: L1 distance (``L1_dis``).

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal._dcca import attention_distance
    >>> attention_distance(torch.ones(1, 2), torch.zeros(1, 2))
    tensor([2.])
    """
    diff = z - teacher
    if kind == "euclidean":
        return diff.square().sum(dim=1)
    if kind == "l1":
        return diff.abs().sum(dim=1)
    raise ValueError(f"attention must be one of {ATTENTION_LOSSES}, got {kind!r}.")


class DCCAModule(nn.Module):
    """The two VAEs of DCCA.

    Parameters
    ----------
    n_features : tuple of int
        Features of each modality.
    hidden_dims, decoder_dims : tuple of tuple of int
        Encoder and decoder widths of each modality.
    latent_dim : int
        Latent dimensions (both modalities: the attention loss compares the
        codes entry by entry).
    likelihoods : tuple of str
        Likelihood of each modality.
    dropout : float, default=0.1
        Dropout rate.
    """

    def __init__(
        self,
        n_features,
        hidden_dims,
        decoder_dims,
        latent_dim,
        likelihoods,
        dropout=0.1,
    ):
        super().__init__()
        self.vaes = nn.ModuleList(
            DCCAVAE(n, enc, dec, latent_dim, lik, dropout)
            for n, enc, dec, lik in zip(
                n_features, hidden_dims, decoder_dims, likelihoods
            )
        )

    def latent(self, x, modality):
        """Posterior means of one modality's rows (evaluation mode)."""
        return self.vaes[modality].encode(x)[1]


def cycle_stages(n_cycles, first=0):
    """DCCA's training schedule: ``(phase, cycle, student, teacher)`` stages.

    Cycle 0 trains the first modality's VAE alone; cycle 1 trains the other
    VAE alone, then again with the attention loss towards the first
    (``DCCA.fit``'s ``used_cycle == 1`` branch); every later cycle trains
    one VAE with the attention loss towards the other, alternating (even
    cycles: the first modality's VAE).  ``n_cycles`` is DCCA's ``cycle``:
    cycles 0 to ``n_cycles`` run.

    Examples
    --------
    >>> from skdance.multimodal._dcca import cycle_stages
    >>> [s[0] for s in cycle_stages(2)]
    ['pretrain_mod1', 'pretrain_mod2', 'transfer_mod2', 'transfer_mod1']
    """
    second = 1 - first
    stages = [(f"pretrain_mod{first + 1}", 0, first, None)]
    for cycle in range(1, n_cycles + 1):
        student = first if cycle % 2 == 0 else second
        teacher = 1 - student
        if cycle == 1:
            stages.append((f"pretrain_mod{student + 1}", 1, student, None))
        stages.append((f"transfer_mod{student + 1}", cycle, student, teacher))
    return stages


class ModalityRows:
    """One modality's encoder input, likelihood target and library sizes.

    The input is what DCCA encodes: ``log1p`` of the counts for the count
    likelihoods (DCCA's ``normalize(logtrans_input=True)``, no per-cell
    scaling), the binarised values (``x > 0``) for ``"bernoulli"``, the
    values as given for ``"normal"``.  The target is what the likelihood
    scores: the counts, the binarised values, the values.  The library size
    (count likelihoods) is the cell's total count.  Sparse data stay CSR and
    hand out :class:`SparseRows` batches; dense data stay dense.

    Parameters
    ----------
    X : {ndarray, sparse matrix}
        Validated values of the modality.
    likelihood : {"nb", "zinb", "bernoulli", "normal"}
        Its likelihood.
    """

    def __init__(self, X, likelihood):
        self.sparse = sp.issparse(X)
        if self.sparse:
            X = sp.csr_matrix(X, dtype=np.float32, copy=True)
            X.sum_duplicates()
            X.eliminate_zeros()
        else:
            X = np.array(X, dtype=np.float32, order="C")
        if likelihood == "bernoulli":
            if self.sparse:
                X.data[:] = 1.0
            else:
                X = (X > 0).astype(np.float32)
        self.target = X
        if likelihood in _COUNT_LIKELIHOODS:
            if self.sparse:
                inputs = X.copy()
                inputs.data = np.log1p(inputs.data)
            else:
                inputs = np.log1p(X)
            totals = np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
        else:
            inputs = X
            totals = np.ones(X.shape[0])
        self.inputs = inputs
        self.library = totals.astype(np.float32)

    def __len__(self):
        return self.target.shape[0]

    def encoder_input(self, idx, device):
        """Return the encoder input of rows ``idx`` (SparseRows or a tensor)."""
        if self.sparse:
            return SparseRows.from_csr(self.inputs[idx], device)
        return torch.from_numpy(self.inputs[idx]).to(device)

    def batch(self, idx, device):
        """Return ``(encoder input, dense target, library)`` of the rows ``idx``."""
        target = torch.from_numpy(dense_rows(self.target, idx)).to(device)
        library = torch.from_numpy(self.library[idx]).to(device)
        return self.encoder_input(idx, device), target, library
