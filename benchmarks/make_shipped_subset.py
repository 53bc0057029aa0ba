"""Regenerate the datasets shipped inside the package from the benchmark data.

Run from the repository root with ``SKDANCE_DATA`` pointing at the benchmark
data folder: ``python benchmarks/make_shipped_subset.py``.  It writes

* ``skdance/datasets/data/pbmc_4k_subset.npz``: 1,200 cells of 10x PBMC 4k;
* ``skdance/datasets/data/dlpfc_visium/151673_subset.h5ad``: the spots of
  DLPFC slice 151673 with ``array_col < 40`` (a band across every layer)
  and its 3,000 seurat_v3 genes, counts unchanged;
* ``skdance/datasets/data/neurips2021_bmmc_cite_starter/``: the NeurIPS 2021
  CITE-seq starter files, copied byte for byte.

``skdance/datasets/data/README.md`` gives their sources and licences.
"""

import shutil
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from skdance.datasets import get_data_home, load_pbmc_10x_4k, load_spatial_dataset

SHIPPED = Path("skdance/datasets/data")
DLPFC_COLUMNS = 40  # array_col < 40: 1,062 spots, all 7 layers
DLPFC_GENES = 3000


def pbmc_subset():
    X, y = load_pbmc_10x_4k()
    keep, _ = train_test_split(
        np.arange(len(y)), train_size=1200, stratify=y, random_state=0
    )
    keep = np.sort(keep)
    sub = X[keep].astype(np.int32).tocsr()
    np.savez_compressed(
        SHIPPED / "pbmc_4k_subset.npz",
        data=sub.data.astype(np.int16),
        indices=sub.indices.astype(np.int16),
        indptr=sub.indptr,
        shape=np.array(sub.shape),
        labels=y[keep].astype(np.int8),
        cells=keep.astype(np.int32),
    )


def dlpfc_subset():
    import scanpy as sc

    adata = load_spatial_dataset("dlpfc_151673", return_anndata=True)
    band = adata[(adata.obs["array_col"] < DLPFC_COLUMNS).to_numpy()].copy()
    genes = sc.pp.highly_variable_genes(
        band, n_top_genes=DLPFC_GENES, flavor="seurat_v3", inplace=False
    )["highly_variable"].to_numpy()
    band = band[:, genes].copy()
    band.uns["note"] = (
        f"{band.uns.get('note', '')} Subset shipped with skdance: the spots with "
        f"array_col < {DLPFC_COLUMNS} and the {DLPFC_GENES} seurat_v3 genes of "
        "those spots; counts unchanged."
    ).strip()
    out = SHIPPED / "dlpfc_visium" / "151673_subset.h5ad"
    out.parent.mkdir(parents=True, exist_ok=True)
    band.write_h5ad(out, compression="gzip")


def cite_starter():
    source = get_data_home() / "neurips2021_bmmc_cite_starter"
    target = SHIPPED / "neurips2021_bmmc_cite_starter"
    target.mkdir(parents=True, exist_ok=True)
    for part in ("rna", "mod2"):
        name = f"openproblems_bmmc_cite_starter.output_{part}.h5ad"
        shutil.copyfile(source / name, target / name)


def main():
    pbmc_subset()
    dlpfc_subset()
    cite_starter()


if __name__ == "__main__":
    main()
