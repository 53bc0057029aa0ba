import os

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
    "to the folder holding the data sets (doc/user_guide/data.rst says which sets "
    "skdance reads and where they come from)"
)


def _missing_data(exc):
    """Whether ``exc`` says a file of the (absent) data folder is missing."""
    if isinstance(exc, DatasetNotFoundError):
        return True
    return isinstance(exc, FileNotFoundError) and str(DATA) in str(exc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # a test (or a fixture it uses) that reads a file of the data folder
    # skips, saying how to provide it, when the folder is absent; with the
    # folder, a missing file stays a failure
    report = yield
    if (
        not HAVE_DATA
        and report.failed
        and call.excinfo is not None
        and _missing_data(call.excinfo.value)
    ):
        report.outcome = "skipped"
        path, line, _ = item.location
        report.longrepr = (path, (line or 0) + 1, f"{NO_DATA}. {call.excinfo.value}")
    return report


@pytest.fixture
def one_thread():
    """One torch and one BLAS thread while a test runs.

    Small problems only contend for a second thread on a busy 2-core
    machine (the xdist workers start with one, above).  Set per test, since
    numba's OpenMP layer (scanpy's neighbours, UMAP) can raise it again.
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_home():
    if not HAVE_DATA:
        pytest.skip(NO_DATA)
    return DATA
