"""Cross-modal autoencoders (CMAE): the torch module and its training loop.

Yang, Belyaeva, Venkatachalapathy, Damodaran, Katcoff, Radhakrishnan,
Shivashankar & Uhler (2021), "Multi-domain translation between single-cell
imaging and sequencing data using autoencoders", Nature Communications 12,
31.  One autoencoder per modality maps both modalities into one latent
space; a latent discriminator, trained adversarially against the encoders
with a second optimiser, makes the two latent distributions alike (the
divergence term of DANCE's eqs. 38-39), and an anchor loss pulls the latents
of paired cells together (eq. 40).  The modality predictor
(:class:`~skdance.multimodal.prediction.CMAE`) decodes the first modality's
latent with the second modality's decoder; the matcher
(:class:`~skdance.multimodal.matching.CMAEMatcher`) compares latents
(eqs. 46-47).  Both estimators train this one module with
:func:`fit_cmae`.

The architecture and losses are those of the authors' RNA/ATAC model
(``uhlerlab/cross-modal-autoencoders``, ``model_rna_atac``) as DANCE runs it
(``dance/modules/multi_modality/{predict,match}_modality/cmae.py`` with the
settings of its example scripts):

- encoder ``x -> h -> h -> h -> 100 -> 50`` and the mirror decoder, with
  ``h = min(n_features, 1000)``, LeakyReLU(0.2) after every linear layer
  (the latent and the reconstruction included); the last encoder layer and
  the first decoder layer are shared by the two modalities
  (``shared_layer=True``);
- a discriminator ``50 -> 50 -> 100 -> 1`` (LeakyReLU(0.2) after each layer)
  with the least-squares GAN loss: it learns to output 0 on the first
  modality's latents and 1 on the second's, the encoders learn the reverse;
- the generator loss ``adversarial_weight * (mean (D(h_1) - 1)^2 +
  mean D(h_2)^2) + reconstruction_weight * (L1(x_1) + L1(x_2)) +
  pairing_weight * mean |h_1 - h_2|`` (mean absolute errors), the
  discriminator loss ``adversarial_weight * (mean D(h_1)^2 +
  mean (D(h_2) - 1)^2)``; one discriminator step then one generator step
  per mini-batch, Adam with betas (0.5, 0.999);
- He (Kaiming normal, fan-in) initialisation of the autoencoders, N(0, 0.02)
  of the discriminator, zero biases.
"""

import functools
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from skdance.nn import (
    TORCH_CONSTRAINTS,
    FCLayers,
    RowSource,
    minibatches,
    stack_rows,
    training,
)
from skdance.utils import Widths

__all__ = [
    "CMAE_CONSTRAINTS",
    "CMAEModule",
    "fit_cmae",
    "latent",
    "resolve_hidden_dims",
    "translate",
]

# DANCE's sizes: hidden width min(n_features, 1000) three times, then 100.
_MAX_HIDDEN = 1000
_BOTTLENECK = 100
_BETAS = (0.5, 0.999)

_leaky = functools.partial(nn.LeakyReLU, 0.2)

# Parameters the two CMAE estimators share.
CMAE_CONSTRAINTS = {
    "hidden_dims": [Widths(), None],
    "latent_dim": [Interval(Integral, 1, None, closed="left")],
    "discriminator_dim": [Interval(Integral, 1, None, closed="left")],
    "max_epochs": [Interval(Integral, 0, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
    "adversarial_weight": [Interval(Real, 0, None, closed="left")],
    "pairing_weight": [Interval(Real, 0, None, closed="left")],
    **TORCH_CONSTRAINTS,
}


def _l1(a, b):
    """Mean absolute difference (the authors' reconstruction/anchor criterion)."""
    return torch.mean(torch.abs(a - b))


class CMAEModule(nn.Module):
    """Two autoencoders with a shared bottleneck and a latent discriminator.

    Parameters
    ----------
    n_features : tuple of int
        Input widths of the two modalities.
    hidden_dims : tuple of tuple of int
        Hidden widths of each modality's encoder, input side first (the
        decoder mirrors them); the last width must be the same for both
        modalities, it feeds the shared latent layer.
    latent_dim : int
        Width of the shared latent space.
    discriminator_dim : int, default=100
        Hidden width of the discriminator.

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal._cmae import CMAEModule
    >>> module = CMAEModule((6, 3), ((8, 4), (5, 4)), 2)
    >>> h = module.encode(torch.ones(7, 6), 0)
    >>> tuple(h.shape), tuple(module.decode(h, 1).shape)
    ((7, 2), (7, 3))
    """

    def __init__(self, n_features, hidden_dims, latent_dim, discriminator_dim=100):
        super().__init__()
        widths = {dims[-1] for dims in hidden_dims}
        if len(widths) != 1:
            raise ValueError(
                "The last hidden width (the shared layer's input) must be the "
                f"same for both modalities, got {hidden_dims!r}."
            )
        (bottleneck,) = widths
        self.encoders = nn.ModuleList(
            FCLayers([n, *dims], activation=_leaky)
            for n, dims in zip(n_features, hidden_dims)
        )
        self.decoders = nn.ModuleList(
            FCLayers([*dims[::-1], n], activation=_leaky)
            for n, dims in zip(n_features, hidden_dims)
        )
        # DANCE's shared_layer=True: one latent layer for both modalities
        self.shared_encoder = nn.Sequential(nn.Linear(bottleneck, latent_dim), _leaky())
        self.shared_decoder = nn.Sequential(nn.Linear(latent_dim, bottleneck), _leaky())
        self.discriminator = FCLayers(
            [latent_dim, latent_dim, discriminator_dim, 1], activation=_leaky
        )
        self.reset_parameters()

    def reset_parameters(self):
        """He-normal autoencoder weights, N(0, 0.02) discriminator, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
                nn.init.zeros_(module.bias)
        for layer in self.discriminator.linear_layers():
            nn.init.normal_(layer.weight, 0.0, 0.02)

    def encode(self, x, modality):
        """Latent of ``x`` from modality 0 or 1."""
        return self.shared_encoder(self.encoders[modality](x))

    def decode(self, h, modality):
        """Reconstruction in modality 0 or 1 of latent ``h``."""
        return self.decoders[modality](self.shared_decoder(h))

    def forward(self, x):
        """Translate the first modality into the second: ``D_2(E_1(x))``."""
        return self.decode(self.encode(x, 0), 1)

    def discriminator_loss(self, h1, h2):
        """Least-squares loss of the discriminator: 0 on ``h1``, 1 on ``h2``."""
        return torch.mean(self.discriminator(h1) ** 2) + torch.mean(
            (self.discriminator(h2) - 1.0) ** 2
        )

    def generator_losses(self, x1, x2):
        """Reconstruction, adversarial and pairing losses of a paired batch.

        Returns
        -------
        reconstruction, adversarial, pairing : torch.Tensor
            ``L1(x1) + L1(x2)`` (mean absolute errors); the encoders' reversed
            least-squares GAN loss; the mean absolute difference of the paired
            cells' latents (the anchor loss, DANCE's eq. 40).
        """
        h1, h2 = self.encode(x1, 0), self.encode(x2, 1)
        reconstruction = _l1(self.decode(h1, 0), x1) + _l1(self.decode(h2, 1), x2)
        adversarial = torch.mean((self.discriminator(h1) - 1.0) ** 2) + torch.mean(
            self.discriminator(h2) ** 2
        )
        return reconstruction, adversarial, _l1(h1, h2)


def resolve_hidden_dims(hidden_dims, n_features):
    """Return the encoder widths of each modality (DANCE's rule for None).

    DANCE: ``(h, h, h, 100)`` with ``h = min(n_features, 1000)`` per modality.
    A user tuple is used for both modalities.
    """
    if hidden_dims is None:
        return tuple((min(n, _MAX_HIDDEN),) * 3 + (_BOTTLENECK,) for n in n_features)
    dims = tuple(hidden_dims)
    return (dims, dims)


def fit_cmae(estimator, X, Y, *, decoupled_weight_decay=False):
    """Train a :class:`CMAEModule` on paired cells for ``estimator``.

    One epoch visits the cells in shuffled mini-batches of ``batch_size``
    rows (a last incomplete batch is dropped, as DANCE's loader does, unless
    it is the only one); each batch takes one discriminator step, then one
    step of the autoencoders, each through :meth:`Trainer.step`.

    Parameters
    ----------
    estimator : CMAE or CMAEMatcher
        Holds the parameters (``hidden_dims``, ``latent_dim``, loss weights,
        ``learning_rate``, ...).
    X, Y : {ndarray, sparse matrix}
        Validated paired modalities (row i of ``X`` with row i of ``Y``);
        only one mini-batch of rows is densified at a time.
    decoupled_weight_decay : bool, default=False
        AdamW (DANCE's prediction code) instead of Adam with an L2 penalty
        (DANCE's matching code and the authors').

    Notes
    -----
    Sets ``module_`` (the trained module, on CPU, in evaluation mode),
    ``history_`` (one record per epoch: phase ``"train"``, epoch,
    ``train_loss`` (the autoencoders' weighted loss),
    ``discriminator_loss``, ``reconstruction_loss``, ``adversarial_loss``,
    ``pairing_loss`` (unweighted, mean over the batches' rows), seconds)
    and ``n_iter_`` on ``estimator``.
    """
    X, Y = RowSource(X), RowSource(Y)
    n = X.shape[0]
    hidden = resolve_hidden_dims(estimator.hidden_dims, (X.shape[1], Y.shape[1]))
    batch_size = min(estimator.batch_size, n)
    w_rec = estimator.reconstruction_weight
    w_adv = estimator.adversarial_weight
    w_pair = estimator.pairing_weight
    optim = torch.optim.AdamW if decoupled_weight_decay else torch.optim.Adam
    with training(estimator) as run:
        trainer, device = run.trainer, run.device
        module = CMAEModule(
            (X.shape[1], Y.shape[1]),
            hidden,
            estimator.latent_dim,
            estimator.discriminator_dim,
        )
        module = run.place(module)
        disc_params = list(module.discriminator.parameters())
        disc_ids = {id(p) for p in disc_params}
        gen_params = [p for p in module.parameters() if id(p) not in disc_ids]
        options = {
            "lr": estimator.learning_rate,
            "betas": _BETAS,
            "weight_decay": estimator.weight_decay,
        }
        disc_opt = optim(disc_params, **options)
        gen_opt = optim(gen_params, **options)
        keys = (
            "train_loss",
            "discriminator_loss",
            "reconstruction_loss",
            "adversarial_loss",
            "pairing_loss",
        )

        def epoch(_):
            module.train()
            sums, seen = dict.fromkeys(keys, 0.0), 0
            for idx in minibatches(n, batch_size, run.generator):
                if len(idx) < batch_size:  # DANCE's drop_last
                    continue
                rows = idx.numpy()
                x1, x2 = X.batch(rows, device), Y.batch(rows, device)
                # discriminator step on the encoders' current latents
                with torch.no_grad():
                    h1, h2 = module.encode(x1, 0), module.encode(x2, 1)
                d_loss = trainer.step(
                    disc_opt, w_adv * module.discriminator_loss(h1, h2)
                )
                # autoencoder step: reconstruct, fool the discriminator, pair
                rec, adv, pair = module.generator_losses(x1, x2)
                g_loss = trainer.step(
                    gen_opt, w_rec * rec + w_adv * adv + w_pair * pair
                )
                values = (g_loss, d_loss, rec.item(), adv.item(), pair.item())
                for key, value in zip(keys, values):
                    sums[key] += value * len(rows)
                seen += len(rows)
            return {key: value / max(seen, 1) for key, value in sums.items()}

        run.run("train", estimator.max_epochs, epoch)


def _chunked(module, X, fn):
    """Apply ``fn(module, dense rows)`` to ``CHUNK_ROWS`` rows at a time."""
    rows = RowSource(X)
    with torch.no_grad():
        return stack_rows(
            lambda start, stop: fn(module, rows.batch(slice(start, stop), "cpu")),
            X.shape[0],
        )


def latent(module, X, modality):
    """Latents of the cells ``X`` of modality 0 or 1 (ndarray, float64)."""
    return _chunked(module, X, lambda m, x: m.encode(x, modality))


def translate(module, X):
    """Second modality decoded from the first modality's latent (ndarray)."""
    return _chunked(module, X, lambda m, x: m(x))
