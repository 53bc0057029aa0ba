"""Dense building blocks: fully connected layers, likelihood heads, Gaussian encoder."""

import torch
from torch import nn
from torch.nn import functional as F

from skdance.nn._losses import gaussian_kl

__all__ = [
    "DispAct",
    "FCLayers",
    "GaussianEncoder",
    "MeanAct",
    "NBHeads",
    "ZINBHeads",
]


class FCLayers(nn.Sequential):
    """Fully connected layers, one block per pair of consecutive widths.

    The shared multilayer perceptron of the models (scvi-tools' ``FCLayers``
    pattern).  Block ``l`` is ``Linear -> [BatchNorm1d] -> [activation] ->
    [Dropout]`` (dropout on the hidden layers' outputs, never after the last
    layer); with ``dropout_input=True`` it is ``[Dropout] -> Linear ->
    [BatchNorm1d] -> [activation]`` (every layer's input dropped, the network
    input included: DANCE's ``buildNetwork``).  Iterating yields the blocks,
    so a model can collect every layer's output.

    Parameters
    ----------
    dims : sequence of int
        Layer widths, input first.
    activation : callable or None, default=torch.nn.ReLU
        Returns the activation module (a class such as ``torch.nn.ReLU``);
        None: no activation.
    last_activation : bool or callable, default=True
        Activation of the last layer: the same as the others (True), none
        (False), or a module factory of its own (e.g. ``torch.nn.Softplus``).
    batch_norm : bool or dict, default=False
        Batch normalisation after every linear layer; a dict gives its
        keyword arguments (e.g. ``{"momentum": 0.01, "eps": 1e-3}``, the
        settings of DCCA and scMVAE).
    dropout : float, default=0.0
        Dropout rate (no dropout module when 0).
    dropout_input : bool, default=False
        Where dropout acts, see above.
    dropout_last : bool, default=False
        Also drop out after the last layer (with ``dropout_input=False``):
        every block ends in dropout, as in DCCA and scMVAE.
    bias : bool, default=True
        Linear layers learn a bias.

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import FCLayers
    >>> net = FCLayers([5, 4, 2], last_activation=False)
    >>> net(torch.ones(3, 5)).shape, len(net)
    (torch.Size([3, 2]), 2)
    """

    def __init__(
        self,
        dims,
        *,
        activation=nn.ReLU,
        last_activation=True,
        batch_norm=False,
        dropout=0.0,
        dropout_input=False,
        dropout_last=False,
        bias=True,
    ):
        norm_kwargs = batch_norm if isinstance(batch_norm, dict) else {}
        blocks = []
        n_layers = len(dims) - 1
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == n_layers - 1
            block = []
            if dropout > 0 and dropout_input:
                block.append(nn.Dropout(dropout))
            block.append(nn.Linear(a, b, bias=bias))
            if batch_norm:
                block.append(nn.BatchNorm1d(b, **norm_kwargs))
            act = activation
            if last:
                act = activation if last_activation is True else last_activation
            if act:
                block.append(act())
            if dropout > 0 and not dropout_input and (dropout_last or not last):
                block.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*block))
        super().__init__(*blocks)

    def linear_layers(self):
        """Return the ``Linear`` layers, input first."""
        return [m for m in self.modules() if isinstance(m, nn.Linear)]


class MeanAct(nn.Module):
    """DCA's mean activation ``clamp(exp(clamp(x, max=15)), 1e-5, 1e6)``."""

    def forward(self, x):
        """Positive mean, bounded."""
        return torch.clamp(torch.exp(torch.clamp(x, max=15.0)), 1e-5, 1e6)


class DispAct(nn.Module):
    """DCA's dispersion activation ``clamp(softplus(x), 1e-4, 1e4)``."""

    def forward(self, x):
        """Positive dispersion, bounded."""
        return torch.clamp(F.softplus(x), 1e-4, 1e4)


class NBHeads(nn.Module):
    """Mean and dispersion heads of a negative binomial decoder.

    ``mean = MeanAct(Linear(h))``, ``disp = DispAct(Linear(h))`` (DCA's
    activations); pair with ``get_likelihood("nb")``.
    """

    def __init__(self, in_dim, n_genes):
        super().__init__()
        self.mean = nn.Linear(in_dim, n_genes)
        self.disp = nn.Linear(in_dim, n_genes)
        self.mean_act = MeanAct()
        self.disp_act = DispAct()

    def forward(self, h):
        """Return ``(mean, disp)`` for hidden representation ``h``."""
        return self.mean_act(self.mean(h)), self.disp_act(self.disp(h))


class ZINBHeads(NBHeads):
    """Mean, dispersion and dropout heads of a ZINB decoder (DCA's activations).

    ``mean = clamp(exp(.), 1e-5, 1e6)``, ``disp = clamp(softplus(.), 1e-4,
    1e4)``, ``pi = sigmoid(.)``; pair with ``get_likelihood("zinb")``.
    """

    def __init__(self, in_dim, n_genes):
        super().__init__(in_dim, n_genes)
        self.pi = nn.Linear(in_dim, n_genes)

    def forward(self, h):
        """Return ``(mean, disp, pi)`` for hidden representation ``h``."""
        mean, disp = super().forward(h)
        return mean, disp, torch.sigmoid(self.pi(h))


class GaussianEncoder(nn.Module):
    """Gaussian posterior ``q(z | h)``: mean and scale layers, reparameterised.

    Two layers map ``h`` to the mean and the log scale of a diagonal
    Gaussian; in training mode (or with ``sample=True``) ``forward`` returns a
    reparameterised sample ``mean + eps * std``, otherwise the mean.
    :meth:`kl` gives the divergence to ``N(0, I)``.

    Parameters
    ----------
    in_dim, latent_dim : int
        Input and latent widths.
    layer : callable, default=torch.nn.Linear
        ``layer(in_dim, latent_dim)`` builds each of the two layers; extra
        positional arguments of ``forward`` are passed to them (e.g.
        ``functools.partial(GraphConv, bias=False)`` and the adjacency, for a
        variational graph autoencoder).
    scale : {"log_var", "log_std"}, default="log_var"
        What the second layer outputs: the log variance (scGNN, scvi-tools)
        or the log standard deviation (Kipf's VGAE, GraphSCI).

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import GaussianEncoder
    >>> enc = GaussianEncoder(4, 2).eval()
    >>> z, mean, log_var = enc(torch.ones(3, 4))
    >>> bool(torch.equal(z, mean)), enc.kl(mean, log_var).shape
    (True, torch.Size([3]))
    """

    def __init__(self, in_dim, latent_dim, *, layer=nn.Linear, scale="log_var"):
        super().__init__()
        if scale not in ("log_var", "log_std"):
            raise ValueError(f"scale must be 'log_var' or 'log_std', got {scale!r}.")
        self.scale = scale
        self.mean = layer(in_dim, latent_dim)
        self.log_scale = layer(in_dim, latent_dim)

    def forward(self, h, *args, sample=None):
        """Return ``(z, mean, log_scale)``; ``z`` is a sample when ``sample``.

        ``sample=None`` samples in training mode only.
        """
        mean = self.mean(h, *args)
        log_scale = self.log_scale(h, *args)
        if self.training if sample is None else sample:
            if self.scale == "log_std":
                std = torch.exp(log_scale)
            else:
                std = torch.exp(0.5 * log_scale)
            return mean + torch.randn_like(mean) * std, mean, log_scale
        return mean, mean, log_scale

    def kl(self, mean, log_scale):
        """``KL(q || N(0, I))`` of every row (summed over latent dimensions).

        See :func:`~skdance.nn.gaussian_kl`.
        """
        if self.scale == "log_std":
            return gaussian_kl(mean, log_std=log_scale)
        return gaussian_kl(mean, log_scale)
