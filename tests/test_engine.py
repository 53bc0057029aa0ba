"""The training engine and what it gives every torch estimator."""

import ast
import importlib
import inspect
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from skdance.nn import (
    StopTraining,
    Trainer,
    check_device,
    clip_gradients_in_step,
    history_values,
    validation_split,
)
from skdance.testing import (
    check_data,
    check_instance,
    estimator_output,
    fit_estimator,
)
from skdance.utils import all_estimators, get_skdance_tags


def _imported_modules(module):
    """Absolute module names a skdance module imports (``ast``, any depth)."""
    source = Path(inspect.getsourcefile(importlib.import_module(module)))
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module or ""


def _trains_torch(cls):
    """Whether the estimator's code imports torch.

    Its own modules (those of its skdance classes) count, and the private
    modules of its package they import: a thin task file whose network and
    training live in a shared module (``multimodal._cmae``).
    """
    own = {k.__module__ for k in cls.__mro__ if k.__module__.startswith("skdance.")}
    shared = {
        target
        for module in own
        for target in _imported_modules(module)
        if target.startswith("skdance.")
        and target.split(".")[1] == module.split(".")[1]
        and any(part.startswith("_") for part in target.split(".")[1:])
    }
    return any(
        target.split(".")[0] == "torch"
        for module in own | shared
        for target in _imported_modules(module)
    )


# the torch estimators: those with a device parameter (discovered)
TORCH_ESTIMATORS = [
    (name, cls) for name, cls in all_estimators() if "device" in cls().get_params()
]
NO_CUDA = "no CUDA device on this machine (torch.cuda.is_available() is False)"


def test_every_torch_model_is_a_torch_estimator():
    # every estimator whose code imports torch takes a device (cpu by
    # default), and no other does
    torch_models = {name for name, cls in all_estimators() if _trains_torch(cls)}
    assert torch_models == {name for name, _ in TORCH_ESTIMATORS}
    assert {"ACTINN", "CMAE", "ScMM", "STAGATE", "DSTG"} <= torch_models
    for _, cls in TORCH_ESTIMATORS:
        assert cls().device == "cpu"


def test_check_device():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="'gpu' is not a torch device name"):
        check_device("gpu")
    with pytest.raises(ValueError, match="not 'meta'"):
        check_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:1' was requested"):
            check_device("cuda:1")


def _net_and_data(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64)
    return torch.nn.Linear(3, 1), x, y


def test_run_records_history_and_minibatch_loss():
    net, x, y = _net_and_data()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    trainer = Trainer("cpu")
    gen = torch.Generator().manual_seed(0)

    def loss_fn(idx):
        return ((net(x[idx]).squeeze(1) - y[idx]) ** 2).mean()

    def epoch(_):
        return trainer.minibatch_epoch(opt, loss_fn, 64, 10, gen)

    assert trainer.run("fit", 5, epoch) is None
    assert [r["epoch"] for r in trainer.history] == list(range(5))
    assert all(r["phase"] == "fit" and r["seconds"] >= 0 for r in trainer.history)
    loss = history_values(trainer.history)
    assert loss[-1] < 0.5 * loss[0]
    # the recorded loss is the row-weighted mean over the epoch's batches
    net2, _, _ = _net_and_data()
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.0)
    gen2 = torch.Generator().manual_seed(1)

    def loss2(idx):
        return ((net2(x[idx]).squeeze(1) - y[idx]) ** 2).mean()

    epoch_loss = Trainer("cpu").minibatch_epoch(opt2, loss2, 64, 10, gen2)
    assert epoch_loss == pytest.approx(float(loss2(torch.arange(64))), rel=1e-5)


def test_stop_training_and_phases():
    trainer = Trainer()

    def epoch(e):
        if e == 3:
            raise StopTraining
        return {"train_loss": 1.0 / (e + 1), "changed": 0.5}

    trainer.run("pretrain", 2, lambda e: 1.0)
    trainer.run("cluster", 10, epoch)
    assert [r["phase"] for r in trainer.history] == ["pretrain"] * 2 + ["cluster"] * 3
    assert history_values(trainer.history, "changed") == [0.5] * 3
    assert history_values(trainer.history, phase="pretrain") == [1.0, 1.0]


@pytest.mark.parametrize("ties,kept", [("first", 1), ("last", 3)])
def test_early_stopping_restores_the_best_state(ties, kept):
    net = torch.nn.Linear(1, 1, bias=False)
    valid = iter([3.0, 1.0, 2.0, 1.0, 5.0, 6.0, 7.0, 0.0])

    def epoch(e):
        with torch.no_grad():
            net.weight.fill_(float(e))
        return 0.0

    trainer = Trainer()
    best = trainer.run(
        "train",
        20,
        epoch,
        valid_fn=lambda: {"valid_loss": next(valid)},
        patience=3,
        module=net,
        ties=ties,
    )
    # "first": epochs 2-4 do not improve on epoch 1, so epochs 0-4 run;
    # "last": epoch 3 ties epoch 1 and resets the patience, so epochs 0-6 run
    assert best == kept
    assert len(trainer.history) == (5 if ties == "first" else 7)
    assert float(net.weight) == kept
    assert history_values(trainer.history, "valid_loss")[:3] == [3.0, 1.0, 2.0]


def test_maximised_monitor():
    trainer = Trainer()
    scores = iter([0.1, 0.9, 0.5])
    best = trainer.run(
        "train",
        3,
        lambda e: 0.0,
        valid_fn=lambda: {"valid_accuracy": next(scores)},
        monitor="-valid_accuracy",
    )
    assert best == 1


def test_validation_split():
    y = np.repeat([0, 1, 2], [10, 20, 30])
    train, valid = validation_split(60, 0.2, 0, stratify=y)
    assert valid.size == 12 and train.size == 48
    assert set(train) | set(valid) == set(range(60)) and not set(train) & set(valid)
    assert np.bincount(y[valid]).tolist() == [2, 4, 6]
    again = validation_split(60, 0.2, 0, stratify=y)
    np.testing.assert_array_equal(again[1], valid)
    for fraction in (0.0, None):
        train, valid = validation_split(60, fraction, 0)
        np.testing.assert_array_equal(train, np.arange(60))
        assert valid.size == 0
    # a class with one member cannot be stratified: plain shuffle split
    train, valid = validation_split(5, 0.4, 0, stratify=[0, 0, 1, 1, 2])
    assert valid.size == 2 and train.size == 3


@pytest.fixture(scope="module")
def small_counts():
    # 120 real PBMC cells x 150 genes with labels, coordinates and a paired
    # second modality: every task's side information (fitting.py)
    data = check_data()
    return data.X, data


def _fit(est, X, data):
    return fit_estimator(est, X, data)


def _output(est, X, data):
    return estimator_output(est, X, data)


def _is_deconv(est):
    # the torch deconvolvers (DSTG, STdGCN) train in predict, on the spots
    return get_skdance_tags(est).task == "deconvolution"


@pytest.mark.parametrize("name,cls", TORCH_ESTIMATORS)
def test_absent_device_is_a_clear_error(name, cls, small_counts):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here; test_fit_on_cuda covers this machine")
    X, data = small_counts
    est = check_instance(cls).set_params(device="cuda")
    with pytest.raises(ValueError, match="device='cuda' was requested"):
        _fit(est, X, data)


@pytest.mark.parametrize("name,cls", TORCH_ESTIMATORS)
def test_history_records_each_epoch(name, cls, small_counts):
    # (fitted pickles and same-seed fits of every estimator: test_common.py)
    X, data = small_counts
    est = _fit(check_instance(cls), X, data)
    if not _is_deconv(est):
        assert isinstance(est.history_, list) and est.history_
        for record in est.history_:
            assert {"phase", "epoch", "train_loss", "seconds"} <= set(record)
            assert np.isfinite(record["train_loss"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("name,cls", TORCH_ESTIMATORS)
def test_fit_on_cuda(name, cls, small_counts):
    X, data = small_counts
    est = _fit(check_instance(cls).set_params(device="cuda"), X, data)
    module = getattr(est, "module_", None)
    if module is not None:
        assert all(p.device.type == "cpu" for p in module.parameters())
    restored = pickle.loads(pickle.dumps(est))
    out = _output(restored, X, data)
    assert out.shape[0] == X.shape[0] and np.isfinite(np.asarray(out, float)).all()


def test_clip_gradients_in_step_clips_between_backward_and_step():
    layer = torch.nn.Linear(3, 1, bias=False)
    torch.nn.init.zeros_(layer.weight)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    norms = clip_gradients_in_step(optimizer, layer, 1.0)
    x = torch.full((4, 3), 10.0)
    Trainer.step(optimizer, layer(x).sum())
    # the raw gradient is 40 per weight (norm 69.3); SGD took the clipped one
    assert norms[-1] == pytest.approx(40.0 * 3**0.5, rel=1e-6)
    assert float(layer.weight.norm()) == pytest.approx(1.0, rel=1e-5)
    unclipped = torch.nn.Linear(3, 1, bias=False)
    optimizer = torch.optim.SGD(unclipped.parameters(), lr=0.0)
    norms = clip_gradients_in_step(optimizer, unclipped, None)  # records only
    Trainer.step(optimizer, unclipped(x).sum())
    assert len(norms) == 2 and norms[-1] > 1.0


def test_models_build_no_trainer_of_their_own():
    # One engine: a model trains inside ``skdance.nn.training`` (seed,
    # device, module_, history_, n_iter_) and never builds a Trainer itself;
    # no model trains through a second engine (skorch was dropped: it cost
    # ACTINN ~20% more CPU per fit for the same numbers).
    root = Path(importlib.import_module("skdance").__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.parent.name == "nn":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if name == "Trainer":
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names]
                if getattr(node, "module", None):
                    names.append(node.module)
                if any(n.split(".")[0] == "skorch" for n in names):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"build a Trainer or import skorch: {offenders}"
