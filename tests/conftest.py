import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per xdist worker: workers x threads must not exceed cores
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    # and one BLAS thread: small numpy/scipy solves (L-BFGS, NNLS) slow down
    # many times when two workers each run two BLAS threads on two cores
    threadpool_limits(1)

ROOT = Path(__file__).resolve().parents[1]
# Tests read the real data from ../shared/data unless SKDANCE_DATA says otherwise.
os.environ.setdefault("SKDANCE_DATA", str(ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_home():
    path = Path(os.environ["SKDANCE_DATA"])
    if not (path / "README.md").exists():
        pytest.fail(
            f"Benchmark data not found at {path}; set SKDANCE_DATA to the folder "
            "holding the shared datasets."
        )
    return path
