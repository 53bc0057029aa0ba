"""scMM: modality matching by nearest neighbours in a mixture-of-experts VAE."""

from numbers import Integral

from sklearn.utils._param_validation import Interval

from skdance.multimodal._docs import SCMM_PARAMS
from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal._scmm import SCMM_CONSTRAINTS, encode_rows, fit_scmm
from skdance.multimodal.matching._base import BaseModalityMatcher, nearest_partners
from skdance.utils import fill_doc

__all__ = ["ScMMMatcher"]


@fill_doc(**SCMM_PARAMS)
class ScMMMatcher(BaseModalityMatcher):
    """scMM: match cells across modalities in a shared latent space.

    The model of Minoura et al. (2021), trained exactly as
    :class:`~skdance.multimodal.prediction.ScMM` (one Laplace encoder per
    modality, mixture-of-experts posterior, Laplace prior, both decoders
    reconstructing from both experts' codes, scMM's MoE ELBO with KL
    warm-up; see there for the likelihoods and the units).  Matching is
    DANCE's: each modality's cells are encoded by its own encoder (the
    posterior location), and each cell of ``X`` is paired with its
    ``n_partners`` nearest cells of ``Y`` in the latent space (DANCE: the
    single nearest neighbour, Minkowski distance), each with probability
    ``1 / n_partners``; the result is a sparse row-stochastic matrix.

    Deliberate differences: DANCE looks up, for each cell of the second
    modality, its nearest cell of the first; here the rows (cells of ``X``)
    look up their nearest cells of ``Y`` so that every row sums to 1.
    DANCE's matching script trains on 15 % of the training cells and
    validates on 85 % (its split is reversed); here ``validation_fraction``
    of the cells is held out.

    Parameters
    ----------
    n_partners : int, default=1
        Cells of ``Y`` each cell of ``X`` is paired with (equal weights).
    distance : str, default="minkowski"
        Distance in the latent space (any :class:`~sklearn.neighbors.
        NearestNeighbors` metric; ``"minkowski"`` with ``p=2`` is Euclidean).
    hidden_dims : tuple of int, default=(100, 100)
        Hidden widths of the first modality's encoder and decoder.
    mod2_hidden_dims : tuple of int, default=(20, 20)
        Hidden widths of the second modality's encoder and decoder.
    {latent_dim}
    mod1_likelihood, mod2_likelihood : {"auto", "nb", "zinb", "normal", \
"bernoulli"}, default="auto"
        Likelihood of each modality: ``"auto"`` picks Bernoulli for 0/1
        values, scMM's NB for non-negative integers and a Gaussian
        otherwise (see :class:`~skdance.multimodal.prediction.ScMM`).
    learn_prior : bool, default=True
        Learn the scale of the Laplace prior.
    kl_warmup_epochs : int, default=50
        Epochs over which the KL weight rises from 0 to 1; early stopping
        starts after them.
    {n_latent_samples}
    learning_rate : float, default=1e-4
        {learning_rate}
    batch_size : int, default=64
        {batch_size}
    {max_epochs}
    validation_fraction : float, default=0.15
        Fraction of the cells held out for early stopping.
    {patience} {device} {mudata_mods} {random_state} {verbose}

    Attributes
    ----------
    {likelihoods_} {module_}
    history_ : list of dict
        One record per epoch (phases ``"warmup"`` and ``"train"``), as for
        :class:`~skdance.multimodal.prediction.ScMM`.
    {n_iter_}
    best_epoch_ : int or None
        Epoch whose state was kept.
    {n_features_in_} {feature_names_in_} {n_features_mod2_} {feature_names_mod2_}

    See Also
    --------
    skdance.multimodal.prediction.ScMM : The same model predicting a modality.

    References
    ----------
    Minoura, Abe, Nam, Nishikawa & Shimamura (2021), "A mixture-of-experts
    deep generative model for integrated analysis of single-cell multiomics
    data", Cell Reports Methods 1(5), 100071.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.matching import ScMMMatcher
    >>> rng = np.random.default_rng(0)
    >>> X = rng.poisson(2.0, size=(60, 20)).astype(float)
    >>> Y = np.log1p(X[:, :5]) + rng.normal(0, 0.1, size=(60, 5))
    >>> matcher = ScMMMatcher(max_epochs=5, kl_warmup_epochs=2,
    ...                       learning_rate=1e-2, random_state=0).fit(X, Y)
    >>> S = matcher.match(X, Y)
    >>> S.shape, bool(np.allclose(S.sum(axis=1), 1))
    ((60, 60), True)
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_partners": [Interval(Integral, 1, None, closed="left")],
        "distance": [str],
        **SCMM_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_partners=1,
        distance="minkowski",
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
        self.n_partners = n_partners
        self.distance = distance
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

    def _match(self, X, Y):
        zx = encode_rows(self.module_, X, 0, self.likelihoods_[0])
        zy = encode_rows(self.module_, Y, 1, self.likelihoods_[1])
        return nearest_partners(zx, zy, self.n_partners, self.distance)
