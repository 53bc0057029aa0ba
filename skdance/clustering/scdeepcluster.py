"""scDeepCluster: ZINB denoising autoencoder with deep embedded clustering."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from skdance.clustering._deep import DEC_CONSTRAINTS, BaseCountClusterer, FitData
from skdance.clustering._docs import DEC_PARAMS
from skdance.nn import (
    FCLayers,
    ZINBHeads,
    get_likelihood,
    kl_clustering_loss,
    student_t_assignment,
)
from skdance.utils import Widths, fill_doc

ZINB = get_likelihood("zinb")

__all__ = ["ScDeepCluster"]


class ZINBAutoencoder(nn.Module):
    """Encoder to a latent space and ZINB decoder (sizes and losses only)."""

    def __init__(self, n_genes, hidden_dims, latent_dim):
        super().__init__()
        self.encoder = FCLayers([n_genes, *hidden_dims])
        self.embed = nn.Linear(hidden_dims[-1], latent_dim)
        decoder_dims = [latent_dim, *reversed(hidden_dims)]
        self.decoder = FCLayers(decoder_dims)
        self.heads = ZINBHeads(decoder_dims[-1], n_genes)

    def encode(self, x):
        """Latent embedding of (normalised) expression ``x``."""
        return self.embed(self.encoder(x))

    def forward(self, x):
        """Return the embedding and the ZINB parameters ``(z, mean, disp, pi)``."""
        z = self.encode(x)
        return (z, *self.heads(self.decoder(z)))


@fill_doc(**DEC_PARAMS)
class ScDeepCluster(BaseCountClusterer):
    """scDeepCluster: deep embedded clustering on a ZINB denoising autoencoder.

    The method of Tian et al. (2019), as in its PyTorch implementation:

    1. Counts are normalised internally: size factors ``s_i`` (total counts
       over their median), ``log1p(x / s)``, and per-gene standardisation
       (statistics learnt in ``fit``).
    2. A denoising autoencoder (encoder 256-64, latent 32, mirrored decoder)
       reads the normalised data corrupted with Gaussian noise
       (``noise_sigma``, default 2.5) and outputs the mean, dispersion and
       dropout probability of a zero-inflated negative binomial for the raw
       counts (mean scaled by ``s_i``).  It is pretrained on the ZINB
       likelihood with Adam (``pretrain_epochs``, learning rate
       ``pretrain_learning_rate``).
    3. Cluster centres are initialised by k-means (20 restarts) on the
       embedding; then encoder, decoder and centres are trained jointly with
       Adadelta (``learning_rate``, rho 0.95) on
       ``cluster_weight * KL(P || Q)`` plus the ZINB loss, where ``Q`` is the
       Student-t soft assignment and ``P`` DEC's sharpened target, recomputed
       every ``update_interval`` epochs.
       Training stops when fewer than ``tol`` of the cells change cluster
       between target updates, or after ``max_epochs``.

    ``predict`` assigns new cells to the learnt centres; ``transform``
    returns their embedding.

    Memory: the counts stay sparse (CSR); training densifies one mini-batch
    of cells at a time and inference (target updates, ``transform``,
    ``predict``) 4,096 cells at a time, so a fit's memory grows with the
    batch, not with cells x genes (``benchmarks/results/memory.md``).

    Parameters
    ----------
    {n_clusters} {hidden_dims} {latent_dim} {noise_sigma} {pretrain_epochs} {max_epochs}
    batch_size : int, default=256
        Mini-batch size.
    {pretrain_learning_rate} {learning_rate}
    cluster_weight : float, default=1.0
        {cluster_weight}
    {alpha}
    update_interval : int, default=1
        {update_interval}
    {tol} {device} {random_state}
    verbose : int, default=0
        Show tqdm progress bars with the loss.

    Attributes
    ----------
    {labels_} {cluster_centers_} {embedding_} {module_}
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss (and
        valid_loss where a validation set is held out), seconds.  Phases
        ``"pretrain"`` (mean ZINB loss) and ``"cluster"`` (mean total loss,
        with ``changed``: the fraction of cells that changed cluster at the
        last target update).
    {n_iter_} {n_features_in_} {feature_names_in_}

    References
    ----------
    Tian, Wan, Ma & Wu (2019), "Clustering single-cell RNA-seq data with a
    model-based deep learning approach", Nature Machine Intelligence 1,
    191-198.

    Examples
    --------
    >>> from skdance.clustering import ScDeepCluster
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> model = ScDeepCluster(n_clusters=8, pretrain_epochs=5, max_epochs=5,
    ...                       random_state=0).fit(X[:300])
    >>> model.labels_.shape, model.transform(X[:3]).shape
    ((300,), (3, 32))
    """

    _parameter_constraints = {
        **DEC_CONSTRAINTS,
        "hidden_dims": [Widths()],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "noise_sigma": [Interval(Real, 0, None, closed="left")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "cluster_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_clusters=None,
        *,
        hidden_dims=(256, 64),
        latent_dim=32,
        noise_sigma=2.5,
        pretrain_epochs=300,
        max_epochs=2000,
        batch_size=256,
        pretrain_learning_rate=1e-3,
        learning_rate=1.0,
        cluster_weight=1.0,
        alpha=1.0,
        update_interval=1,
        tol=1e-3,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.noise_sigma = noise_sigma
        self.pretrain_epochs = pretrain_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.learning_rate = learning_rate
        self.cluster_weight = cluster_weight
        self.alpha = alpha
        self.update_interval = update_interval
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- the fit template's steps ------------------------------------------
    def _corrupt(self, x, gen):
        """Gaussian-noise-corrupted input rows ``x`` (the denoising AE input).

        The noise is drawn on the CPU with ``gen`` and moved to ``x``'s
        device, so CPU numerics do not depend on the device.
        """
        noise = torch.randn(x.shape[0], x.shape[1], generator=gen)
        return x + self.noise_sigma * noise.to(x.device)

    def _zinb_loss(self, module, x_in, counts, sf):
        """Mean ZINB loss of ``counts`` given the input rows ``x_in``."""
        _, mean, disp, pi = module(x_in)
        return ZINB.nll(counts, mean * sf[:, None], disp, pi).mean()

    def _fit_data(self, X, seed, device):
        # counts stay CSR: mini-batches (and inference chunks) are densified
        # one at a time, so memory grows with the batch, not cells x genes
        return FitData(cells=self._normalized(X, fit=True))

    def _build_module(self, n_genes, data):
        return ZINBAutoencoder(n_genes, tuple(self.hidden_dims), self.latent_dim)

    def _embed(self, run, module, data):
        return data.cells.map_normed(module.encode, run.device)

    def _pretrain(self, run, module, data):
        opt = torch.optim.Adam(
            module.parameters(), lr=self.pretrain_learning_rate, amsgrad=True
        )
        cells, gen = data.cells, run.generator

        def loss_fn(idx):
            counts, normed, sf = cells.batch(idx, run.device)
            return self._zinb_loss(module, self._corrupt(normed, gen), counts, sf)

        run.run(
            "pretrain",
            self.pretrain_epochs,
            lambda epoch: run.trainer.minibatch_epoch(
                opt, loss_fn, cells.shape[0], self.batch_size, gen
            ),
        )

    def _forward_dec(self, module, normed, centers, gen):
        """ZINB parameters from the corrupted input, Student-t q from the clean one.

        As in scDeepCluster, the decoder sees the noisy embedding while the
        cluster assignment uses the embedding of the clean input ``normed``.
        """
        _, mean, disp, pi = module(self._corrupt(normed, gen))
        q = student_t_assignment(module.encode(normed), centers, self.alpha)
        return q, mean, disp, pi

    def _cluster_optimizer(self, module, centers):
        return torch.optim.Adadelta(
            [*module.parameters(), centers], lr=self.learning_rate, rho=0.95
        )

    def _cluster_epoch(self, run, module, data, centers, opt, target, epoch):
        """One epoch of ``cluster_weight * KL(P || Q) + ZINB``, shuffled batches."""
        cells, gen = data.cells, run.generator

        def soft_assignment():
            with torch.no_grad():
                z = cells.map_normed(module.encode, run.device)
                return student_t_assignment(z, centers, self.alpha)

        p = target.at(epoch, soft_assignment)  # may raise StopTraining

        def loss_fn(idx):
            counts, normed, sf = cells.batch(idx, run.device)
            q_b, mean, disp, pi = self._forward_dec(module, normed, centers, gen)
            p_b = p[run.to(idx)]
            zinb = ZINB.nll(counts, mean * sf[:, None], disp, pi).mean()
            return self.cluster_weight * kl_clustering_loss(p_b, q_b) + zinb

        return run.trainer.minibatch_epoch(
            opt, loss_fn, cells.shape[0], self.batch_size, gen
        )

    def _encode_new(self, X):
        X = self._validate_new_input(X)
        with torch.no_grad():  # batched inference on dense chunks of rows
            return self._normalized(X).map_normed(self.module_.encode)

    def transform(self, X):
        """Embed cells in the learnt latent space.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts on the genes seen in ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_cells, latent_dim)
            Embedding.
        """
        return self._encode_new(X).numpy()

    def predict(self, X):
        """Assign cells to the nearest learnt cluster (highest Student-t q).

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts on the genes seen in ``fit``.

        Returns
        -------
        labels : ndarray of shape (n_cells,)
            Cluster indices.
        """
        z = self._encode_new(X)
        q = student_t_assignment(z, torch.from_numpy(self.cluster_centers_), self.alpha)
        return q.argmax(dim=1).numpy().astype(np.int64)
