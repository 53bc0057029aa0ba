"""DCCA: deep cross-omics cycle attention, a joint embedding of paired cells."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.multimodal._dcca import (
    ATTENTION_LOSSES,
    DCCAModule,
    ModalityRows,
    cycle_stages,
)
from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal._scmm import resolve_likelihood
from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    Trainer,
    seeded,
    validation_split,
)
from skdance.nn._counts import CHUNK_ROWS
from skdance.utils._validation import check_random_state_int, check_widths

__all__ = ["DCCA"]

_LIKELIHOODS = ("auto", "nb", "zinb", "bernoulli", "normal")
# DCCA's optimiser settings: Adam's epsilon (``args.eps``), and the step
# schedule of ``adjust_learning_rate``: x0.9 every 10 epochs, floored at a
# tenth of the initial rate (every DCCA script sets flr = lr / 10).
_ADAM_EPS = 0.01
_LR_DECAY, _LR_STEP, _LR_FLOOR = 0.9, 10, 0.1
# Cells scored at once by the validation loss: its reconstruction target is
# dense (512 x 25,734 SNARE-seq peaks = 53 MB in float32).
_VALID_ROWS = 512


def _resolve(likelihood, X, whom):
    """Return the likelihood of one modality (``"bernoulli"`` binarises counts)."""
    if likelihood == "bernoulli":
        values = X.data if sp.issparse(X) else np.asarray(X)
        if np.size(values) and np.min(values) < 0:
            raise ValueError(
                f"{whom}: likelihood 'bernoulli' binarises non-negative values "
                f"(x > 0) but the data have negative values (min "
                f"{float(np.min(values)):.4g})."
            )
        return likelihood
    return resolve_likelihood(likelihood, X)


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
        Cells per mini-batch.
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
    device : str or torch.device, default="cpu"
        Where to train: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``; the
        fitted module is kept on the CPU.
    mudata_mods : pair of str or None, default=None
        The two modalities to read when the data come as a
        :class:`mudata.MuData`: ``(mod1, mod2)``, e.g. ``("rna", "prot")``;
        None takes its first two.
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
    n_features_mod2_ : int
        Number of second-modality features.

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
        "hidden_dims": [tuple, list],
        "mod2_hidden_dims": [tuple, list],
        "decoder_dims": [tuple, list],
        "mod2_decoder_dims": [tuple, list],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "mod1_likelihood": [StrOptions(set(_LIKELIHOODS))],
        "mod2_likelihood": [StrOptions(set(_LIKELIHOODS))],
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
        hidden = (
            check_widths(self.hidden_dims, "hidden_dims"),
            check_widths(self.mod2_hidden_dims, "mod2_hidden_dims"),
        )
        decoders = (
            check_widths(self.decoder_dims, "decoder_dims", allow_empty=True),
            check_widths(self.mod2_decoder_dims, "mod2_decoder_dims", allow_empty=True),
        )
        whom = type(self).__name__
        n = X1.shape[0]
        if n < 2:
            raise ValueError(
                f"{whom} needs at least 2 cells to train (its encoders use batch "
                f"normalisation); got n_samples={n}."
            )
        likelihoods = (
            _resolve(self.mod1_likelihood, X1, whom),
            _resolve(self.mod2_likelihood, X2, whom),
        )
        data = [ModalityRows(M, lik) for M, lik in zip((X1, X2), likelihoods)]
        seed = check_random_state_int(self.random_state)
        train, valid = validation_split(n, self.validation_fraction, seed)
        if train.size < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out "
                f"{valid.size} of the {n} cells and leaves {train.size} to train; "
                f"{whom} needs at least 2 training cells (batch normalisation). "
                "Lower validation_fraction or pass more cells."
            )
        trainer = Trainer(self.device, self.verbose)
        weights = (self.mod1_attention_weight, self.mod2_attention_weight)
        rates = (self.learning_rate, self.mod2_learning_rate)
        stages = cycle_stages(self.n_cycles, 0 if self.first_modality == "mod1" else 1)

        with seeded(seed) as gen:
            module = DCCAModule(
                (X1.shape[1], X2.shape[1]),
                hidden,
                decoders,
                self.latent_dim,
                likelihoods,
                self.dropout,
            )
            module = trainer.to(module)
            for phase, cycle, student, teacher in stages:
                self._run_stage(
                    trainer,
                    module,
                    data,
                    (train, valid),
                    gen,
                    phase=phase,
                    cycle=cycle,
                    student=student,
                    teacher=teacher,
                    weight=weights[student],
                    rate=rates[student],
                )
        module.eval()
        self.likelihoods_ = likelihoods
        self.module_ = module.cpu()
        self.stages_ = stages
        self.history_ = trainer.history
        self.n_iter_ = len(trainer.history)

    def _run_stage(
        self,
        trainer,
        module,
        data,
        split,
        gen,
        *,
        phase,
        cycle,
        student,
        teacher,
        weight,
        rate,
    ):
        """Train one VAE for one stage of the cycle schedule."""
        device = trainer.device
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
            x, target, library = data[student].batch(idx, device)
            code = None
            if teacher is not None:
                with torch.no_grad():
                    code = module.latent(
                        data[teacher].encoder_input(idx, device), teacher
                    )
            return vae.loss(
                x,
                target,
                library,
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

            loss = trainer.minibatch_epoch(
                optimizer,
                step_loss,
                train.size,
                self.batch_size,
                gen,
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

        trainer.run(
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
            rows = ModalityRows(blocks[m], self.likelihoods_[m])
            codes = []
            with torch.no_grad():
                for start in range(0, len(rows), CHUNK_ROWS):
                    idx = np.arange(start, min(start + CHUNK_ROWS, len(rows)))
                    x = rows.encoder_input(idx, "cpu")
                    codes.append(module.latent(x, m).numpy())
            out.append(np.concatenate(codes))
        return np.hstack(out).astype(np.float64)
