"""scMM: modality prediction by cross-modal generation of a mixture-of-experts VAE."""

from skdance.multimodal._docs import SCMM_PARAMS
from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal._scmm import SCMM_CONSTRAINTS, fit_scmm, predict_rows
from skdance.multimodal.prediction._base import BaseModalityPredictor
from skdance.utils import fill_doc

__all__ = ["ScMM"]


@fill_doc(**SCMM_PARAMS)
class ScMM(BaseModalityPredictor):
    """scMM: a mixture-of-experts multimodal VAE that predicts one modality.

    The model of Minoura et al. (2021) as the scMM code and DANCE's version
    train it (DANCE paper, appendix D.2, eqs. 41-44):

    1. One encoder per modality (``Linear -> BatchNorm -> ReLU`` layers of
       ``hidden_dims`` for the first modality, ``mod2_hidden_dims`` for the
       second) gives a Laplace posterior ``q(z | x_m)``; the prior is a
       Laplace with location 0 and a learnable scale (``learn_prior``); the
       joint posterior is the mixture of experts of the two.
    2. Each modality's decoder reconstructs it from the codes of both
       experts, with the likelihood of ``mod1_likelihood`` /
       ``mod2_likelihood``.
    3. Objective: scMM's stratified MoE ELBO (``m_elbo_naive_warmup``),
       ``1/2 sum_m {E_{q(z|x_m)}[log p(x_1|z) + log p(x_2|z)] - beta
       KL(q(z|x_m) || p(z))}``, with ``n_latent_samples`` draws per cell and
       expert (scMM draws 1) and the KL weight ``beta`` raised linearly from
       0 to 1 over ``kl_warmup_epochs`` epochs; Adam (AMSGrad); after the
       warm-up, early stopping on the loss of ``validation_fraction`` of the
       cells and the best state is kept.
    4. ``predict``: cross-modal generation, the likelihood mean of the
       second modality's decoder at the posterior location of ``q(z |
       x_mod1)``; for a count second modality the library size is the first
       modality's total times the training ratio of the totals (DANCE's
       ``ratio``).

    Units and likelihoods: scMM models raw counts (NB for RNA and protein,
    ZINB for ATAC; DANCE's competition scripts feed it the ``counts``
    layers and score after re-normalising its output).  Here the estimator
    predicts in the units it is given, so each modality's likelihood is a
    parameter, by default ``"auto"``: binarised values (only 0 and 1, the
    NeurIPS 2021 ATAC) get a Bernoulli, non-negative integers (raw counts)
    scMM's NB, and anything else (log-normalised GEX, CLR ADT, which can be
    negative) a Gaussian with a per-feature learned scale.  Count inputs are
    scaled to a total of 10,000 before encoding, as in scMM; other inputs
    are encoded as given.  Pass ``"zinb"`` for raw ATAC counts (scMM's ATAC
    model).

    Deliberate differences: the prediction is deterministic (posterior
    location, likelihood mean) where DANCE samples ``z`` and an NB draw;
    the best state is chosen among the epochs after the warm-up (DANCE
    looks at every epoch); a last mini-batch of one cell is skipped rather
    than every incomplete last batch.

    Memory: sparse input stays sparse; one mini-batch of cells is dense at
    a time during training, 4,096 cells at a time for validation and
    ``predict``.

    Parameters
    ----------
    hidden_dims : tuple of int, default=(100, 100)
        Hidden widths of the first modality's encoder and decoder (DANCE:
        ``r_hidden_dim=100``, two layers).
    mod2_hidden_dims : tuple of int, default=(20, 20)
        Hidden widths of the second modality's encoder and decoder (DANCE:
        ``p_hidden_dim=20``, two layers).
    {latent_dim}
    mod1_likelihood, mod2_likelihood : {"auto", "nb", "zinb", "normal", \
"bernoulli"}, default="auto"
        Likelihood of each modality, see above.
    learn_prior : bool, default=True
        Learn the scale of the Laplace prior (DANCE's default).
    kl_warmup_epochs : int, default=50
        Epochs over which the KL weight rises from 0 to 1 (scMM's
        ``deterministic_warmup``); early stopping starts after them.
    {n_latent_samples}
    learning_rate : float, default=1e-4
        {learning_rate}
    batch_size : int, default=64
        {batch_size}
    {max_epochs}
    validation_fraction : float, default=0.15
        Fraction of the cells held out for early stopping; 0 trains every
        epoch and keeps the last state.
    {patience} {device} {mudata_mods} {random_state} {verbose}

    Attributes
    ----------
    {likelihoods_} {module_}
    history_ : list of dict
        One record per epoch: phase (``"warmup"`` then ``"train"``), epoch,
        train_loss (negative ELBO per cell at the epoch's KL weight),
        kl_weight, valid_loss (negative ELBO per cell, KL weight 1) when
        cells are held out, seconds.
    {n_iter_}
    best_epoch_ : int or None
        Epoch (counted from 0 over both phases) whose state was kept; None
        when no cell is held out or every epoch is warm-up.
    {n_features_in_} {feature_names_in_} {n_features_mod2_} {feature_names_mod2_}

    See Also
    --------
    skdance.multimodal.matching.ScMMMatcher : The same model matching cells.

    References
    ----------
    Minoura, Abe, Nam, Nishikawa & Shimamura (2021), "A mixture-of-experts
    deep generative model for integrated analysis of single-cell multiomics
    data", Cell Reports Methods 1(5), 100071.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.prediction import ScMM
    >>> rng = np.random.default_rng(0)
    >>> X = rng.poisson(2.0, size=(60, 20)).astype(float)
    >>> Y = np.log1p(X[:, :5]) + rng.normal(0, 0.1, size=(60, 5))
    >>> model = ScMM(max_epochs=5, kl_warmup_epochs=2, learning_rate=1e-2,
    ...              random_state=0).fit(X, Y)
    >>> model.likelihoods_
    ('nb', 'normal')
    >>> model.predict(X).shape
    (60, 5)
    """

    _parameter_constraints = SCMM_CONSTRAINTS | MUDATA_CONSTRAINTS

    def __init__(
        self,
        *,
        hidden_dims=(100, 100),
        mod2_hidden_dims=(20, 20),
        latent_dim=10,
        mod1_likelihood="auto",
        mod2_likelihood="auto",
        learn_prior=True,
        kl_warmup_epochs=50,
        n_latent_samples=1,
        learning_rate=1e-4,
        batch_size=64,
        max_epochs=100,
        validation_fraction=0.15,
        patience=10,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_dims = hidden_dims
        self.mod2_hidden_dims = mod2_hidden_dims
        self.latent_dim = latent_dim
        self.mod1_likelihood = mod1_likelihood
        self.mod2_likelihood = mod2_likelihood
        self.learn_prior = learn_prior
        self.kl_warmup_epochs = kl_warmup_epochs
        self.n_latent_samples = n_latent_samples
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, Y):
        fit_scmm(self, X, Y)

    def _predict(self, X):
        return predict_rows(self.module_, X, self.likelihoods_[0])
