"""What a benchmark task declares; the runner (``benchmarks._runner``) does the rest.

A task is one file in ``benchmarks/tasks/``: a :class:`Task` subclass that
names its datasets (full run and ``--quick``), builds its model pipelines,
prepares each (dataset, seed or fold) into :class:`Trial` objects, fits a
model on a trial (the runner times it and samples its peak memory), scores
the output, quotes DANCE's reported numbers (:class:`DanceReference`) and
writes the protocol text that heads its results table.

A model is one entry
--------------------
Adding a model to a task is one entry in the mapping its ``models`` method
returns: the model's name (its rows' ``model`` column) and the estimator or
pipeline built for the trial, seed and quick flag.  Nothing else names a
model.  Side information (partial labels, coordinates, batches) is the
trial's ``metadata``: the task offers the same metadata to every model and
scikit-learn's metadata routing decides who takes it (:func:`routed`), from
the requests the estimators declare; what a model is fitted on is read
from the estimator itself (its routing requests, its tags) or from its
entry, never from its name.  ``benchmarks.memory`` measures the same
entries, so a model added to a task is also measured there.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.utils.metadata_routing import get_routing_for_object

from benchmarks._datasets import DATASETS, QUICK_DATASET
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal


@dataclass
class Trial:
    """One prepared input of a (dataset, seed or fold): what every model sees.

    Parameters
    ----------
    name : str
        The ``dataset`` value of its result rows.
    spec : DatasetSpec
        The dataset it was prepared from.
    inputs : dict
        What the task's ``fit`` and ``score`` read (train/test data, masks).
    extra : dict
        Columns the trial adds to every one of its rows (e.g. the masked
        input's ARI).
    metadata : dict
        Side information offered to every model (keyword name -> one value
        per cell or spot); each model takes what its metadata routing
        requests (:func:`routed`).
    """

    name: str
    spec: Any
    inputs: dict
    extra: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def consumed(model, method, metadata):
    """Return the part of ``metadata`` that ``model.<method>`` requests.

    Parameters
    ----------
    model : estimator or Pipeline
        Its metadata routing (a consumer's requests or a router's mapping)
        decides.
    method : str
        ``"fit"``, ``"fit_predict"``, ``"predict"``, ...
    metadata : dict
        What the trial offers (keyword name -> value).

    Returns
    -------
    dict
        The offered keywords ``model.<method>`` consumes.
    """
    if not metadata:
        return {}
    taken = get_routing_for_object(model).consumes(method, list(metadata))
    return {k: v for k, v in metadata.items() if k in taken}


def routed(model, method, *args, metadata=None, **kwargs):
    """Call ``model.<method>(*args, **kwargs)`` with the metadata it requests.

    The offered ``metadata`` is filtered by :func:`consumed`; when anything
    is left, the call runs with scikit-learn's metadata routing enabled, so
    a ``Pipeline`` hands each keyword to the steps that request it.

    Parameters
    ----------
    model : estimator or Pipeline
    method : str
        The method to call.
    *args
        Its positional arguments (``X``, ``y``).
    metadata : dict or None, default=None
        What the trial offers every model.
    **kwargs
        Other keyword arguments, passed as they are.

    Returns
    -------
    object
        What the method returns.
    """
    taken = consumed(model, method, metadata)
    if not taken:
        return getattr(model, method)(*args, **kwargs)
    with config_context(enable_metadata_routing=True):
        return getattr(model, method)(*args, **kwargs, **taken)


@dataclass(frozen=True)
class DanceReference:
    """DANCE's reported ("current") numbers of one task, from one paper table.

    Parameters
    ----------
    table : str
        Where in the DANCE paper (Ding et al. 2022, appendix B).
    metric : str
        What the numbers are.
    columns : tuple of str
        DANCE's datasets, in the table's order.
    scores : dict
        Our model name -> DANCE's numbers in ``columns`` order (None: N/A).
    comparable : dict
        Our dataset name -> DANCE's column, only where the data are DANCE's
        (same cells); elsewhere no number is put beside ours.
    """

    table: str
    metric: str
    columns: tuple
    scores: dict
    comparable: dict = field(default_factory=dict)

    def get(self, model, dataset):
        """DANCE's number for (our model, our dataset), or None."""
        column = self.comparable.get(dataset)
        if column is None or model not in self.scores:
            return None
        return self.scores[model][self.columns.index(column)]

    def best(self, dataset):
        """Best number over DANCE's models on ``dataset`` and its model."""
        column = self.comparable.get(dataset)
        if column is None:
            return None, ""
        i = self.columns.index(column)
        known = {m: s[i] for m, s in self.scores.items() if s[i] is not None}
        model = max(known, key=known.get)
        return known[model], model


class Task:
    """Base of the benchmark tasks.

    Class attributes to set: ``name``, ``run_column`` ("seed" or "fold"),
    ``metrics`` (summarised as mean ± std), ``columns`` (the CSV's columns in
    order), ``datasets`` (names in :data:`benchmarks._datasets.DATASETS`
    run by default), ``requires`` (views a dataset must provide: "labels",
    "coords", "mod2"), ``reference`` and ``quick_text``.  Methods to write:
    ``models``, ``fit`` and ``score``; ``trials``, ``metadata`` and
    ``protocol`` where the defaults do not fit.
    """

    name = None
    run_column = "seed"
    n_folds = None  # cross-validated tasks (run_column "fold")
    metrics = ()
    columns = ()
    digits = 3
    datasets = ()
    quick_datasets = (QUICK_DATASET,)
    requires = ("labels",)
    # models run whatever --models selects (cheap reference rows)
    baselines = ()
    reference = None
    # one sentence: what --quick runs (heads the quick table)
    quick_text = ""

    # -- datasets and runs -------------------------------------------------
    def dataset_specs(self, names=None, quick=False):
        """Return the DatasetSpecs to run: the quick one, ``names``, or the defaults."""
        if quick:
            return list(self.quick_datasets)
        names = list(names or self.datasets)
        unknown = sorted(set(names) - set(DATASETS))
        if unknown:
            raise SystemExit(
                f"unknown datasets {unknown}; choose from {list(DATASETS)}"
            )
        specs = [DATASETS[n] for n in names]
        for spec in specs:
            missing = set(self.requires) - spec.provides
            if missing:
                raise SystemExit(
                    f"{self.name} needs {sorted(missing)}, which dataset "
                    f"{spec.name!r} does not provide"
                )
        return specs

    def runs(self, seeds, folds=None, quick=False):
        """Return the seeds (or folds; None: all) to run; quick: the first."""
        if self.run_column == "fold":
            runs = list(range(self.n_folds) if folds is None else folds)
        else:
            runs = list(seeds)
        return runs[:1] if quick else runs

    # -- per (dataset, run) -----------------------------------------------
    def trials(self, data, spec, run, quick=False):
        """Prepare ``data`` for one seed or fold (default: one trial, as is).

        The default trial offers :meth:`metadata` to every model.
        """
        yield Trial(spec.name, spec, {"data": data}, metadata=self.metadata(data, run))

    def metadata(self, data, run):
        """Return the side information offered to every model (default: none).

        Keyword name -> one value per cell; routing gives each model what
        it requests (:func:`routed`).
        """
        return {}

    def models(self, trial, run, quick=False):
        """Return name -> estimator (cloned by the runner before fitting).

        One entry per model: adding a model to the task is adding one entry
        here (see the module docstring).
        """
        raise NotImplementedError

    def fit(self, name, model, trial, run):
        """Fit ``model`` on ``trial``; return what ``score`` needs (timed)."""
        raise NotImplementedError

    def score(self, name, output, trial):
        """Metric columns of one fitted model's row."""
        raise NotImplementedError

    def reference_columns(self, model, dataset):
        """Columns quoting DANCE beside our row (default: none)."""
        return {}

    def finish(self, results_dir, quick=False, stem=None):
        """After the tables are written: extra outputs (figures); paths written.

        ``stem`` names the tables just written (``<stem>.csv`` and ``.md`` in
        ``results_dir``; e.g. ``"spatial_domain_quick_cuda"``); None: the
        CPU tables of ``quick``.
        """
        return []

    def table_stem(self, quick=False, stem=None):
        """File stem of the tables ``finish`` reads (see :meth:`finish`)."""
        return stem or (f"{self.name}_quick" if quick else self.name)

    # -- text --------------------------------------------------------------
    def protocol(self, quick=False):
        """Return what the mean ± std runs over and how metrics are defined."""
        return f"{self.run_column}s"

    def describe(self, quick=False):
        """Return the protocol text heading the results table."""
        text = f"Mean ± std over {self.protocol(quick)}"
        if quick and self.quick_text:
            text = f"Quick run: {self.quick_text} " + text
        return text

    def log_line(self, row):
        """One progress line for a result row."""
        shown = " ".join(
            f"{m}={row[m]:.{self.digits}f}"
            for m in self.metrics[:3]
            if isinstance(row.get(m), float) and row[m] == row[m]
        )
        return (
            f"  {row['dataset']:28s} {row['model']:14s} "
            f"{self.run_column}={row[self.run_column]} {shown} "
            f"fit={row['fit_time_s']:.1f}s"
        )


# -- pipeline pieces shared by the single-cell tasks ---------------------------
def front(spec, n_top_genes=2000):
    """HVG selection then log-normalisation (skipped for log-normalised data)."""
    if spec.counts:
        return [
            HighlyVariableGenes(n_top_genes=n_top_genes, flavor="seurat_v3"),
            NormalizeTotal(target_sum=1e4),
            Log1p(),
        ]
    return [
        HighlyVariableGenes(
            n_top_genes=n_top_genes, flavor="seurat", log_normalize=False
        )
    ]


def top_genes(X, n_top_genes):
    """Return the indices of the ``n_top_genes`` seurat_v3 HVGs of ``X``.

    All genes when ``X`` has at most ``n_top_genes``.
    """
    if X.shape[1] <= n_top_genes:
        return np.arange(X.shape[1])
    hvg = HighlyVariableGenes(n_top_genes=n_top_genes, flavor="seurat_v3")
    return np.flatnonzero(hvg.fit(X).highly_variable_)
