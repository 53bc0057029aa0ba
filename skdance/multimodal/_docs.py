"""Parameter descriptions shared by the estimators of one multimodal method.

Used with :func:`skdance.utils.fill_doc`: a method that serves several tasks
(CMAE, scMM) documents its model's parameters once here.
"""

__all__ = ["CMAE_PARAMS", "SCMM_PARAMS"]

CMAE_PARAMS = {
    "hidden_dims": """\
hidden_dims : tuple of int or None, default=None
    Encoder widths, input side first (decoders mirror them), used for
    both modalities; the last width feeds the shared latent layer.
    None: DANCE's ``(h, h, h, 100)`` with ``h = min(n_features, 1000)``
    for each modality.""",
    "latent_dim": """\
latent_dim : int, default=50
    Width of the shared latent space.""",
    "discriminator_dim": """\
discriminator_dim : int, default=100
    Hidden width of the latent discriminator.""",
    "learning_rate": """\
learning_rate : float, default=1e-4
    Learning rate of both optimisers.""",
    "reconstruction_weight": """\
reconstruction_weight : float, default=10.0
    Weight of the two autoencoders' reconstruction losses.""",
    "adversarial_weight": """\
adversarial_weight : float, default=10.0
    Weight of the latent GAN losses (of the encoders and of the
    discriminator).""",
    "pairing_weight": """\
pairing_weight : float, default=0.1
    Weight of the anchor loss on the latents of paired cells.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds the initialisation and the batch order.""",
    # Attributes
    "module_": """\
module_ : CMAEModule
    The trained autoencoders and discriminator (on CPU).""",
    "history_": """\
history_ : list of dict
    One record per epoch: phase, epoch, train_loss (the autoencoders'
    weighted loss), discriminator_loss, reconstruction_loss,
    adversarial_loss, pairing_loss, seconds.""",
    "n_features_in_": """\
n_features_in_ : int
    Number of first-modality features seen in ``fit``.""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    First-modality feature names, when the input had them.""",
    "feature_names_mod2_": """\
feature_names_mod2_ : ndarray of shape (`n_features_mod2_`,)
    Second-modality feature names, when ``Y`` had them.""",
}

SCMM_PARAMS = {
    "latent_dim": """\
latent_dim : int, default=10
    Latent dimensions.""",
    "n_latent_samples": """\
n_latent_samples : int, default=1
    Latent draws per cell and expert in the ELBO.""",
    "max_epochs": """\
max_epochs : int, default=100
    Maximum training epochs, warm-up included.""",
    "patience": """\
patience : int or None, default=10
    Epochs after the warm-up without a lower validation loss before
    stopping; None trains all ``max_epochs``.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds the validation split, the initialisation, the batches and the
    latent draws.""",
    # Attributes
    "likelihoods_": """\
likelihoods_ : tuple of str
    The likelihoods used for the first and the second modality.""",
    "module_": """\
module_ : ScMMModule
    The trained torch module (on the CPU).""",
    "n_features_in_": """\
n_features_in_ : int
    Number of first-modality features seen in ``fit``.""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of those features, when the input had them.""",
    "feature_names_mod2_": """\
feature_names_mod2_ : ndarray of shape (`n_features_mod2_`,)
    Names of those features, when ``Y`` had them.""",
}
