"""DANCE's annotation-set loader on small files written in its CSV layout."""

import numpy as np
import pandas as pd
import pytest

from skdance.datasets import MCA_BENCHMARKS, load_scdeepsort


def _write_batch(root, split, tissue, batch, expr, types):
    folder = root / split / "mouse"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"mouse_{tissue}{batch}"
    expr.to_csv(folder / f"{stem}_data.csv")  # genes x cells, gene names first
    # scDeepsort's label files: an unnamed index, the cell name, its type
    pd.DataFrame(
        {"Cell": expr.columns, "Cell_type": types, "Cluster_id": range(len(types))}
    ).to_csv(folder / f"{stem}_celltype.csv")


@pytest.fixture
def mca(tmp_path):
    a = pd.DataFrame(
        [[1, 0, 2], [0, 5, 0], [3, 3, 3]],
        index=["Actb", "Gfap", "Cd3e"],
        columns=["c1", "c2", "c3"],
    )
    b = pd.DataFrame([[4, 0], [1, 1]], index=["Actb", "Snap25"], columns=["d1", "d2"])
    test = pd.DataFrame(
        [[7, 8], [9, 9], [2, 0]], index=["Cd3e", "Unseen", "Actb"], columns=["t1", "t2"]
    )
    _write_batch(tmp_path, "train", "Brain", 753, a, ["Astro", "Neuron", "T"])
    _write_batch(tmp_path, "train", "Brain", 3285, b, ["Neuron", "Astro"])
    # cell order in the label file differs from the data columns
    _write_batch(tmp_path, "test", "Brain", 2695, test, ["T", "Astro"])
    lab = tmp_path / "test" / "mouse" / "mouse_Brain2695_celltype.csv"
    pd.read_csv(lab, index_col=0).iloc[::-1].to_csv(lab)
    return tmp_path


def test_train_batches_stacked_on_union_of_genes(mca):
    data = load_scdeepsort("mouse", "Brain", [753, 3285], [2695], data_home=mca)
    assert list(data.gene_names) == ["Actb", "Gfap", "Cd3e", "Snap25"]
    np.testing.assert_array_equal(
        data.X_train.toarray(),
        [[1, 0, 3, 0], [0, 5, 3, 0], [2, 0, 3, 0], [4, 0, 0, 1], [0, 0, 0, 1]],
    )
    assert list(data.y_train) == ["Astro", "Neuron", "T", "Neuron", "Astro"]
    assert data.cells_train[0] == "mouse_Brain753_c1"


def test_test_cells_on_training_genes_in_label_order(mca):
    data = load_scdeepsort("mouse", "Brain", [753, 3285], [2695], data_home=mca)
    # the label file lists t2 then t1; "Unseen" is dropped, Gfap/Snap25 are 0
    np.testing.assert_array_equal(data.X_test.toarray(), [[0, 0, 8, 0], [2, 0, 7, 0]])
    assert list(data.y_test) == ["Astro", "T"]
    assert data.X_test.dtype == np.float32


def test_anndata_output(mca):
    train, test = load_scdeepsort(
        "mouse", "Brain", [753], [2695], data_home=mca, return_anndata=True
    )
    assert list(train.var_names) == ["Actb", "Gfap", "Cd3e"]
    assert list(test.obs["cell_type"]) == ["Astro", "T"]
    assert test.shape == (2, 3)


def test_clear_errors(mca, tmp_path):
    with pytest.raises(FileNotFoundError, match="_data.csv"):
        load_scdeepsort("mouse", "Spleen", [1970], [1759], data_home=mca)
    with pytest.raises(ValueError, match="species"):
        load_scdeepsort("rat", "Brain", [753], [2695], data_home=mca)
    with pytest.raises(ValueError, match="'Celltype'"):
        load_scdeepsort(
            "mouse", "Brain", [753], [2695], data_home=mca, label_column="Celltype"
        )


def test_dance_benchmark_batches_listed():
    assert MCA_BENCHMARKS["Brain"] == ((753, 3285), (2695,))
    assert MCA_BENCHMARKS["Kidney"][1] == (203,)
