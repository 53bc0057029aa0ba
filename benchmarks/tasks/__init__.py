"""The benchmark task registry: one module per task, run by ``benchmarks._runner``.

Each module defines ``TASK``, an instance of a :class:`~benchmarks.tasks._base.Task`
subclass declaring its datasets, model pipelines (full and ``--quick``),
evaluation, DANCE's reference numbers and protocol text.  ``TASKS`` maps the
task names to them in the order ``python -m benchmarks all`` runs them.

Adding a task is one more module and one more line below.  Adding a model
to a task is one entry in that task's ``models`` (a name and the estimator
built for the trial); the side information a task offers reaches the models
through metadata routing, and ``benchmarks.memory`` measures the same
entries (see :mod:`benchmarks.tasks._base`).

The design: ``doc/architecture.rst``, section ``architecture-benchmarks``.
"""

from benchmarks.tasks import (
    annotation,
    clustering,
    deconvolution,
    imputation,
    joint_embedding,
    modality_matching,
    modality_prediction,
    spatial_domain,
)

TASKS = {
    task.name: task
    for task in (
        annotation.TASK,
        clustering.TASK,
        imputation.TASK,
        deconvolution.TASK,
        spatial_domain.TASK,
        modality_prediction.TASK,
        modality_matching.TASK,
        joint_embedding.TASK,
    )
}


def get_task(name):
    """Return the registered task ``name`` (a ``Task`` instance)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose from {list(TASKS)}") from None
