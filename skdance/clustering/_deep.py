"""The count clusterers' base: one ``fit`` template and the pieces it shares.

Count normalisation learnt in ``fit`` (size factors, log, gene scaling: the
shared :class:`~skdance.nn.CountNormalizer`), the cell graph built from a
graph-builder parameter, k-means initialisation of DEC centres, DEC's target
updates with the label-change stop, and the ``fit`` every deep clusterer
runs (:class:`BaseCountClusterer`), whose steps the models fill in.
"""

from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    clone,
)
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn

from skdance.nn import (
    TORCH_CONSTRAINTS,
    CountNormalizer,
    StopTraining,
    check_device,
    student_t_assignment,
    target_distribution,
    training,
)
from skdance.utils import (
    SkdanceTags,
    check_n_clusters,
    check_random_state_int,
    validate_input,
)

__all__ = [
    "DEC_CONSTRAINTS",
    "BaseCountClusterer",
    "DECTarget",
    "FitData",
    "column_scaling",
    "kmeans_centers",
]


# Parameters every DEC-style model (scDeepCluster, scDCC, scTAG, scDSC) has,
# with the torch ones (device, random_state, verbose).
DEC_CONSTRAINTS = {
    "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
    "alpha": [Interval(Real, 0, None, closed="neither")],
    "update_interval": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, 1, closed="both")],
    **TORCH_CONSTRAINTS,
}

#: What a model's ``_fit_data`` returns: its training inputs, by name.
FitData = SimpleNamespace


def column_scaling(A):
    """Column means and standard deviations of ``A`` (zero deviations as 1)."""
    std = A.std(axis=0)
    std[std == 0] = 1.0
    return A.mean(axis=0), std


def kmeans_centers(z, n_clusters, seed, n_init=20, device="cpu"):
    """k-means on an embedding; return centres as a trainable parameter and labels.

    The centres are a leaf parameter on ``device`` (built from the moved
    tensor, so the optimiser updates the tensor the model uses).
    """
    km = KMeans(n_clusters, n_init=n_init, random_state=seed).fit(z)
    centers = torch.from_numpy(km.cluster_centers_.astype(np.float32))
    return nn.Parameter(centers.to(device)), km.labels_


class DECTarget:
    """DEC's target distribution, its update schedule and the label-change stop.

    :meth:`at` returns the sharpened target ``P`` of an epoch: every
    ``update_interval`` epochs it is recomputed from the soft assignments
    ``Q``, and :class:`~skdance.nn.StopTraining` is raised (inside a
    :meth:`~skdance.nn.Trainer.run` epoch function, before the epoch trains)
    when fewer than ``tol`` of the cells changed their argmax cluster since
    the previous update (never at epoch 0).  :attr:`changed` holds the last
    fraction.

    Parameters
    ----------
    labels : ndarray of shape (n_cells,)
        The initial clusters (k-means').
    tol : float
        Stop below this fraction of cells changing cluster.
    update_interval : int, default=1
        Epochs between target updates.
    """

    def __init__(self, labels, tol, update_interval=1):
        self.labels = labels
        self.tol = tol
        self.update_interval = update_interval
        self.changed = 1.0
        self.p = None

    def update(self, q, epoch):
        """Return the target ``P`` for ``q``; raise ``StopTraining`` to stop."""
        q = q.detach()
        new_labels = q.argmax(dim=1).cpu().numpy()
        self.changed = float(np.mean(new_labels != self.labels))
        self.labels = new_labels
        if epoch > 0 and self.changed < self.tol:
            raise StopTraining
        self.p = target_distribution(q)
        return self.p

    def at(self, epoch, soft_assignment):
        """Return the target of ``epoch``, updated from ``soft_assignment()`` when due.

        ``soft_assignment`` is only called at update epochs.
        """
        if epoch % self.update_interval == 0:
            self.update(soft_assignment(), epoch)
        return self.p


class BaseCountClusterer(
    ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator
):
    """Base of the count-likelihood clustering models: one ``fit`` for all.

    ``fit`` is a template; the models fill in its steps:

    1. validation of the parameters and the counts (``n_clusters`` checked);
    2. ``_fit_data(X, seed, device)``: the training inputs (normalised
       counts, cell graphs, ...), made before the seeded block and placed on
       the training device; fitted statistics (``normalizer_``,
       ``adjacency_``, ...) are set here;
    3. inside :func:`skdance.nn.training` (python, numpy and torch seeded,
       the :class:`~skdance.nn.Trainer` of ``device`` and ``verbose``):
       ``_build_module(n_genes, data)`` builds the network, placed on the
       device in training mode;
    4. ``_pretrain(run, module, data)``: the representation phase (the
       autoencoder's pretraining; graph-sc's whole training);
    5. ``_cluster_phase(run, module, data)``: DEC clustering; by default
       k-means (20 restarts) on ``_embed`` initialises the centres, then
       ``max_epochs`` epochs of ``_cluster_epoch`` on the optimiser of
       ``_cluster_optimizer``, each followed by ``_constraint_epoch`` (the
       pairwise constraints of semi-supervised models, nothing by default),
       under a :class:`DECTarget` (target updates every ``update_interval``
       epochs, stop when fewer than ``tol`` of the cells change cluster).
       It returns the centres, or None for a model that clusters its
       embedding after training (``_cluster_embedding``);
    6. outputs: ``module_`` (evaluation mode, CPU), ``history_``,
       ``n_iter_`` (epochs of the phase ``_iter_phase``), ``embedding_``
       (``_embed`` in evaluation mode), ``cluster_centers_`` and
       ``labels_`` (argmax of the Student-t assignment to the centres).

    ``_normalized`` turns raw counts into the model inputs the ZINB methods
    share (:class:`~skdance.nn.CountNormalizer`): size factors ``s_i``
    (total counts over their median, learnt in ``fit``), ``log1p(x / s)``
    standardised per gene with statistics learnt in ``fit``, and the raw
    counts for the likelihood, kept sparse and densified by mini-batch.
    ``_cell_graph`` builds the cell graph with a clone of the ``graph``
    parameter on the normalised data (after PCA when ``n_components`` is
    set).

    ``transform`` returns the cells' embedding, as wide as ``embedding_``;
    its columns are named ``<class name in lower case>0``, ``...1``, ...
    (``get_feature_names_out``), so that ``set_output(transform="pandas")``
    returns DataFrames, indexed as a DataFrame ``X`` is.
    """

    #: The phase whose epochs ``n_iter_`` counts.
    _iter_phase = "cluster"

    @property
    def _n_features_out(self):
        """Width of the embedding (``get_feature_names_out``)."""
        return self.embedding_.shape[1]

    def _validate_fit_input(self, X):
        """Validate parameters and training counts; check ``n_clusters``."""
        self._validate_params()
        X = validate_input(
            self, X, reset=True, counts=True, nonempty_rows=True, ensure_min_samples=2
        )
        check_n_clusters(self, X.shape[0])
        return X

    def _validate_new_input(self, X):
        """Check the model is fitted and validate counts on its genes."""
        check_is_fitted(self)
        return validate_input(self, X, reset=False, counts=True, nonempty_rows=True)

    def _normalized(self, X, *, fit=False):
        """Return the counts of ``X`` normalised with statistics learnt in ``fit``.

        Returns a :class:`~skdance.nn.NormalizedCounts`: the counts and
        ``log1p(x / s)`` stay CSR, and dense float32 rows are made one
        mini-batch at a time.
        """
        if fit:
            self.normalizer_ = CountNormalizer().fit(X)
        return self.normalizer_.transform(X)

    def _cell_graph(self, normed, seed, default):
        """Adjacency over the cells of ``normed`` from a clone of ``self.graph``.

        ``default`` is the method's own graph builder, used when ``graph`` is
        None; the graph is built on ``n_components`` principal components of
        ``normed`` when that is set (and smaller than its shape).
        """
        feats = normed.numpy() if isinstance(normed, torch.Tensor) else normed
        n_pcs = self.n_components
        if n_pcs is not None and n_pcs < min(feats.shape):
            feats = PCA(n_pcs, random_state=seed).fit_transform(feats)
        builder = default if self.graph is None else clone(self.graph)
        return sp.csr_matrix(builder.fit_transform(feats))

    # -- the fit template ---------------------------------------------------
    def fit(self, X, y=None):
        """Fit the model on raw counts and cluster the cells.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts (put gene selection before it in a Pipeline).
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._fit(self._validate_fit_input(X))

    def _fit(self, X, **side):
        """Run the template on validated counts ``X`` (``side``: to ``_fit_data``)."""
        seed = check_random_state_int(self.random_state)
        data = self._fit_data(X, seed, check_device(self.device), **side)
        phase = self._iter_phase

        def n_iter(history):
            return sum(row["phase"] == phase for row in history)

        with training(self, seed=seed, n_iter=n_iter) as run:
            module = run.place(self._build_module(X.shape[1], data))
            module.train()
            self._pretrain(run, module, data)
            centers = self._cluster_phase(run, module, data)
            module.eval()
            with torch.no_grad():  # on the training device, then to the CPU
                z = self._embed(run, module, data).cpu()
        self.embedding_ = z.numpy()
        if centers is None:
            self.labels_ = self._cluster_embedding(self.embedding_, seed)
            return self
        centers = centers.detach().cpu()
        self.cluster_centers_ = centers.numpy()
        # final assignment with the trained encoder and centres (= predict(X))
        q = student_t_assignment(z, centers, self.alpha)
        self.labels_ = q.argmax(dim=1).numpy().astype(np.int64)
        return self

    def _fit_data(self, X, seed, device):
        """Return the training inputs of ``X`` on ``device`` (a :class:`FitData`)."""
        raise NotImplementedError

    def _build_module(self, n_genes, data):
        """Return the untrained network."""
        raise NotImplementedError

    def _pretrain(self, run, module, data):
        """Train the representation before clustering (nothing by default)."""

    def _embed(self, run, module, data):
        """Embedding of the training cells on ``run.device`` (called without grad)."""
        raise NotImplementedError

    def _cluster_phase(self, run, module, data):
        """DEC clustering: k-means initialised centres, then ``_cluster_epoch``s.

        Returns the trained centres.
        """
        module.eval()  # (batch norm: the initial embedding uses running stats)
        with torch.no_grad():
            z = self._embed(run, module, data).cpu().numpy()
        centers, labels = kmeans_centers(
            z, self.n_clusters, run.seed, device=run.device
        )
        module.train()
        opt = self._cluster_optimizer(module, centers)
        target = DECTarget(labels, self.tol, self.update_interval)

        def epoch_fn(epoch):
            loss = self._cluster_epoch(run, module, data, centers, opt, target, epoch)
            record = {"train_loss": loss, "changed": target.changed}
            record.update(self._constraint_epoch(run, module, data, centers, opt))
            return record

        run.run("cluster", self.max_epochs, epoch_fn)
        return centers

    def _cluster_optimizer(self, module, centers):
        """Return the optimiser of the clustering phase (network and centres)."""
        raise NotImplementedError

    def _cluster_epoch(self, run, module, data, centers, opt, target, epoch):
        """Train one clustering epoch; return its loss.

        ``target.at(epoch, soft_assignment)`` gives DEC's target ``P`` (and
        may stop the phase).
        """
        raise NotImplementedError

    def _constraint_epoch(self, run, module, data, centers, opt):
        """Train on side constraints after a clustering epoch; return extra records.

        Nothing by default (ScDCC: its must-link and cannot-link passes).
        """
        return {}

    def _cluster_embedding(self, z, seed):
        """Label the training cells from their embedding (models without centres)."""
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="clustering", counts=True, rejects_empty_cells="fit")
