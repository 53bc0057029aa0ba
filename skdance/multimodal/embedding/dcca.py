"""DCCA: deep cross-omics cycle attention, a joint embedding of paired cells.

DCCA (Zuo, Dai & Chen 2021) models each modality with its own VAE and
couples them only through an *attention-transfer* loss: while one VAE (the
student) trains, the other (the teacher, frozen, in evaluation mode)
encodes the same cells and the student's latent code is pulled towards the
teacher's.  This module holds the estimator :class:`DCCA` and its pieces:

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
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.nn import (
    CHUNK_ROWS,
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    FCLayers,
    GaussianEncoder,
    LikelihoodHeads,
    RowSource,
    gaussian_kl,
    get_likelihood,
    resolve_likelihood,
    training,
    validation_split,
)
from skdance.utils import Widths, check_random_state_int, fill_doc

__all__ = [
    "ATTENTION_LOSSES",
    "DCCA",
    "DCCAModule",
    "DCCAVAE",
    "SparseInputLinear",
    "SparseRows",
    "attention_distance",
    "cycle_stages",
]

#: Distances between the student's and the teacher's codes (DCCA's
#: ``attention_loss``: ``"Eucli"``, the default of every DCCA script, and
#: ``"L1"``).
ATTENTION_LOSSES = ("euclidean", "l1")

# The likelihoods a modality may have (from skdance.nn.LIKELIHOODS).
_SUPPORTED = ("nb", "zinb", "bernoulli", "normal")
# DCCA's BatchNorm1d settings (``build_multi_layers``).
_BATCH_NORM = {"momentum": 0.01, "eps": 1e-3}
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
    >>> from skdance.multimodal.embedding.dcca import SparseInputLinear, SparseRows
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


def _blocks(dims, dropout):
    """DCCA's ``build_multi_layers``: Linear, BatchNorm, ReLU, Dropout per width.

    Empty when ``dims`` has one width.
    """
    if len(dims) < 2:
        return nn.Identity()
    return FCLayers(dims, batch_norm=_BATCH_NORM, dropout=dropout, dropout_last=True)


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
    * ``"normal"``: the mean, fitted by squared error (DCCA's Gaussian
      type: a normal likelihood of fixed variance 1/2, up to a constant).

    The negative log-likelihoods are those of :data:`skdance.nn.LIKELIHOODS`
    (per entry, summed over the features of a cell).

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
        if likelihood not in _SUPPORTED:
            raise ValueError(
                f"unknown likelihood {likelihood!r}; DCCA has {_SUPPORTED}."
            )
        self.likelihood = get_likelihood(likelihood)
        first = hidden_dims[0]
        self.input_layer = SparseInputLinear(n_features, first)
        head = [nn.BatchNorm1d(first, **_BATCH_NORM), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        self.input_block = nn.Sequential(*head)
        self.hidden = _blocks(hidden_dims, dropout)
        self.posterior = GaussianEncoder(hidden_dims[-1], latent_dim)
        self.decoder = _blocks((latent_dim, *decoder_dims), dropout)
        width = decoder_dims[-1] if decoder_dims else latent_dim
        self.heads = LikelihoodHeads(
            width, n_features, self.likelihood, learn_variance=False
        )

    def encode(self, x):
        """Return ``(z, mean, log_var)``: ``z`` sampled in training mode."""
        h = self.hidden(self.input_block(self.input_layer(x)))
        return self.posterior(h)

    def decode(self, z):
        """Raw head outputs (before the library size) for the codes ``z``."""
        return self.heads(self.decoder(z))

    def distribution(self, params, library):
        """Return the likelihood's parameters from the raw head outputs."""
        name = self.likelihood.name
        if name in ("bernoulli", "normal"):
            return [params[0]]
        mean = library.unsqueeze(1) * F.softmax(params[0], dim=1)
        disp = torch.exp(params[1].clamp(-_LOG_DISP_BOUND, _LOG_DISP_BOUND))
        if name == "nb":
            return [mean, disp]
        return [mean, disp, torch.sigmoid(params[2])]

    def reconstruction(self, target, params, library):
        """Negative log-likelihood of every cell (summed over features)."""
        dist = self.distribution(params, library)
        if self.likelihood.name == "normal":
            return (target - dist[0]).square().sum(dim=1)
        return self.likelihood.cell_nll(target, *dist)

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
    >>> from skdance.multimodal.embedding.dcca import attention_distance
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
    >>> from skdance.multimodal.embedding.dcca import cycle_stages
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


# DCCA's optimiser settings: Adam's epsilon (``args.eps``), and the step
# schedule of ``adjust_learning_rate``: x0.9 every 10 epochs, floored at a
# tenth of the initial rate (every DCCA script sets flr = lr / 10).
_ADAM_EPS = 0.01
_LR_DECAY, _LR_STEP, _LR_FLOOR = 0.9, 10, 0.1
# Cells scored at once by the validation loss: its reconstruction target is
# dense (512 x 25,734 SNARE-seq peaks = 53 MB in float32).
_VALID_ROWS = 512


def _resolve(likelihood, X, param, whom):
    """Return the likelihood's name for one modality (``"bernoulli"`` binarises)."""
    if likelihood == "bernoulli":
        values = X.data if sp.issparse(X) else np.asarray(X)
        if np.size(values) and np.min(values) < 0:
            raise ValueError(
                f"{whom}: likelihood 'bernoulli' binarises non-negative values "
                f"(x > 0) but the data have negative values (min "
                f"{float(np.min(values)):.4g})."
            )
        return likelihood
    return resolve_likelihood(likelihood, X, allowed=_SUPPORTED, param=param).name


def modality_rows(X, likelihood):
    """One modality's encoder input and likelihood target, as row sources.

    The input is what DCCA encodes: ``log1p`` of the counts for the count
    likelihoods (DCCA's ``normalize(logtrans_input=True)``, no per-cell
    scaling), the binarised values (``x > 0``) for ``"bernoulli"``, the
    values as given for ``"normal"``.  The target is what the likelihood
    scores: the counts, the binarised values, the values; its ``library``
    is the cell's total count.  Sparse data stay CSR.

    Parameters
    ----------
    X : {ndarray, sparse matrix}
        Validated values of the modality.
    likelihood : {"nb", "zinb", "bernoulli", "normal"}
        Its likelihood.

    Returns
    -------
    inputs, target : RowSource
        The encoder input and the likelihood target.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        if likelihood == "bernoulli":
            X.data[:] = 1.0
    else:
        X = np.array(X, dtype=np.float32, order="C")
        if likelihood == "bernoulli":
            X = (X > 0).astype(np.float32)
    target = RowSource(X, empty_library=0.0)
    if not get_likelihood(likelihood).counts:
        return target, target
    if sp.issparse(X):
        inputs = X.copy()
        inputs.data = np.log1p(inputs.data)
    else:
        inputs = np.log1p(X)
    return RowSource(inputs), target


def _encoder_input(rows, idx, device):
    """Rows ``idx`` of an encoder input: :class:`SparseRows` for CSR, else a tensor."""
    if sp.issparse(rows.X):
        return SparseRows.from_csr(rows.X[idx], device)
    return rows.batch(idx, device)


@fill_doc
class DCCA(BaseJointEmbedding):
    """DCCA: two VAEs that teach each other through their latent codes.

    The deep cross-omics cycle attention model of Zuo, Dai & Chen (2021),
    as the authors' code (``cmzuo11/DCCA``) and DANCE train it:

    1. One VAE per modality.  Encoder: ``Linear -> BatchNorm -> ReLU ->
       Dropout`` blocks (``hidden_dims`` for the first modality,
       ``mod2_hidden_dims`` for the second), a Gaussian posterior
       ``q(z | x)`` reparameterised in training; decoder: the blocks of
       ``decoder_dims`` / ``mod2_decoder_dims`` (empty: the likelihood
       heads read ``z`` directly, DCCA's ATAC decoder) and the heads of the
       modality's likelihood.  RNA (and ADT counts): negative binomial with
       mean ``library * softmax(.)`` and dispersion ``exp(.)``; ATAC:
       Bernoulli on the binarised peaks.
    2. Attention transfer: while one VAE (the student) trains, the other
       (the teacher, frozen in evaluation mode) encodes the same cells, and
       the squared distance between the student's code and the teacher's
       posterior mean joins the loss, weighted by ``mod1_attention_weight``
       when the first modality's VAE learns (DCCA's ``sf2``) and by
       ``mod2_attention_weight`` when the second's does (``sf1``).  Loss
       per cell: ``reconstruction + beta KL(q(z|x) || N(0, I)) + weight *
       attention``.
    3. The cycle schedule (DCCA's ``cycle``): cycle 0 trains the
       ``first_modality``'s VAE alone; cycle 1 trains the other VAE alone,
       then with attention towards the first; every further cycle trains
       one VAE with attention towards the other, alternating, up to cycle
       ``n_cycles``.  Every stage has its own Adam (epsilon 0.01,
       ``weight_decay``), its learning rate (``learning_rate`` for the
       first modality's VAE, ``mod2_learning_rate`` for the second's)
       multiplied by 0.9 every 10 epochs down to a tenth of it, its KL
       warm-up (``beta`` from ``1 / kl_warmup_epochs`` to 1) and early
       stopping on the loss of held-out cells (best state restored).
    4. ``transform``: the posterior mean of the first modality's VAE, the
       representation the DCCA paper and README use for clustering and
       visualisation ("scRNA-latent: the joint-learning space"; DANCE's
       appendix D.2 says the same).  ``embedding="concat"`` returns both
       latent means side by side (what DANCE's example script scores),
       ``"mod2"`` the second modality's.

    Units and likelihoods: DCCA takes raw counts (RNA) and binarised ATAC,
    and does its own transformation: the encoder reads ``log1p`` of the
    counts (no per-cell scaling, as DCCA), the NB likelihood scores the raw
    counts with the cell's total as library size.  ``mod1_likelihood`` and
    ``mod2_likelihood`` choose each modality's model: ``"nb"`` (DCCA's RNA
    model), ``"zinb"``, ``"bernoulli"`` (DCCA's ATAC model: counts are
    binarised, ``x > 0``), or ``"normal"`` for already normalised values
    (log-normalised GEX, CLR ADT: the encoder reads them as given and the
    decoder is fitted by squared error, DCCA's Gaussian type).  ``"auto"``
    picks ``"bernoulli"`` for 0/1 data, ``"nb"`` for non-negative integers
    and ``"normal"`` otherwise; pass ``mod2_likelihood="bernoulli"`` for raw
    ATAC counts.

    Deliberate differences from the authors' code: the KL term is the
    divergence of the reparameterised posterior (DCCA passes the log
    variance as the standard deviation of ``Normal``, DANCE its
    exponential); the library size is the total count (DCCA's code takes
    the sum of the *log-transformed* counts, DANCE ``exp(total / 100)``);
    the Gaussian type's squared error counts zeros too (DCCA masks them);
    the log dispersion is clipped to [-12, 12]; the validation loss is
    computed every epoch at KL weight 1 and training stops after
    ``patience`` epochs without improvement, keeping the best state (DCCA
    tests every 10 epochs, stops after 30 epochs without improvement or a
    relative change below 1e-4, and keeps the last state; DANCE keeps the
    best); DANCE's feature selection (3,000 highly variable features per
    modality) belongs in a Pipeline before the model.

    Memory and time: sparse input stays sparse.  The first layer reads
    mini-batches of CSR rows without densifying them and builds its weight
    gradient row by row, so a batch costs time in its stored entries, not
    in cells x features; only the reconstruction target of a mini-batch is
    dense.

    Parameters
    ----------
    n_features_mod1 : int, default=None
        Columns of the first modality when ``X`` is ``[mod1 | mod2]``
        column blocks (not needed when ``X`` is a pair).
    hidden_dims : tuple of int, default=(128,)
        Encoder widths of the first modality (DANCE and DCCA's SNARE-seq
        script: ``[n_genes, 128]``).
    mod2_hidden_dims : tuple of int, default=(1500, 128)
        Encoder widths of the second modality (``[n_peaks, 1500, 128]``).
    decoder_dims : tuple of int, default=(128,)
        Decoder widths of the first modality, latent side first.
    mod2_decoder_dims : tuple of int, default=()
        Decoder widths of the second modality (DCCA's ATAC decoder has
        none: one linear layer from the code).
    latent_dim : int, default=50
        Latent dimensions of each VAE (DANCE: 50, so that the two codes
        side by side give the competition's 100).
    mod1_likelihood, mod2_likelihood : {"auto", "nb", "zinb", "bernoulli", \
"normal"}, default="auto"
        Likelihood of each modality, see above.
    attention_loss : {"euclidean", "l1"}, default="euclidean"
        Distance between the student's and the teacher's codes (DCCA's
        ``"Eucli"``, squared, and ``"L1"``).
    mod1_attention_weight : float, default=1.0
        Weight of the attention loss when the first modality's VAE learns
        from the second (DCCA's ``sf2``).
    mod2_attention_weight : float, default=5.0
        Weight of the attention loss when the second modality's VAE learns
        from the first (DCCA's ``sf1``).
    n_cycles : int, default=2
        DCCA's ``cycle``: cycles 0 to ``n_cycles`` run.  1: the first
        modality's VAE is never taught (DCCA's SNARE-seq demo and DANCE's
        script, which score the codes side by side); 2: the smallest
        schedule in which the first modality's VAE learns from the second;
        for ``embedding="mod1"`` it gives the embedding of DCCA's SHARE-seq
        run (``cycle=3``), whose last stage trains only the second VAE.
    first_modality : {"mod1", "mod2"}, default="mod1"
        Whose VAE is trained first and teaches first (DCCA's ``first``:
        ``"RNA"`` in every script).
    embedding : {"mod1", "mod2", "concat"}, default="mod1"
        What ``transform`` returns, see above.
    dropout : float, default=0.1
        Dropout rate after every hidden block.
    kl_warmup_epochs : int, default=10
        Epochs of each stage over which the KL weight rises to 1 (DCCA's
        ``anneal_epoch``); 0 uses weight 1 throughout.
    learning_rate : float, default=0.01
        Initial learning rate of the first modality's VAE (DCCA's ``lr1``).
    mod2_learning_rate : float, default=0.005
        Initial learning rate of the second modality's VAE (``lr2``).
    weight_decay : float, default=1e-6
        Adam's L2 penalty.
    batch_size : int, default=64
        {batch_size}
    max_epochs : int, default=15
        Maximum epochs of each stage (DCCA: 500 with early stopping, testing
        every 10 epochs; DANCE: 10).  15 keeps a SNARE-seq fit (10,309
        cells, 25,734 peaks, Bernoulli) within about 15 minutes of one CPU
        core; small sets (a few thousand cells) may use more.
    validation_fraction : float, default=0.1
        Fraction of the cells held out for early stopping (DCCA's
        ``test_size_prop``); 0 trains every epoch and keeps the last state.
    patience : int or None, default=10
        Epochs without a lower validation loss before a stage stops; None
        trains all ``max_epochs``.
    {device} {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initialisation, the batches, dropout
        and the latent draws.
    verbose : int, default=0
        Show a tqdm progress bar per stage with the losses.

    Attributes
    ----------
    likelihoods_ : tuple of str
        The likelihoods used for the two modalities.
    module_ : DCCAModule
        The trained torch module (on the CPU).
    stages_ : list of tuple
        The schedule that ran: ``(phase, cycle, student, teacher)`` with
        the modalities as 0 / 1 (teacher None: no attention loss).
    history_ : list of dict
        One record per epoch: phase (e.g. ``"pretrain_mod1"``,
        ``"transfer_mod2"``), cycle, epoch (within its stage),
        train_loss, reconstruction, kl, attention (batch means),
        kl_weight, learning_rate, valid_loss when cells are held out,
        seconds.
    n_iter_ : int
        Number of epochs run over all stages.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit`` (both blocks, or the
        first modality's when ``X`` is a pair).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of those columns, when the input had them.
    {n_features_mod2_}

    See Also
    --------
    skdance.multimodal.prediction.ScMM : A mixture-of-experts multimodal VAE.

    References
    ----------
    Zuo, Dai & Chen (2021), "Deep cross-omics cycle attention model for
    joint analysis of single-cell multi-omics data", Bioinformatics 37(22),
    4091-4099.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.embedding.dcca import DCCA
    >>> rng = np.random.default_rng(0)
    >>> rna = rng.poisson(2.0, size=(60, 30)).astype(float)
    >>> atac = rng.binomial(1, 0.2, size=(60, 40)).astype(float)
    >>> model = DCCA(hidden_dims=(16,), mod2_hidden_dims=(16,),
    ...              decoder_dims=(16,), latent_dim=4, n_cycles=2,
    ...              max_epochs=2, random_state=0)
    >>> Z = model.fit_transform((rna, atac))
    >>> Z.shape, model.likelihoods_
    ((60, 4), ('nb', 'bernoulli'))
    >>> [stage[0] for stage in model.stages_]
    ['pretrain_mod1', 'pretrain_mod2', 'transfer_mod2', 'transfer_mod1']
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_features_mod1": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_dims": [Widths()],
        "mod2_hidden_dims": [Widths()],
        "decoder_dims": [Widths(allow_empty=True)],
        "mod2_decoder_dims": [Widths(allow_empty=True)],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "mod1_likelihood": [StrOptions({"auto", *_SUPPORTED})],
        "mod2_likelihood": [StrOptions({"auto", *_SUPPORTED})],
        "attention_loss": [StrOptions(set(ATTENTION_LOSSES))],
        "mod1_attention_weight": [Interval(Real, 0, None, closed="left")],
        "mod2_attention_weight": [Interval(Real, 0, None, closed="left")],
        "n_cycles": [Interval(Integral, 0, None, closed="left")],
        "first_modality": [StrOptions({"mod1", "mod2"})],
        "embedding": [StrOptions({"mod1", "mod2", "concat"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "kl_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "mod2_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        **VALIDATION_CONSTRAINTS,
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_features_mod1=None,
        hidden_dims=(128,),
        mod2_hidden_dims=(1500, 128),
        decoder_dims=(128,),
        mod2_decoder_dims=(),
        latent_dim=50,
        mod1_likelihood="auto",
        mod2_likelihood="auto",
        attention_loss="euclidean",
        mod1_attention_weight=1.0,
        mod2_attention_weight=5.0,
        n_cycles=2,
        first_modality="mod1",
        embedding="mod1",
        dropout=0.1,
        kl_warmup_epochs=10,
        learning_rate=0.01,
        mod2_learning_rate=0.005,
        weight_decay=1e-6,
        batch_size=64,
        max_epochs=15,
        validation_fraction=0.1,
        patience=10,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.n_features_mod1 = n_features_mod1
        self.hidden_dims = hidden_dims
        self.mod2_hidden_dims = mod2_hidden_dims
        self.decoder_dims = decoder_dims
        self.mod2_decoder_dims = mod2_decoder_dims
        self.latent_dim = latent_dim
        self.mod1_likelihood = mod1_likelihood
        self.mod2_likelihood = mod2_likelihood
        self.attention_loss = attention_loss
        self.mod1_attention_weight = mod1_attention_weight
        self.mod2_attention_weight = mod2_attention_weight
        self.n_cycles = n_cycles
        self.first_modality = first_modality
        self.embedding = embedding
        self.dropout = dropout
        self.kl_warmup_epochs = kl_warmup_epochs
        self.learning_rate = learning_rate
        self.mod2_learning_rate = mod2_learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X1, X2, y):
        hidden = (tuple(self.hidden_dims), tuple(self.mod2_hidden_dims))
        decoders = (tuple(self.decoder_dims), tuple(self.mod2_decoder_dims))
        whom = type(self).__name__
        n = X1.shape[0]
        if n < 2:
            raise ValueError(
                f"{whom} needs at least 2 cells to train (its encoders use batch "
                f"normalisation); got n_samples={n}."
            )
        likelihoods = (
            _resolve(self.mod1_likelihood, X1, "mod1_likelihood", whom),
            _resolve(self.mod2_likelihood, X2, "mod2_likelihood", whom),
        )
        data = [modality_rows(M, lik) for M, lik in zip((X1, X2), likelihoods)]
        seed = check_random_state_int(self.random_state)
        train, valid = validation_split(n, self.validation_fraction, seed)
        if train.size < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out "
                f"{valid.size} of the {n} cells and leaves {train.size} to train; "
                f"{whom} needs at least 2 training cells (batch normalisation). "
                "Lower validation_fraction or pass more cells."
            )
        weights = (self.mod1_attention_weight, self.mod2_attention_weight)
        rates = (self.learning_rate, self.mod2_learning_rate)
        stages = cycle_stages(self.n_cycles, 0 if self.first_modality == "mod1" else 1)

        with training(self, seed=seed) as run:
            module = DCCAModule(
                (X1.shape[1], X2.shape[1]),
                hidden,
                decoders,
                self.latent_dim,
                likelihoods,
                self.dropout,
            )
            module = run.place(module)
            for phase, cycle, student, teacher in stages:
                self._run_stage(
                    run,
                    module,
                    data,
                    (train, valid),
                    phase=phase,
                    cycle=cycle,
                    student=student,
                    teacher=teacher,
                    weight=weights[student],
                    rate=rates[student],
                )
        self.likelihoods_ = likelihoods
        self.stages_ = stages

    def _run_stage(
        self,
        run,
        module,
        data,
        split,
        *,
        phase,
        cycle,
        student,
        teacher,
        weight,
        rate,
    ):
        """Train one VAE for one stage of the cycle schedule."""
        device = run.device
        train, valid = split
        vae = module.vaes[student]
        kwargs = {"fused": True} if device.type in ("cpu", "cuda") else {}
        optimizer = torch.optim.Adam(
            vae.parameters(),
            lr=rate,
            eps=_ADAM_EPS,
            weight_decay=self.weight_decay,
            **kwargs,
        )
        warmup = self.kl_warmup_epochs

        def loss_of(idx, kl_weight):
            idx = idx.numpy() if isinstance(idx, torch.Tensor) else idx
            inputs, target = data[student]
            x = _encoder_input(inputs, idx, device)
            code = None
            if teacher is not None:
                with torch.no_grad():
                    code = module.latent(
                        _encoder_input(data[teacher][0], idx, device), teacher
                    )
            return vae.loss(
                x,
                target.batch(idx, device),
                target.library_of(idx, device),
                code,
                kl_weight=kl_weight,
                attention_weight=weight,
                attention=self.attention_loss,
            )

        def epoch_fn(e):
            epoch = e + 1  # DCCA counts epochs from 1
            lr = max(rate * _LR_DECAY ** (epoch // _LR_STEP), rate * _LR_FLOOR)
            for group in optimizer.param_groups:
                group["lr"] = lr
            kl_weight = min(1.0, epoch / warmup) if warmup else 1.0
            module.eval()
            vae.train()
            parts = []

            def step_loss(idx):
                loss, part = loss_of(idx, kl_weight)
                parts.append((len(idx), part))
                return loss

            loss = run.trainer.minibatch_epoch(
                optimizer,
                step_loss,
                train.size,
                self.batch_size,
                run.generator,
                indices=train,
                min_batch=2,
            )
            total = sum(size for size, _ in parts) or 1
            record = {"train_loss": loss, "cycle": cycle}
            for key in ("reconstruction", "kl", "attention"):
                record[key] = sum(float(p[key]) * s for s, p in parts) / total
            record.update(kl_weight=kl_weight, learning_rate=lr)
            return record

        def validate():
            module.eval()
            total = 0.0
            with torch.no_grad():
                for start in range(0, valid.size, _VALID_ROWS):
                    idx = valid[start : start + _VALID_ROWS]
                    total += float(loss_of(idx, 1.0)[0]) * idx.size
            return {"valid_loss": total / valid.size}

        run.run(
            phase,
            self.max_epochs,
            epoch_fn,
            valid_fn=validate if valid.size else None,
            patience=self.patience,
            module=vae,
        )

    def _transform(self, X1, X2):
        which = {"mod1": (0,), "mod2": (1,), "concat": (0, 1)}[self.embedding]
        blocks = (X1, X2)
        module = self.module_
        module.eval()
        out = []
        for m in which:
            rows, _ = modality_rows(blocks[m], self.likelihoods_[m])
            codes = []
            with torch.no_grad():
                for chunk in rows.chunks(CHUNK_ROWS):
                    idx = np.arange(chunk.start, chunk.stop)
                    x = _encoder_input(rows, idx, "cpu")
                    codes.append(module.latent(x, m).numpy())
            out.append(np.concatenate(codes))
        return np.hstack(out).astype(np.float64)
