"""scDCC: scDeepCluster with must-link / cannot-link pairwise constraints."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from skdance.clustering._docs import DEC_PARAMS
from skdance.clustering.scdeepcluster import ScDeepCluster
from skdance.nn import student_t_assignment
from skdance.utils import fill_doc, resolve_side_info

__all__ = ["ScDCC", "draw_constraint_pairs", "make_partial_labels"]


def make_partial_labels(y, label_fraction=0.1, *, random_state=None):
    """Hide the labels of all but a random fraction of the cells.

    The scDCC benchmark protocol: a fraction of the cells is taken as
    "labelled"; :class:`ScDCC` draws its must-link / cannot-link pairs among
    them inside ``fit``.  The result has one entry per cell, so
    cross-validation slices it with the cells.

    Parameters
    ----------
    y : array-like of shape (n_cells,)
        Cell labels.
    label_fraction : float, default=0.1
        Fraction of cells whose label stays known.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    partial_labels : ndarray of shape (n_cells,)
        Integer codes of ``y`` (its sorted unique values) for the known
        cells and -1 for the others.

    Examples
    --------
    >>> from skdance.clustering import make_partial_labels
    >>> make_partial_labels(["a", "a", "b", "b"], 0.5, random_state=0)
    array([-1, -1,  1,  1])
    """
    y = np.asarray(y)
    if not 0 < label_fraction <= 1:
        raise ValueError(f"label_fraction must be in (0, 1], got {label_fraction}.")
    rng = check_random_state(random_state)
    n_labelled = max(2, int(round(label_fraction * len(y))))
    if n_labelled > len(y):
        raise ValueError("need at least two cells to keep two labels.")
    labelled = rng.choice(len(y), n_labelled, replace=False)
    codes = np.unique(y, return_inverse=True)[1].reshape(-1)
    out = np.full(len(y), -1, dtype=np.int64)
    out[labelled] = codes[labelled]
    return out


def _known_mask(labels):
    """Return True where a partial label is known (not -1, None or NaN)."""
    if labels.dtype.kind in "iu":
        return labels != -1
    if labels.dtype.kind == "f":
        return ~np.isnan(labels) & (labels != -1)
    return np.array([v is not None and v == v and v != -1 for v in labels])


def draw_constraint_pairs(partial_labels, n_pairs, random_state=None):
    """Must-link / cannot-link pairs among the cells whose label is known.

    Pairs of two distinct known cells are drawn uniformly; a pair is
    must-link when both cells share a label and cannot-link otherwise
    (Tian et al. 2021's protocol).

    Parameters
    ----------
    partial_labels : array-like of shape (n_cells,)
        Labels, with -1 (or None / NaN) for unknown cells.
    n_pairs : int
        Number of pairs to draw (both kinds together).
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    ml_pairs, cl_pairs : ndarray of shape (n_ml, 2) and (n_cl, 2)
        Row indices of must-link and cannot-link pairs.

    Examples
    --------
    >>> from skdance.clustering import draw_constraint_pairs
    >>> ml, cl = draw_constraint_pairs([0, 0, 1, 1, -1], 10, random_state=0)
    >>> len(ml) + len(cl)
    10
    """
    labels = np.asarray(partial_labels)
    if labels.ndim != 1:
        raise ValueError(
            "constraint_labels must be 1-dimensional (one entry per cell, -1 for "
            f"unknown); got shape {labels.shape}."
        )
    labelled = np.flatnonzero(_known_mask(labels))
    if labelled.size < 2 or n_pairs == 0:
        empty = np.empty((0, 2), dtype=np.int64)
        return empty, empty.copy()
    rng = check_random_state(random_state)
    # two distinct labelled cells per pair: offset the second draw by 1..n-1
    i = rng.randint(0, labelled.size, n_pairs)
    j = (i + rng.randint(1, labelled.size, n_pairs)) % labelled.size
    first, second = labelled[i], labelled[j]
    pairs = np.column_stack([first, second]).astype(np.int64)
    same = labels[first] == labels[second]
    return pairs[same], pairs[~same]


@fill_doc(**DEC_PARAMS)
class ScDCC(ScDeepCluster):
    """scDCC: model-based deep constrained clustering.

    scDeepCluster (see :class:`ScDeepCluster`: ZINB denoising autoencoder,
    pretraining, k-means initialised DEC clustering) with prior knowledge as
    pairwise constraints (Tian et al. 2021).  After every clustering epoch
    the network takes one pass over the must-link pairs, minimising
    ``must_link_weight * -log(sum_k q_ik q_jk)`` plus the ZINB loss of both
    cells, and one pass over the cannot-link pairs, minimising
    ``cannot_link_weight * -log(1 - sum_k q_ik q_jk)``, with the same
    Adadelta optimiser.  Without constraints it is exactly scDeepCluster.

    Prior knowledge is per cell: ``fit(X, constraint_labels=...)`` takes a
    partial label vector (-1 for unknown cells; see
    :func:`make_partial_labels`), and ``fit`` draws ``n_pairs`` pairs of
    known cells from it (:func:`draw_constraint_pairs`, seeded by
    ``random_state``): must-link when they share a label, cannot-link
    otherwise, as the paper's benchmark does.  Being one entry per cell, the
    labels are sliced with the cells by ``Pipeline`` and ``GridSearchCV``
    (metadata routing: ``constraint_labels`` is requested by default).

    Parameters
    ----------
    {n_clusters}
    n_pairs : int or None, default=None
        Number of constraint pairs drawn in ``fit`` among the cells with a
        known label; None draws as many pairs as there are cells.
    must_link_weight : float, default=1.0
        Weight of the must-link loss.
    cannot_link_weight : float, default=1.0
        Weight of the cannot-link loss.
    {hidden_dims} {latent_dim} {noise_sigma} {pretrain_epochs} {max_epochs}
    batch_size : int, default=256
        Mini-batch size (cells, and pairs in the constraint passes).
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
        ``"pretrain"`` (mean ZINB loss) and ``"cluster"`` (mean KL + ZINB
        loss, with ``changed``: the fraction of cells that changed cluster at
        the last target update, and ``constraint_loss``: the mean must-link +
        cannot-link loss of the epoch's constraint passes).
    {n_iter_} {n_features_in_} {feature_names_in_}

    See Also
    --------
    ScDeepCluster : The same model without constraints.
    make_partial_labels : Keep the labels of a random fraction of cells.
    draw_constraint_pairs : The pairs ``fit`` draws from partial labels.

    References
    ----------
    Tian, Zhang, Xu, Wu & Wei (2021), "Model-based deep embedding for
    constrained clustering analysis of single cell RNA-seq data", Nature
    Communications 12, 1873.

    Examples
    --------
    >>> from skdance.clustering import ScDCC, make_partial_labels
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> known = make_partial_labels(y[:300], 0.1, random_state=0)
    >>> model = ScDCC(n_clusters=8, n_pairs=200, pretrain_epochs=5, max_epochs=5,
    ...               random_state=0).fit(X[:300], constraint_labels=known)
    >>> model.labels_.shape
    (300,)
    """

    _parameter_constraints = {
        **ScDeepCluster._parameter_constraints,
        "n_pairs": [Interval(Integral, 0, None, closed="left"), None],
        "must_link_weight": [Interval(Real, 0, None, closed="left")],
        "cannot_link_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_clusters=None,
        *,
        n_pairs=None,
        must_link_weight=1.0,
        cannot_link_weight=1.0,
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
        super().__init__(
            n_clusters,
            hidden_dims=hidden_dims,
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
        self.n_pairs = n_pairs
        self.must_link_weight = must_link_weight
        self.cannot_link_weight = cannot_link_weight

    __metadata_request__fit = {"constraint_labels": True}

    def fit(self, X, y=None, *, constraint_labels=None):
        """Pretrain, then cluster under the pairwise constraints.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts (put gene selection before it in a Pipeline).
        y : None
            Ignored (labels enter only through the constraints).
        constraint_labels : array-like of shape (n_cells,), default=None
            Known labels of some cells, -1 (or None / NaN) for the others;
            None fits without constraints (then ScDCC is scDeepCluster).

        Returns
        -------
        self : ScDCC
            Fitted estimator.
        """
        X = self._validate_fit_input(X)
        if constraint_labels is None:
            must, cannot = np.empty((0, 2), dtype=np.int64), np.empty((0, 2), np.int64)
        else:
            labels = resolve_side_info(
                X,
                constraint_labels,
                name="constraint_labels",
                whom="ScDCC",
                kind="vector",
            )
            n_pairs = X.shape[0] if self.n_pairs is None else self.n_pairs
            # drawn before the fit's seed, from the same random_state
            must, cannot = draw_constraint_pairs(labels, n_pairs, self.random_state)
        return self._fit(X, pairs=(must, cannot))

    def _fit_data(self, X, seed, device, *, pairs):
        data = super()._fit_data(X, seed, device)
        data.must_link, data.cannot_link = (torch.from_numpy(p) for p in pairs)
        return data

    def _pair_q(self, module, normed1, normed2, centers):
        q1 = student_t_assignment(module.encode(normed1), centers, self.alpha)
        q2 = student_t_assignment(module.encode(normed2), centers, self.alpha)
        return (q1 * q2).sum(dim=1)

    def _constraint_epoch(self, run, module, data, centers, opt):
        """One pass over the must-link pairs, then one over the cannot-link pairs.

        Returns the epoch's ``constraint_loss`` (mean over all pairs).
        """
        # the pairs' cells are densified one mini-batch of pairs at a time
        cells, gen = data.cells, run.generator
        must, cannot = data.must_link, data.cannot_link

        def must_link_loss(idx):
            pairs = must[idx]
            sides = [cells.batch(pairs[:, side], run.device) for side in (0, 1)]
            agree = self._pair_q(module, sides[0][1], sides[1][1], centers)
            loss = self.must_link_weight * -torch.log(agree + 1e-10).mean()
            for counts, normed, sf in sides:  # keep both reconstructions faithful
                loss = loss + self._zinb_loss(
                    module, self._corrupt(normed, gen), counts, sf
                )
            return loss

        def cannot_link_loss(idx):
            pairs = cannot[idx]
            agree = self._pair_q(
                module,
                cells.normed_tensor(pairs[:, 0], run.device),
                cells.normed_tensor(pairs[:, 1], run.device),
                centers,
            )
            return self.cannot_link_weight * -torch.log(1.0 - agree + 1e-10).mean()

        total = 0.0
        for pairs, loss_fn in ((must, must_link_loss), (cannot, cannot_link_loss)):
            if len(pairs):  # (an empty pass draws no shuffle either)
                mean_loss = run.trainer.minibatch_epoch(
                    opt, loss_fn, len(pairs), self.batch_size, gen
                )
                total += mean_loss * len(pairs)
        n_pairs = len(must) + len(cannot)
        return {"constraint_loss": total / n_pairs if n_pairs else 0.0}
