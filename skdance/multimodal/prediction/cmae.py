"""Cross-modal autoencoders (CMAE) as a modality predictor."""

from skdance.multimodal._cmae import CMAE_CONSTRAINTS, fit_cmae, translate
from skdance.multimodal._docs import CMAE_PARAMS
from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal.prediction._base import BaseModalityPredictor
from skdance.utils import fill_doc

__all__ = ["CMAE"]


@fill_doc(**CMAE_PARAMS)
class CMAE(BaseModalityPredictor):
    """Cross-modal autoencoders: predict a modality through a shared latent space.

    The method of Yang et al. (2021) as DANCE runs it for the NeurIPS 2021
    modality-prediction task.  Each modality has an autoencoder; the
    encoders map both modalities into one latent space (their last layer
    is shared), a latent discriminator trained adversarially against them
    (a second optimiser, least-squares GAN loss) makes the two latent
    distributions alike, and an anchor loss pulls the latents of paired
    cells together (all training cells are paired).  ``predict`` decodes
    the first modality's latent with the second modality's decoder,
    ``D_2(E_1(x))``.

    Training loss of the autoencoders, per mini-batch:
    ``reconstruction_weight * (|x_1 - D_1(E_1(x_1))| + |x_2 - D_2(E_2(x_2))|)
    + adversarial_weight * GAN + pairing_weight * |E_1(x_1) - E_2(x_2)|``
    (mean absolute errors).  The architecture, initialisation, optimiser
    (AdamW, betas (0.5, 0.999)) and defaults are DANCE's (see
    :mod:`skdance.multimodal._cmae`).

    Units: ``X`` and ``Y`` are used as given and ``Y`` is predicted in its
    own units, as in DANCE's competition runs (log-normalised GEX, CLR ADT,
    binary ATAC); the reconstruction is an L1 loss on those values, with a
    LeakyReLU output layer (so negative values, e.g. CLR, are allowed).
    Memory: sparse input stays sparse; one mini-batch of cells is
    densified at a time for training and 4,096 cells at a time in
    ``predict``.

    Deliberate differences from DANCE: every cell trains the model (DANCE
    holds out 15% only to print a validation RMSE); DANCE's optional
    latent classifier of batch labels is left out (``fit`` takes no side
    information); the step learning-rate decay (every 100,000 steps) is
    left out, it never acts within DANCE's budgets on the starter sets.

    Parameters
    ----------
    {hidden_dims} {latent_dim} {discriminator_dim}
    max_epochs : int, default=100
        Training epochs.
    {learning_rate}
    weight_decay : float, default=1e-4
        Decoupled weight decay (AdamW) of both optimisers.
    batch_size : int, default=64
        {batch_size}
    {reconstruction_weight} {adversarial_weight} {pairing_weight} {device} {mudata_mods}
    {random_state} {verbose}

    Attributes
    ----------
    {module_} {history_} {n_iter_} {n_features_in_} {feature_names_in_}
    {n_features_mod2_} {feature_names_mod2_}

    See Also
    --------
    skdance.multimodal.matching.CMAEMatcher : The same model matching cells.

    References
    ----------
    Yang, Belyaeva, Venkatachalapathy, Damodaran, Katcoff, Radhakrishnan,
    Shivashankar & Uhler (2021), "Multi-domain translation between
    single-cell imaging and sequencing data using autoencoders", Nature
    Communications 12, 31.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.prediction.cmae import CMAE
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(60, 3))
    >>> X = np.abs(Z @ rng.normal(size=(3, 20)))
    >>> Y = Z @ rng.normal(size=(3, 5))
    >>> model = CMAE(hidden_dims=(16, 8), latent_dim=4, max_epochs=5,
    ...              batch_size=16, random_state=0).fit(X, Y)
    >>> model.predict(X).shape, model.n_iter_
    ((60, 5), 5)
    """

    _parameter_constraints = CMAE_CONSTRAINTS | MUDATA_CONSTRAINTS

    def __init__(
        self,
        *,
        hidden_dims=None,
        latent_dim=50,
        discriminator_dim=100,
        max_epochs=100,
        learning_rate=1e-4,
        weight_decay=1e-4,
        batch_size=64,
        reconstruction_weight=10.0,
        adversarial_weight=10.0,
        pairing_weight=0.1,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.discriminator_dim = discriminator_dim
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.reconstruction_weight = reconstruction_weight
        self.adversarial_weight = adversarial_weight
        self.pairing_weight = pairing_weight
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, Y):
        fit_cmae(self, X, Y, decoupled_weight_decay=True)

    def _predict(self, X):
        return translate(self.module_, X)
