"""Training helpers shared by the custom (pretrain + cluster) loops."""

import contextlib
import random

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["minibatches", "progress", "seeded"]


@contextlib.contextmanager
def seeded(seed):
    """Seed python, numpy and torch for the block; restore their states after.

    Two fits with the same seed on CPU then give identical results without
    changing the caller's global random state.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    torch_state = torch.random.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield torch.Generator().manual_seed(seed)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)


def minibatches(n, batch_size, generator, shuffle=True):
    """Yield index tensors covering ``range(n)`` in (shuffled) batches."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def progress(iterable, verbose, desc):
    """Wrap ``iterable`` in a tqdm progress bar when ``verbose`` is truthy."""
    if not verbose:
        return iterable
    return tqdm(iterable, desc=desc, leave=True)
