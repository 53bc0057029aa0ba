"""Cross-modal autoencoders (CMAE) as a modality matcher."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from skdance.multimodal._cmae import CMAE_CONSTRAINTS, fit_cmae, latent
from skdance.multimodal._docs import CMAE_PARAMS
from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal.matching._base import BaseModalityMatcher, nearest_partners
from skdance.utils import fill_doc

__all__ = ["CMAEMatcher"]


@fill_doc(**CMAE_PARAMS)
class CMAEMatcher(BaseModalityMatcher):
    """Cross-modal autoencoders: match cells by their shared latent space.

    The method of Yang et al. (2021) as DANCE runs it for the NeurIPS 2021
    modality-matching task.  The model is the one of
    :class:`~skdance.multimodal.prediction.CMAE`: an autoencoder per
    modality with a shared latent layer, a latent discriminator trained
    adversarially against the encoders (a second optimiser), and an anchor
    loss pulling the latents of the paired training cells together.
    ``match`` encodes each modality with its own encoder (DANCE's eq. 46)
    and scores every cell of ``Y`` by its latent distance to each cell of
    ``X``: the ``n_partners`` nearest cells of ``Y`` (``distance`` in the
    latent space) share a row's probability, the others get 0 (a sparse
    matrix).  With the defaults this is DANCE's code: a one-hot matrix of
    the nearest neighbour under the L1 distance.  (DANCE's paper writes the
    score as the latents' inner product, eq. 47; its code uses the nearest
    neighbour, kept here.  DANCE looks up, for each second-modality cell,
    its nearest first-modality cell; here each row is a cell of ``X``, as
    the matching contract asks.)

    Units, memory and the deliberate differences from DANCE (every cell
    trains, no batch classifier, no step learning-rate decay) are those of
    :class:`~skdance.multimodal.prediction.CMAE`; DANCE's matching code
    uses Adam with an L2 penalty (not AdamW) and 50 epochs, kept here.

    Parameters
    ----------
    n_partners : int, default=1
        Number of latent nearest neighbours of a cell of ``X`` among the
        cells of ``Y`` that share its row's probability.
    distance : {"manhattan", "euclidean", "cosine"}, default="manhattan"
        Latent distance (DANCE: L1).
    {hidden_dims} {latent_dim} {discriminator_dim}
    max_epochs : int, default=50
        Training epochs.
    {learning_rate}
    weight_decay : float, default=1e-4
        L2 penalty (Adam) of both optimisers.
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
    skdance.multimodal.prediction.CMAE : The same model predicting a modality.

    References
    ----------
    Yang, Belyaeva, Venkatachalapathy, Damodaran, Katcoff, Radhakrishnan,
    Shivashankar & Uhler (2021), "Multi-domain translation between
    single-cell imaging and sequencing data using autoencoders", Nature
    Communications 12, 31.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.matching.cmae import CMAEMatcher
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(60, 3))
    >>> X = np.abs(Z @ rng.normal(size=(3, 20)))
    >>> Y = Z @ rng.normal(size=(3, 5))
    >>> model = CMAEMatcher(n_partners=5, hidden_dims=(16, 8), latent_dim=4,
    ...                     max_epochs=5, batch_size=16, random_state=0)
    >>> S = model.fit(X, Y).match(X, Y)
    >>> S.shape, S.nnz
    ((60, 60), 300)
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_partners": [Interval(Integral, 1, None, closed="left")],
        "distance": [StrOptions({"manhattan", "euclidean", "cosine"})],
        **CMAE_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_partners=1,
        distance="manhattan",
        hidden_dims=None,
        latent_dim=50,
        discriminator_dim=100,
        max_epochs=50,
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
        self.n_partners = n_partners
        self.distance = distance
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
        fit_cmae(self, X, Y, decoupled_weight_decay=False)

    def _match(self, X, Y):
        h1, h2 = latent(self.module_, X, 0), latent(self.module_, Y, 1)
        return nearest_partners(h1, h2, self.n_partners, self.distance)
