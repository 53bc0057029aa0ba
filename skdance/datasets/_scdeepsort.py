"""Loader for DANCE's annotation sets (scDeepsort's MCA / HCL CSV layout)."""

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils import Bunch

from skdance.datasets._base import DatasetNotFoundError, get_data_home

__all__ = ["MCA_BENCHMARKS", "load_scdeepsort"]

# DANCE's annotation benchmarks (paper Table 2): mouse tissue -> (training
# batch ids, test batch ids) of the Mouse Cell Atlas files.
MCA_BENCHMARKS = {
    "Brain": ((753, 3285), (2695,)),
    "Spleen": ((1970,), (1759,)),
    "Kidney": ((4682,), (203,)),
}


def _batch_paths(root, split, species, tissue, batch):
    folder = Path(root) / split / species
    stem = f"{species}_{tissue}{batch}"
    return folder / f"{stem}_data.csv", folder / f"{stem}_celltype.csv"


def _read_batch(data_path, label_path, label_column):
    for path in (data_path, label_path):
        if not path.exists():
            raise DatasetNotFoundError(
                f"{path} not found. DANCE's annotation files are laid out as "
                "<data_home>/{train,test}/<species>/<species>_<Tissue><id>_data.csv "
                "(genes x cells) and ..._celltype.csv (one row per cell); set "
                "SKDANCE_DATA or pass data_home= to the folder holding them."
            )
    expr = pd.read_csv(data_path, index_col=0)  # genes x cells
    expr.index = expr.index.astype(str)
    if expr.index.has_duplicates:
        raise ValueError(f"{data_path} lists some genes more than once.")
    labels = pd.read_csv(label_path, index_col=0)
    if label_column not in labels.columns:
        raise ValueError(
            f"{label_path} has no {label_column!r} column (columns: "
            f"{list(labels.columns)})."
        )
    if len(labels) != expr.shape[1]:
        raise ValueError(
            f"{label_path} has {len(labels)} cells but {data_path} has "
            f"{expr.shape[1]} columns."
        )
    if "Cell" in labels.columns:  # scDeepsort's files name the cells here
        cells = labels["Cell"].astype(str).to_numpy()
        missing = set(cells) - set(expr.columns.astype(str))
        if missing:
            raise ValueError(
                f"{len(missing)} cells of {label_path} are not columns of "
                f"{data_path} (e.g. {sorted(missing)[:3]})."
            )
        expr.columns = expr.columns.astype(str)
        expr = expr[cells]
    return expr, labels[label_column].astype(str).to_numpy()


def _stack(batches, genes):
    """Cells x ``genes`` CSR of the batches (genes absent from a batch are 0)."""
    blocks, cells = [], []
    for name, expr in batches:
        aligned = expr.reindex(genes, fill_value=0)
        blocks.append(sp.csr_matrix(aligned.to_numpy(dtype=np.float32).T))
        cells.extend(f"{name}_{c}" for c in expr.columns)
    return sp.vstack(blocks, format="csr"), np.asarray(cells)


def load_scdeepsort(
    species,
    tissue,
    train_batches,
    test_batches,
    data_home=None,
    *,
    label_column="Cell_type",
    return_anndata=False,
):
    """Load a DANCE / scDeepsort annotation benchmark (MCA or HCL batches).

    DANCE's files (scDeepsort's release) hold one batch per pair of CSVs:
    ``<data_home>/train/<species>/<species>_<Tissue><id>_data.csv``, genes x
    cells with gene names in the first column, and ``..._celltype.csv``, one
    row per cell with the cell-type column ``Cell_type`` (and the cell name in
    ``Cell``); test batches sit under ``test/`` in the same layout.  As in
    DANCE, training batches are stacked on the union of their genes, and test
    cells are put on those genes (genes the training batches lack are
    dropped, training genes a test batch lacks are 0).

    Test labels are returned as written; DANCE additionally counts a
    prediction as correct when the test type maps to it in scDeepsort's
    ``map.xlsx`` (test cell type -> training cell types), which is left to
    the caller.

    Parameters
    ----------
    species : {"mouse", "human"}
        Mouse Cell Atlas (MCA) or Human Cell Landscape (HCL).
    tissue : str
        Tissue as in the file names, e.g. ``"Brain"``; see ``MCA_BENCHMARKS``
        for DANCE's mouse benchmark batches.
    train_batches, test_batches : sequence of int or str
        Batch ids (the number in the file names).
    data_home : str or path-like, default=None
        Folder holding ``train/`` and ``test/``; default ``$SKDANCE_DATA`` then
        ``~/skdance_data``.  Nothing is downloaded.
    label_column : str, default="Cell_type"
        Column of the cell-type files holding the labels.
    return_anndata : bool, default=False
        Return ``(adata_train, adata_test)`` with ``obs["cell_type"]`` and
        gene names as ``var_names`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``X_train``, ``X_test`` (cells x genes CSR float32 counts),
        ``y_train``, ``y_test`` (string labels), ``gene_names``,
        ``cells_train``, ``cells_test`` (``<batch>_<cell>`` names).

    Examples
    --------
    >>> from skdance.datasets import MCA_BENCHMARKS, load_scdeepsort
    >>> train_ids, test_ids = MCA_BENCHMARKS["Spleen"]
    >>> data = load_scdeepsort("mouse", "Spleen", train_ids, test_ids)  # doctest: +SKIP
    >>> data.X_train.shape[1] == data.X_test.shape[1]  # doctest: +SKIP
    True
    """
    if species not in ("mouse", "human"):
        raise ValueError(f"species must be 'mouse' or 'human', got {species!r}.")
    if not len(train_batches) or not len(test_batches):
        raise ValueError("train_batches and test_batches must not be empty.")
    root = get_data_home(data_home)
    loaded = {}
    for split, ids in (("train", train_batches), ("test", test_batches)):
        batches, labels = [], []
        for batch in ids:
            data_path, label_path = _batch_paths(root, split, species, tissue, batch)
            expr, y = _read_batch(data_path, label_path, label_column)
            batches.append((f"{species}_{tissue}{batch}", expr))
            labels.append(y)
        loaded[split] = (batches, np.concatenate(labels))
    genes = pd.Index([])
    for _, expr in loaded["train"][0]:
        genes = genes.union(expr.index, sort=False)
    X_train, cells_train = _stack(loaded["train"][0], genes)
    X_test, cells_test = _stack(loaded["test"][0], genes)
    y_train, y_test = loaded["train"][1], loaded["test"][1]
    gene_names = np.asarray(genes, dtype=str)
    if return_anndata:
        import anndata

        def wrap(X, y, cells):
            obs = pd.DataFrame({"cell_type": pd.Categorical(y)}, index=cells)
            return anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=gene_names))

        return wrap(X_train, y_train, cells_train), wrap(X_test, y_test, cells_test)
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        gene_names=gene_names,
        cells_train=cells_train,
        cells_test=cells_test,
    )
