"""Regenerate skdance/datasets/data/pbmc_4k_subset.npz from the shared data.

Run from the repository root: ``python benchmarks/make_shipped_subset.py``.
"""

import numpy as np
from sklearn.model_selection import train_test_split

from skdance.datasets import load_pbmc_10x_4k


def main():
    X, y = load_pbmc_10x_4k()
    keep, _ = train_test_split(
        np.arange(len(y)), train_size=1200, stratify=y, random_state=0
    )
    keep = np.sort(keep)
    sub = X[keep].astype(np.int32).tocsr()
    np.savez_compressed(
        "skdance/datasets/data/pbmc_4k_subset.npz",
        data=sub.data.astype(np.int16),
        indices=sub.indices.astype(np.int16),
        indptr=sub.indptr,
        shape=np.array(sub.shape),
        labels=y[keep].astype(np.int8),
        cells=keep.astype(np.int32),
    )


if __name__ == "__main__":
    main()
