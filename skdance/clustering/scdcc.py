"""scDCC: scDeepCluster with must-link / cannot-link pairwise constraints."""

from numbers import Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from skdance.clustering.scdeepcluster import ScDeepCluster
from skdance.nn import Trainer, student_t_assignment, zinb_nll

__all__ = ["ScDCC", "make_pairwise_constraints"]


def make_pairwise_constraints(y, n_pairs, *, label_fraction=0.1, random_state=None):
    """Must-link / cannot-link pairs from the labels of a random subset of cells.

    The scDCC benchmark protocol: a fraction of the cells is taken as
    "labelled"; pairs of distinct labelled cells are drawn at random and
    become must-link pairs when the two cells share a label and cannot-link
    pairs otherwise.

    Parameters
    ----------
    y : array-like of shape (n_cells,)
        Cell labels (only those of the labelled subset are used).
    n_pairs : int
        Number of pairs to draw (must-link and cannot-link together).
    label_fraction : float, default=0.1
        Fraction of cells whose label is known.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    ml_pairs : ndarray of shape (n_ml, 2)
        Row indices of must-link pairs.
    cl_pairs : ndarray of shape (n_cl, 2)
        Row indices of cannot-link pairs.

    Examples
    --------
    >>> from skdance.clustering import make_pairwise_constraints
    >>> ml, cl = make_pairwise_constraints([0, 0, 1, 1, 2, 2], 10,
    ...                                    label_fraction=1.0, random_state=0)
    >>> len(ml) + len(cl)
    10
    """
    y = np.asarray(y)
    if not 0 < label_fraction <= 1:
        raise ValueError(f"label_fraction must be in (0, 1], got {label_fraction}.")
    rng = check_random_state(random_state)
    n_labelled = max(2, int(round(label_fraction * len(y))))
    if n_labelled > len(y):
        raise ValueError("need at least two cells to draw pairs.")
    labelled = rng.choice(len(y), n_labelled, replace=False)
    # two distinct labelled cells per pair: offset the second draw by 1..n-1
    i = rng.randint(0, n_labelled, n_pairs)
    j = (i + rng.randint(1, n_labelled, n_pairs)) % n_labelled
    first, second = labelled[i], labelled[j]
    pairs = np.column_stack([first, second]).astype(np.int64)
    same = y[first] == y[second]
    return pairs[same], pairs[~same]


def _check_pairs(pairs, n_samples, name):
    if pairs is None:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.asarray(pairs)
    if pairs.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n_pairs, 2), got {pairs.shape}.")
    if not np.issubdtype(pairs.dtype, np.integer):
        raise ValueError(f"{name} must hold integer row indices, got {pairs.dtype}.")
    if pairs.min() < 0 or pairs.max() >= n_samples:
        raise ValueError(
            f"{name} holds row indices outside [0, {n_samples}) for the "
            f"{n_samples} cells passed to fit."
        )
    return pairs.astype(np.int64)


class ScDCC(ScDeepCluster):
    """scDCC: model-based deep constrained clustering.

    scDeepCluster (see :class:`ScDeepCluster`: ZINB denoising autoencoder,
    pretraining, k-means initialised DEC clustering) with prior knowledge as
    pairwise constraints (Tian et al. 2021).  After every clustering epoch
    the network takes one pass over the must-link pairs, minimising
    ``ml_weight * -log(sum_k q_ik q_jk)`` plus the ZINB loss of both cells,
    and one pass over the cannot-link pairs, minimising
    ``cl_weight * -log(1 - sum_k q_ik q_jk)``, with the same Adadelta
    optimiser.  Without constraints it is exactly scDeepCluster.

    Constraints are given to :meth:`fit` as row-index pairs into the ``X``
    passed to it (``fit(X, ml_pairs=..., cl_pairs=...)``), or drawn from a
    fraction of known labels by :func:`make_pairwise_constraints`, as the
    paper's benchmark does.  Being indices into the fitted rows, they are
    not sliced by cross-validation: pass them to a fit on the full data.

    Parameters
    ----------
    n_clusters : int
        Number of clusters (required, as in the paper's protocol).
    ml_weight : float, default=1.0
        Weight of the must-link loss.
    cl_weight : float, default=1.0
        Weight of the cannot-link loss.
    encoder_dims : tuple of int, default=(256, 64)
        Hidden widths of the encoder (the decoder mirrors them).
    latent_dim : int, default=32
        Embedding size.
    noise_sigma : float, default=2.5
        Standard deviation of the Gaussian input corruption.
    pretrain_epochs : int, default=300
        Autoencoder pretraining epochs.
    max_epochs : int, default=2000
        Maximum clustering epochs.
    batch_size : int, default=256
        Mini-batch size (cells, and pairs in the constraint passes).
    pretrain_learning_rate : float, default=1e-3
        Adam learning rate of pretraining.
    learning_rate : float, default=1.0
        Adadelta learning rate of the clustering phase.
    cluster_weight : float, default=1.0
        Weight of the clustering (KL) loss.
    alpha : float, default=1.0
        Degrees of freedom of the Student-t kernel.
    update_interval : int, default=1
        Epochs between target-distribution updates.
    tol : float, default=1e-3
        Stop when the fraction of cells changing cluster falls below it.
    device : str or torch.device, default="cpu"
        Where to train: "cpu", "cuda", "cuda:N" or "mps"; a ValueError names
        an absent device. The fitted module is kept on the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds torch, numpy and python inside ``fit``.
    verbose : int, default=0
        Show tqdm progress bars with the loss.

    Attributes
    ----------
    labels_ : ndarray of shape (n_cells,)
        Cluster of every training cell.
    cluster_centers_ : ndarray of shape (n_clusters, latent_dim)
        Learnt centres in the embedding.
    embedding_ : ndarray of shape (n_cells, latent_dim)
        Embedding of the training cells.
    module_ : torch.nn.Module
        The trained autoencoder (on CPU).
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss (and
        valid_loss where a validation set is held out), seconds.  Phases
        ``"pretrain"`` (mean ZINB loss) and ``"cluster"`` (mean KL + ZINB
        loss, with ``changed``: the fraction of cells that changed cluster at
        the last target update, and ``constraint_loss``: the mean must-link +
        cannot-link loss of the epoch's constraint passes).
    n_iter_ : int
        Clustering epochs run.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    ScDeepCluster : The same model without constraints.
    make_pairwise_constraints : Draw constraints from partially known labels.

    References
    ----------
    Tian, Zhang, Xu, Wu & Wei (2021), "Model-based deep embedding for
    constrained clustering analysis of single cell RNA-seq data", Nature
    Communications 12, 1873.

    Examples
    --------
    >>> from skdance.clustering import ScDCC, make_pairwise_constraints
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> ml, cl = make_pairwise_constraints(y[:300], 200, random_state=0)
    >>> model = ScDCC(n_clusters=8, pretrain_epochs=5, max_epochs=5,
    ...               random_state=0).fit(X[:300], ml_pairs=ml, cl_pairs=cl)
    >>> model.labels_.shape
    (300,)
    """

    _parameter_constraints = {
        **ScDeepCluster._parameter_constraints,
        "ml_weight": [Interval(Real, 0, None, closed="left")],
        "cl_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_clusters=None,
        *,
        ml_weight=1.0,
        cl_weight=1.0,
        encoder_dims=(256, 64),
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
        super().__init__(
            n_clusters,
            encoder_dims=encoder_dims,
            latent_dim=latent_dim,
            noise_sigma=noise_sigma,
            pretrain_epochs=pretrain_epochs,
            max_epochs=max_epochs,
            batch_size=batch_size,
            pretrain_learning_rate=pretrain_learning_rate,
            learning_rate=learning_rate,
            cluster_weight=cluster_weight,
            alpha=alpha,
            update_interval=update_interval,
            tol=tol,
            device=device,
            random_state=random_state,
            verbose=verbose,
        )
        self.ml_weight = ml_weight
        self.cl_weight = cl_weight

    def fit(self, X, y=None, *, ml_pairs=None, cl_pairs=None):
        """Pretrain, then cluster under the pairwise constraints.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts (put gene selection before it in a Pipeline).
        y : None
            Ignored (labels enter only through the constraints).
        ml_pairs : array-like of shape (n_ml, 2), default=None
            Row indices of cells that must share a cluster.
        cl_pairs : array-like of shape (n_cl, 2), default=None
            Row indices of cells that must not share a cluster.

        Returns
        -------
        self : ScDCC
            Fitted estimator.
        """
        X = self._validate_fit_input(X)
        trainer = Trainer(self.device, self.verbose)
        self._ml = torch.from_numpy(_check_pairs(ml_pairs, X.shape[0], "ml_pairs"))
        self._cl = torch.from_numpy(_check_pairs(cl_pairs, X.shape[0], "cl_pairs"))
        try:
            return self._fit_validated(X, trainer)
        finally:
            del self._ml, self._cl

    def _pair_q(self, module, normed, pairs, centers):
        q1 = student_t_assignment(
            module.encode(normed[pairs[:, 0]]), centers, self.alpha
        )
        q2 = student_t_assignment(
            module.encode(normed[pairs[:, 1]]), centers, self.alpha
        )
        return (q1 * q2).sum(dim=1)

    def _extra_epoch(self, trainer, module, centers, opt, data, gen):
        """One pass over the must-link pairs, then one over the cannot-link pairs.

        Returns the epoch's ``constraint_loss`` (mean over all pairs).
        """
        counts, normed, sf = data

        def ml_loss(idx):
            pairs = trainer.to(self._ml[idx])
            agree = self._pair_q(module, normed, pairs, centers)
            loss = self.ml_weight * -torch.log(agree + 1e-10).mean()
            for side in (0, 1):  # keep both cells' reconstructions faithful
                rows = pairs[:, side]
                _, mean, disp, pi = module(self._corrupt(normed, rows, gen))
                loss = loss + zinb_nll(counts[rows], mean * sf[rows, None], disp, pi)
            return loss

        def cl_loss(idx):
            agree = self._pair_q(module, normed, trainer.to(self._cl[idx]), centers)
            return self.cl_weight * -torch.log(1.0 - agree + 1e-10).mean()

        total = 0.0
        for pairs, loss_fn in ((self._ml, ml_loss), (self._cl, cl_loss)):
            if len(pairs):  # (an empty pass draws no shuffle either)
                mean_loss = trainer.minibatch_epoch(
                    opt, loss_fn, len(pairs), self.batch_size, gen
                )
                total += mean_loss * len(pairs)
        n_pairs = len(self._ml) + len(self._cl)
        return {"constraint_loss": total / n_pairs if n_pairs else 0.0}
