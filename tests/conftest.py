import os
from contextlib import contextmanager

if os.environ.get("PYTEST_XDIST_WORKER"):
    # numba's first parallel call (UMAP, scanpy's neighbours) resets the
    # OpenMP thread count that torch.set_num_threads(1) set below, unless it
    # starts with one thread itself; it reads this before it is imported
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from skdance.datasets import DatasetNotFoundError  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per xdist worker: workers x threads must not exceed cores
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    # and one BLAS thread: small numpy/scipy solves (L-BFGS, NNLS) slow down
    # many times when two workers each run two BLAS threads on two cores
    threadpool_limits(1)

ROOT = Path(__file__).resolve().parents[1]
# Tests read the benchmark data from the shared/data folder beside the
# repository (ROOT.parent) unless SKDANCE_DATA says otherwise.  Without that
# folder (a fresh clone on its own), the tests that need its files skip,
# saying how to provide them; the shipped subsets are always there.
os.environ.setdefault("SKDANCE_DATA", str(ROOT.parent / "shared" / "data"))
DATA = Path(os.environ["SKDANCE_DATA"])
HAVE_DATA = DATA.is_dir()
NO_DATA = (
    f"needs the benchmark data folder, not found at {DATA}: set SKDANCE_DATA "
    "to the folder holding the data sets (doc/datasets.rst says which sets "
    "skdance reads and where they come from)"
)


@contextmanager
def _skip_without_data():
    # a test (or fixture) that reads an external data file skips when the
    # folder is absent; with the folder, a missing file is a failure
    try:
        yield
    except DatasetNotFoundError as exc:
        if HAVE_DATA:
            raise
        pytest.skip(f"{NO_DATA}. {exc}")


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    with _skip_without_data():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    with _skip_without_data():
        return (yield)


@pytest.fixture(scope="session")
def data_home():
    if not HAVE_DATA:
        pytest.skip(NO_DATA)
    return DATA
