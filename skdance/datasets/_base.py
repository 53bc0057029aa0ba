"""Dataset file registry, checksum verification and download."""

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["DatasetNotFoundError", "get_data_home"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are neither in the data folder nor shipped.

    The message says where skdance looked and how to provide the files
    (``SKDANCE_DATA`` or ``data_home=``).  A subclass of
    :class:`FileNotFoundError`, so code that catches that keeps working.
    """


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: where it lies under the data home, its checksum, source."""

    path: str
    sha256: str | None
    url: str | None
    source: str


# DANCE's own download sources (dance/datasets/singlemodality.py) for the
# full-gene clustering files; the top-2000-gene versions come from the scDCC
# repository and the small sets from the wheels named in ``source``.
_DANCE_DROPBOX = "https://www.dropbox.com/s/"
REGISTRY = {
    "worm_neuron_cell": RemoteFile(
        "worm_neuron_cell/worm_neuron_cell.h5",
        "4f2a3c4b8492bcd11d957a8a74098ba258c271d714718c175854a7c44b1e31e6",
        _DANCE_DROPBOX + "58fkgemi2gcnp2k/worm_neuron_cell.h5?dl=1",
        "Cao et al. 2017 sci-RNA-seq worm neurons; DANCE clustering file.",
    ),
    "worm_neuron_cell_top2000": RemoteFile(
        "worm_neuron_cell/worm_neuron_cell_top2000.h5",
        "7d92027c301ce4e6e5cfe74e0f5bdd0bbb219f282bdbdfee92e62a4981629b24",
        None,
        "scDCC repository (Apache-2.0): the 2000 most variable genes.",
    ),
    "mouse_bladder_cell": RemoteFile(
        "mouse_bladder_cell/mouse_bladder_cell.h5",
        None,
        _DANCE_DROPBOX + "xxtnomx5zrifdwi/mouse_bladder_cell.h5?dl=1",
        "Han et al. 2018 Microwell-seq mouse bladder; DANCE clustering file.",
    ),
    "mouse_bladder_cell_top2000": RemoteFile(
        "mouse_bladder_cell/mouse_bladder_cell_top2000.h5",
        "2a97282cf325a4b2a63c2b818be82c453007f29838c7280f30dadd01be4501ab",
        None,
        "scDCC repository (Apache-2.0): all DANCE cells, top genes only.",
    ),
    "10X_PBMC": RemoteFile(
        "pbmc_10x_4k/10X_PBMC.h5",
        None,
        _DANCE_DROPBOX + "pfunm27qzgfpj3u/10X_PBMC.h5?dl=1",
        "10x Genomics PBMC 4k; DANCE clustering file.",
    ),
    "10X_PBMC_top2000": RemoteFile(
        "pbmc_10x_4k/10X_PBMC_top2000.h5",
        "ec78ead405dfa988d6156c12068b49c0782ca58f5ed52c938d8ba8e8377eb16e",
        None,
        "scDCC repository (Apache-2.0): all DANCE cells, top 2000 genes.",
    ),
    "mouse_ES_cell": RemoteFile(
        "mouse_es_cell/mouse_ES_cell.h5",
        None,
        _DANCE_DROPBOX + "zbuku7oznvji8jk/mouse_ES_cell.h5?dl=1",
        "Klein et al. 2015 mouse ES cells (GSE65525); DANCE clustering file.",
    ),
    "klein_profile": RemoteFile(
        "mouse_es_cell_klein_subset/klein_profile.csv",
        "476469c10c67eb3802edfe57f86c85c7bf305a8157cd250b4ddb8e722f76173e",
        None,
        "tmscc repository (MIT): 1000-cell, 900-gene subset of Klein 2015.",
    ),
    "klein_labels": RemoteFile(
        "mouse_es_cell_klein_subset/klein_labels.txt",
        "d844fc0c7117225d1def14a7a5546a6f41bbbccf5f0016e2c42323c4e5721d6c",
        None,
        "tmscc repository (MIT): day 0/2/4/7 labels of the Klein subset.",
    ),
    "pbmc68k_reduced": RemoteFile(
        "pbmc68k_reduced_scanpy/10x_pbmc68k_reduced.h5ad",
        "e71d41e737c941559b7c57c9243bdb3d2c889c2adfdf00e3422ac6b46783676f",
        None,
        "scanpy wheel (BSD-3): 700-cell subsample of 10x PBMC 68k.",
    ),
    "pbmc3k": RemoteFile(
        "pbmc3k_desc/pbmc.h5ad",
        "0c080ce6f36d5ced4c5e932554a9c57606fdef6f0d9481a6e71eaf9278bb6594",
        None,
        "desc wheel (MIT): 10x PBMC 3k raw counts.",
    ),
}

_VERIFIED = {}

#: Folder of the datasets shipped inside the package (same layout as the
#: data home): a file found in neither place is looked up here.
SHIPPED_DATA = Path(__file__).resolve().parent / "data"


def get_data_home(data_home=None):
    """Folder where dataset files are looked up (and downloaded to).

    Order: the ``data_home`` argument, the ``SKDANCE_DATA`` environment
    variable, then ``~/skdance_data``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Explicit folder.

    Returns
    -------
    path : pathlib.Path
        The folder (not created).
    """
    if data_home is None:
        data_home = os.environ.get("SKDANCE_DATA", Path.home() / "skdance_data")
    return Path(data_home).expanduser()


def sha256sum(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_file(key, data_home=None, download_if_missing=True, allow_unverified=False):
    """Return the local path of registry file ``key``, verified.

    Looks in the data home, then among the files shipped inside the package
    (:data:`SHIPPED_DATA`); if absent from both and ``download_if_missing`` is true and
    the file has a public source, downloads it there first.  A file whose
    sha256 differs from the registry raises ``OSError``.  A file with no
    recorded sha256 (its source could not be reached when the registry was
    written) is downloaded only with ``allow_unverified=True``.
    """
    spec = REGISTRY[key]
    path = get_data_home(data_home) / spec.path
    if not path.exists() and (SHIPPED_DATA / spec.path).exists():
        path = SHIPPED_DATA / spec.path  # shipped inside the package
    if not path.exists():
        if download_if_missing and spec.url and spec.sha256 is None:
            if not allow_unverified:
                raise DatasetNotFoundError(
                    f"Dataset file {spec.path!r} is not under "
                    f"{path.parent.parent}, and skdance records no sha256 for it "
                    "(its source could not be reached when the registry was "
                    "written), so a download could not be verified. Pass "
                    "allow_unverified=True to download it from "
                    f"{spec.url} anyway, or place the file there yourself."
                )
        if not download_if_missing or spec.url is None:
            where = f" or download it from {spec.url}" if spec.url else ""
            raise DatasetNotFoundError(
                f"Dataset file {spec.path!r} not found under {path.parent.parent}. "
                f"Set SKDANCE_DATA or pass data_home= to the folder holding it{where}."
                f" Source: {spec.source}"
            )
        try:
            _download(spec.url, path)
        except OSError as exc:  # URLError, timeouts, refused connections
            raise DatasetNotFoundError(
                f"Dataset file {spec.path!r} is not under {path.parent.parent} and "
                f"downloading it from {spec.url} failed ({exc}). Set SKDANCE_DATA "
                "or pass data_home= to a folder that holds it."
            ) from exc
    stamp = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if spec.sha256 is not None and _VERIFIED.get(key) != stamp:
        actual = sha256sum(path)
        if actual != spec.sha256:
            raise OSError(
                f"Checksum mismatch for {path}: expected sha256 {spec.sha256}, got "
                f"{actual}. The file is corrupt or a different version; delete it "
                "and fetch it again."
            )
        _VERIFIED[key] = stamp
    return path


def _download(url, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as fh:
        shutil.copyfileobj(response, fh)
    tmp.replace(path)


def read_h5_counts(path):
    """Read an scDeepCluster-format h5 file (``X`` cells x genes, ``Y`` labels)."""
    import h5py

    with h5py.File(path, "r") as fh:
        X = np.asarray(fh["X"])
        y = np.asarray(fh["Y"])
    X = sp.csr_matrix(X.astype(np.float32))
    return X, y.astype(np.int64)


def make_anndata(X, y, genes=None, label_key="cell_type"):
    """Wrap counts and labels in an AnnData (imported lazily)."""
    import anndata

    n_genes = X.shape[1]
    if genes is None:
        genes = [f"gene_{i}" for i in range(n_genes)]
    obs = pd.DataFrame(index=[f"cell_{i}" for i in range(X.shape[0])])
    if y is not None:
        obs[label_key] = pd.Categorical(np.asarray(y))
    return anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))
