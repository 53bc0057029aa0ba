"""The one training engine of skdance's torch estimators.

Every torch estimator trains through a :class:`Trainer`: it resolves the
``device`` parameter, moves tensors and modules there, takes optimiser steps
(the only place in skdance that calls ``backward``), runs phases of epochs
with a progress bar, records a uniform ``history_`` (one dict per epoch:
``phase``, ``epoch``, ``train_loss``, ``valid_loss`` where there is a
validation set, ``seconds``, plus any model-specific values), and does the
validation split, early stopping and best-state restore in one place.

Multi-phase and adversarial loops (autoencoder pretraining then DEC
clustering, EM iterations, two optimisers) are written as one ``epoch_fn``
per phase and run with :meth:`Trainer.run`; mini-batch epochs use
:meth:`Trainer.minibatch_epoch`.

The design: ``doc/architecture.rst``, section ``architecture-engine``.
"""

import contextlib
import copy
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval

from skdance.nn._training import minibatches, progress, seeded
from skdance.utils import check_random_state_int

__all__ = [
    "TORCH_CONSTRAINTS",
    "VALIDATION_CONSTRAINTS",
    "StopTraining",
    "Trainer",
    "TrainingRun",
    "check_device",
    "clip_gradients_in_step",
    "history_values",
    "training",
    "validation_split",
]

# Parameters every torch estimator has, with the same names and meaning in
# every model (the vocabulary tests/test_vocabulary.py enforces).
TORCH_CONSTRAINTS = {
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}

# Early-stopping parameters of the estimators that hold out a validation set.
VALIDATION_CONSTRAINTS = {
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "patience": [Interval(Integral, 1, None, closed="left"), None],
}


def check_device(device):
    """Return ``device`` as a :class:`torch.device`, or raise a clear error.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    device : torch.device
        The device, checked to be present on this machine.

    Raises
    ------
    ValueError
        When the string is not a device name or the device is absent.

    Examples
    --------
    >>> from skdance.nn import check_device
    >>> check_device("cpu")
    device(type='cpu')
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device name; use 'cpu', 'cuda', "
            "'cuda:N' or 'mps'."
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine (torch.cuda.is_available() is False: no GPU, or a "
                "CPU-only torch build). Use device='cpu'."
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device={device!r} was requested but this machine has {count} "
                f"CUDA device(s) (cuda:0 to cuda:{count - 1})."
            )
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(
                f"device={device!r} was requested but Apple MPS is not available "
                "on this machine. Use device='cpu'."
            )
        return dev
    raise ValueError(
        f"device={device!r}: skdance trains on 'cpu', 'cuda', 'cuda:N' or 'mps', "
        f"not {dev.type!r}."
    )


def clip_gradients_in_step(optimizer, module, max_norm):
    """Clip the total gradient norm inside ``optimizer.step`` (a step pre-hook).

    :meth:`Trainer.step` runs ``backward`` then ``optimizer.step()``; the
    hook runs between the two, where the original codes call
    ``torch.nn.utils.clip_grad_norm_`` (STAGATE, BABEL).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimiser whose steps clip.
    module : torch.nn.Module
        Its trainable parameters are clipped together.
    max_norm : float or None
        Largest total norm; None records the norms without clipping.

    Returns
    -------
    norms : list of float
        The hook appends each step's total norm (before clipping); starts
        with NaN.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    limit = np.inf if max_norm is None else float(max_norm)
    norms = [float("nan")]

    def hook(opt, args, kwargs):
        grads = [p for p in params if p.grad is not None]
        norms.append(float(torch.nn.utils.clip_grad_norm_(grads, limit)))

    optimizer.register_step_pre_hook(hook)
    return norms


class StopTraining(Exception):
    """Raised by an epoch function to end its phase before the epoch runs."""


def validation_split(n, fraction, seed, stratify=None):
    """Split ``range(n)`` into shuffled training and validation indices.

    Parameters
    ----------
    n : int
        Number of samples.
    fraction : float
        Fraction held out for validation (``int(fraction * n)`` samples); 0
        holds out nothing.
    seed : int
        Seed of the shuffle.
    stratify : array-like of shape (n,), default=None
        Class labels to stratify by; used when every class has two samples
        and both parts can hold every class.

    Returns
    -------
    train, valid : ndarray of int
        Indices in ``train_test_split``'s shuffled order; ``valid`` is empty
        when nothing is held out (``train`` is then ``arange(n)``).
    """
    n_valid = int((fraction or 0.0) * n)
    if n_valid == 0 or n_valid >= n:
        return np.arange(n), np.array([], dtype=np.int64)
    if stratify is not None:
        _, counts = np.unique(stratify, return_counts=True)
        if counts.min() < 2 or min(n_valid, n - n_valid) < counts.size:
            stratify = None
    return train_test_split(
        np.arange(n), test_size=n_valid, stratify=stratify, random_state=seed
    )


def history_values(history, key="train_loss", phase=None):
    """Return the values of ``key`` over the epochs of ``phase`` in a history.

    Parameters
    ----------
    history : list of dict
        A fitted estimator's ``history_``.
    key : str, default="train_loss"
        The recorded value.
    phase : str, default=None
        Only epochs of this phase; all epochs when None.

    Returns
    -------
    values : list
        One value per matching epoch that recorded ``key``.
    """
    return [
        row[key]
        for row in history
        if key in row and (phase is None or row["phase"] == phase)
    ]


class Trainer:
    """Device, optimiser steps, epochs, history, validation and early stopping.

    Parameters
    ----------
    device : str or torch.device, default="cpu"
        Where tensors and modules go (checked by :func:`check_device`).
    verbose : int, default=0
        Show a tqdm progress bar with the losses for each phase when truthy.

    Attributes
    ----------
    device : torch.device
        The resolved device.
    history : list of dict
        One record per epoch run, in order (becomes the estimator's
        ``history_``).
    """

    def __init__(self, device="cpu", verbose=0):
        self.device = check_device(device)
        self.verbose = verbose
        self.history = []

    def to(self, obj):
        """Move a tensor or module (or each of a tuple/list of them) to the device."""
        if isinstance(obj, (tuple, list)):
            return type(obj)(self.to(o) for o in obj)
        return obj.to(self.device)

    @staticmethod
    def step(optimizer, loss, scheduler=None):
        """Take one optimiser step on ``loss``; return its value as a float."""
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return loss.item()

    def minibatch_epoch(
        self,
        optimizer,
        loss_fn,
        n,
        batch_size,
        generator,
        *,
        indices=None,
        scheduler=None,
        min_batch=1,
        reduction="mean",
    ):
        """One epoch of optimiser steps over shuffled mini-batches.

        Parameters
        ----------
        optimizer : torch.optim.Optimizer
            The optimiser.
        loss_fn : callable
            ``loss_fn(idx)`` returns the mean loss of the rows ``idx`` (a CPU
            ``LongTensor``).
        n : int
            Number of rows (or of ``indices``).
        batch_size : int
            Rows per step.
        generator : torch.Generator
            Generator of the shuffle.
        indices : ndarray of int, default=None
            Rows to draw the batches from (a training subset); all ``n`` when
            None.
        scheduler : torch.optim.lr_scheduler.LRScheduler, default=None
            Stepped after every optimiser step.
        min_batch : int, default=1
            Skip batches smaller than this (batch norm needs two rows).
        reduction : {"mean", "sum"}, default="mean"
            How ``loss_fn`` reduces over the rows (the gradient is that of
            the loss as returned; the recorded loss is per row either way).

        Returns
        -------
        loss : float
            The epoch's loss, averaged over rows.
        """
        pool = None if indices is None else torch.from_numpy(np.asarray(indices))
        total = 0.0
        for idx in minibatches(n, batch_size, generator):
            if len(idx) < min_batch:
                continue
            if pool is not None:
                idx = pool[idx]
            loss = self.step(optimizer, loss_fn(idx), scheduler)
            total += loss * len(idx) if reduction == "mean" else loss
        return total / n

    def run(
        self,
        phase,
        max_epochs,
        epoch_fn,
        *,
        valid_fn=None,
        monitor="valid_loss",
        patience=None,
        module=None,
        ties="first",
    ):
        """Run up to ``max_epochs`` epochs of one phase and record them.

        Parameters
        ----------
        phase : str
            Name of the phase, recorded in the history and shown on the bar.
        max_epochs : int
            Number of epochs.
        epoch_fn : callable
            ``epoch_fn(epoch)`` trains one epoch and returns its training loss
            (a float) or a dict with ``"train_loss"`` and other values to
            record.  It raises :class:`StopTraining` to end the phase.
        valid_fn : callable, default=None
            ``valid_fn()`` returns a dict of validation values (with
            ``monitor`` among them), computed after each epoch.
        monitor : str, default="valid_loss"
            The validation value to minimise (prefix ``"-"`` to maximise,
            e.g. ``"-valid_accuracy"``).
        patience : int, default=None
            Stop after this many epochs without improvement of ``monitor``;
            None trains all ``max_epochs``.
        module : torch.nn.Module, default=None
            With ``valid_fn``, its best state (by ``monitor``) is restored at
            the end of the phase.
        ties : {"first", "last"}, default="first"
            Which of several epochs with the best ``monitor`` value is kept.

        Returns
        -------
        best_epoch : int or None
            The epoch whose state was kept when validating, else None.
        """
        sign, key = (-1.0, monitor[1:]) if monitor.startswith("-") else (1.0, monitor)
        best, best_epoch, best_state, waited = np.inf, None, None, 0
        bar = progress(range(max_epochs), self.verbose, phase)
        for epoch in bar:
            start = time.perf_counter()
            try:
                out = epoch_fn(epoch)
            except StopTraining:
                break
            record = {"phase": phase, "epoch": epoch}
            record.update(out if isinstance(out, dict) else {"train_loss": out})
            if valid_fn is not None:
                record.update(valid_fn())
                value = sign * record[key]
                if value < best or (ties == "last" and value == best):
                    best, best_epoch, waited = value, epoch, 0
                    if module is not None:
                        best_state = copy.deepcopy(module.state_dict())
                else:
                    waited += 1
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            if self.verbose:
                bar.set_postfix(
                    {
                        k: f"{v:.4g}"
                        for k, v in record.items()
                        if k not in ("phase", "epoch", "seconds")
                        and isinstance(v, Real)
                    }
                )
            if patience is not None and valid_fn is not None and waited >= patience:
                break
        if best_state is not None:
            module.load_state_dict(best_state)
        return best_epoch


class TrainingRun:
    """One fit of one estimator: the trainer, the seed and the module trained.

    Made by :func:`training`, which stores the results on the estimator when
    the block ends without an error.

    Attributes
    ----------
    trainer : Trainer
        The engine (device, steps, epochs, history).
    device : torch.device
        Where the module trains.
    seed : int
        The fit's seed (``check_random_state_int(estimator.random_state)``).
    generator : torch.Generator
        Generator of the fit's shuffles, seeded with ``seed``.
    module : torch.nn.Module or None
        The module given to :meth:`place` (stored as ``module_``).
    """

    def __init__(self, trainer, seed, generator):
        self.trainer = trainer
        self.device = trainer.device
        self.seed = seed
        self.generator = generator
        self.module = None

    @property
    def history(self):
        """The records of the epochs run so far."""
        return self.trainer.history

    def to(self, obj):
        """Move a tensor or module (or a tuple/list of them) to the device."""
        return self.trainer.to(obj)

    def place(self, module):
        """Move ``module`` to the device and make it the one stored as ``module_``."""
        self.module = self.trainer.to(module)
        return self.module

    def run(self, phase, max_epochs, epoch_fn, **kwargs):
        """Run one phase of epochs; see :meth:`Trainer.run`."""
        return self.trainer.run(phase, max_epochs, epoch_fn, **kwargs)

    def fit_minibatches(
        self,
        optimizer,
        loss_fn,
        train,
        *,
        batch_size,
        max_epochs,
        valid=None,
        valid_fn=None,
        patience=None,
        phase="train",
        module=None,
        min_batch=1,
        scheduler=None,
        reduction="mean",
        record_fn=None,
        monitor="valid_loss",
        ties="first",
    ):
        """Train on shuffled mini-batches of ``train``, validate, stop early.

        The standard supervised block: each epoch puts the module in
        training mode and steps over mini-batches of the training rows;
        after it, the validation rows are scored in evaluation mode without
        gradients, and the best epoch's state is restored at the end.

        Parameters
        ----------
        optimizer : torch.optim.Optimizer
            The optimiser.
        loss_fn : callable
            ``loss_fn(idx)`` returns the loss tensor of the rows ``idx`` (a
            CPU ``LongTensor``).
        train : ndarray of int
            The training rows.
        batch_size, max_epochs : int
            Rows per step and number of epochs.
        valid : ndarray of int, default=None
            The validation rows; no validation when None or empty.
        valid_fn : callable, default=None
            ``valid_fn(valid)`` returns the validation loss (a float) or a
            dict of values with ``"valid_loss"``; by default the float of
            ``loss_fn`` on all validation rows.
        patience : int, default=None
            Early-stopping patience (see :meth:`Trainer.run`).
        phase : str, default="train"
            Name of the phase.
        module : torch.nn.Module, default=None
            The module trained; :attr:`module` when None.
        min_batch, scheduler, reduction
            See :meth:`Trainer.minibatch_epoch`.
        record_fn : callable, default=None
            ``record_fn()`` returns extra values to record after each
            epoch's steps (e.g. the parts of the loss).
        monitor : str, default="valid_loss"
            The value of ``valid_fn``'s dict to minimise (prefix ``"-"`` to
            maximise, e.g. ``"-valid_accuracy"``); see :meth:`Trainer.run`.
        ties : {"first", "last"}, default="first"
            See :meth:`Trainer.run`.

        Returns
        -------
        best_epoch : int or None
            The epoch whose state was kept when validating, else None.
        """
        module = self.module if module is None else module
        train = np.asarray(train)
        has_valid = valid is not None and len(valid) > 0

        def epoch(_):
            module.train()
            loss = self.trainer.minibatch_epoch(
                optimizer,
                loss_fn,
                train.size,
                batch_size,
                self.generator,
                indices=train,
                scheduler=scheduler,
                min_batch=min_batch,
                reduction=reduction,
            )
            record = {"train_loss": loss}
            if record_fn is not None:
                record.update(record_fn())
            return record

        def validate():
            module.eval()
            with torch.no_grad():
                if valid_fn is not None:
                    out = valid_fn(valid)
                else:
                    out = float(loss_fn(torch.from_numpy(np.asarray(valid))))
            return out if isinstance(out, dict) else {"valid_loss": float(out)}

        return self.trainer.run(
            phase,
            max_epochs,
            epoch,
            valid_fn=validate if has_valid else None,
            monitor=monitor,
            patience=patience,
            module=module,
            ties=ties,
        )


@contextlib.contextmanager
def training(estimator, *, seed=None, n_iter=None, store=True):
    """Fit ``estimator``'s torch module: seed, device, and the fitted attributes.

    The block runs with python, numpy and torch seeded (the global states are
    restored after, see :func:`~skdance.nn.seeded`) and a :class:`Trainer`
    built from the estimator's ``device`` and ``verbose``.  When it ends
    without an error the estimator gets ``module_`` (the module given to
    :meth:`TrainingRun.place`, in evaluation mode, on the CPU), ``history_``
    (one record per epoch) and ``n_iter_``.

    Parameters
    ----------
    estimator : BaseEstimator
        Has ``device``, ``verbose`` and ``random_state`` parameters.
    seed : int, default=None
        The fit's seed; ``check_random_state_int(estimator.random_state)``
        when None.
    n_iter : callable, default=None
        ``n_iter(history)`` gives ``n_iter_``; the number of epochs recorded
        when None.
    store : bool, default=True
        Store the fitted attributes on the estimator. A transductive model
        that trains inside ``predict`` (which must not change the fitted
        estimator) passes False and reads ``run.module`` / ``run.history``.

    Yields
    ------
    run : TrainingRun
        The trainer, device, seed and generator of the fit.

    Examples
    --------
    >>> import torch
    >>> from sklearn.base import BaseEstimator
    >>> from skdance.nn import training
    >>> class Tiny(BaseEstimator):
    ...     def __init__(self, device="cpu", verbose=0, random_state=0):
    ...         self.device, self.verbose = device, verbose
    ...         self.random_state = random_state
    >>> est = Tiny()
    >>> with training(est) as run:
    ...     net = run.place(torch.nn.Linear(2, 1))
    ...     opt = torch.optim.SGD(net.parameters(), lr=0.1)
    ...     x = torch.ones(4, 2)
    ...     step = lambda e: run.trainer.step(opt, net(x).pow(2).mean())
    ...     _ = run.run("train", 3, step)
    >>> est.n_iter_, est.history_[0]["phase"], est.module_.training
    (3, 'train', False)
    """
    if seed is None:
        seed = check_random_state_int(getattr(estimator, "random_state", None))
    trainer = Trainer(
        getattr(estimator, "device", "cpu"), getattr(estimator, "verbose", 0)
    )
    with seeded(seed) as generator:
        run = TrainingRun(trainer, seed, generator)
        yield run
    if not store:
        return
    if run.module is not None:
        estimator.module_ = run.module.eval().cpu()
    estimator.history_ = trainer.history
    estimator.n_iter_ = (
        len(trainer.history) if n_iter is None else n_iter(trainer.history)
    )
