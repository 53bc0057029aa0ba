import numpy as np
import pytest

from skdance import datasets
from skdance.datasets import _base


def test_shipped_dataset_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("SKDANCE_DATA", str(tmp_path))
    X, y = datasets.load_pbmc_4k_subset()
    assert X.shape == (1200, 2000) and y.shape == (1200,)
    assert np.unique(y).size == 8
    assert X.min() >= 0 and np.allclose(X.data, np.round(X.data))
    ad = datasets.load_pbmc_4k_subset(return_anndata=True)
    assert ad.shape == (1200, 2000) and "cell_type" in ad.obs


@pytest.mark.parametrize(
    "loader,shape,n_types",
    [
        (datasets.load_worm_neuron_cell, (4186, 13488), 10),
        (datasets.load_mouse_bladder_cell, (2746, 2003), 16),
        (datasets.load_pbmc_10x_4k, (4271, 2000), 8),
        (datasets.load_mouse_es_cell, (1000, 900), 4),
        (datasets.load_pbmc68k_reduced, (700, 765), 10),
    ],
)
def test_shared_datasets(data_home, loader, shape, n_types):
    X, y = loader(data_home)
    assert X.shape == shape and np.unique(y).size == n_types
    assert (np.asarray(X.sum(axis=1)).ravel() > 0).all()


def test_pbmc3k_unlabelled(data_home):
    X, y = datasets.load_pbmc3k(data_home)
    assert X.shape == (2700, 32738) and y is None
    ad = datasets.load_pbmc3k(data_home, return_anndata=True)
    assert ad.var_names[0] and ad.n_obs == 2700


def test_missing_file_is_clear_and_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="SKDANCE_DATA"):
        datasets.load_worm_neuron_cell(tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match="not found"):
        datasets.load_pbmc_10x_4k(tmp_path)  # top-2000 file has no public URL


def test_unverified_download_is_refused_unless_allowed(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(_base, "_download", lambda url, path: calls.append(url))
    for load in (datasets.load_mouse_bladder_cell, datasets.load_pbmc_10x_4k):
        with pytest.raises(FileNotFoundError, match="allow_unverified=True"):
            load(tmp_path, n_genes="all")
    with pytest.raises(FileNotFoundError, match="records no sha256"):
        datasets.load_mouse_es_cell(tmp_path, subset=False)
    assert calls == []
    # opting in downloads (here: the stub records the call, writes nothing)
    with pytest.raises(FileNotFoundError):
        _base.fetch_file("mouse_ES_cell", tmp_path, allow_unverified=True)
    assert calls == [_base.REGISTRY["mouse_ES_cell"].url]


def test_checksum_mismatch_detected(tmp_path, monkeypatch):
    path = tmp_path / _base.REGISTRY["klein_labels"].path
    path.parent.mkdir(parents=True)
    path.write_text("0\n1\n")
    with pytest.raises(OSError, match="Checksum mismatch"):
        _base.fetch_file("klein_labels", tmp_path)


def test_bad_choice():
    with pytest.raises(ValueError, match="n_genes must be one of"):
        datasets.load_worm_neuron_cell(n_genes=500)
