"""Paired multimodal single cells: the benchmark sets and competition files.

Every set is a pair of AnnData with the same cells in the same order: gene
expression (``rna``) and a second modality (``mod2``: ADT proteins or ATAC
peaks).  :func:`load_multimodal` returns them in the NeurIPS 2021
competition's units, the units the multimodal benchmarks score in:

* GEX: ``log1p(counts / s)`` with ``s`` the cell's library size over the
  mean library size (the organisers' files use scran size factors; their
  ``X`` is kept as shipped),
* ADT: centred log-ratio per cell, ``log1p(x / exp(mean_j log1p(x_j)))``
  (muon's ``prot.pp.clr`` convention; CBMC's proteins are shipped
  normalised without counts and kept as shipped),
* ATAC: binarised peaks (``counts > 0``).

Raw counts stay in ``layers["counts"]`` where the source has them, for the
models whose likelihood needs counts.  :func:`split_multimodal` holds out
whole batches, the competition's protocol, and :func:`read_competition`
reads the competition's own train/test files (DANCE's
``openproblems_bmmc_{cite,multiome}_phase2_*`` data) from a folder;
:func:`load_multimodal` loads them by DANCE's names too.
"""

import re
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skdance.datasets._base import (
    REGISTRY,
    DatasetNotFoundError,
    RemoteFile,
    fetch_file,
    get_data_home,
    sha256sum,
)

__all__ = [
    "MULTIMODAL_DATASETS",
    "holdout_mask",
    "load_multimodal",
    "read_competition",
    "split_multimodal",
]

_OP = "openproblems-bio/neurips2021_multimodal_viash (MIT; data GSE194122)"


class _Paired:
    """One paired set: its two files, second modality and held-out batches."""

    def __init__(self, key, folder, stem, sha, modality, test_batches, source):
        self.key, self.modality, self.test_batches = key, modality, test_batches
        for part, digest in zip(("rna", "mod2"), sha, strict=True):
            REGISTRY[f"{key}_{part}"] = RemoteFile(
                f"{folder}/{stem}.output_{part}.h5ad", digest, None, source
            )


_SPECS = {
    spec.key: spec
    for spec in (
        _Paired(
            "neurips2021_bmmc_cite_starter",
            "neurips2021_bmmc_cite_starter",
            "openproblems_bmmc_cite_starter",
            (
                "e111b6ad48f7236b9291dab56d0aa2ebcc1a5f8d1d402fa232d9bfe3d1af6f61",
                "ad4df05778c27c930bdb9764452af0fa381cbd9b3fb8de669420148f20fb1fed",
            ),
            "ADT",
            ("s1d2",),
            "NeurIPS 2021 BMMC CITE-seq starter subsample; " + _OP,
        ),
        _Paired(
            "neurips2021_bmmc_multiome_starter",
            "neurips2021_bmmc_multiome_starter",
            "openproblems_bmmc_multiome_starter",
            (
                "53efc0c9c9fb205587d18087e9010846c7532d8de23daea26ff5a410b029cea6",
                "f6d6368518a7e5ed0e19eb67f87370b017a1d98d735b9aedbad78dd93c84a068",
            ),
            "ATAC",
            ("s1d2",),
            "NeurIPS 2021 BMMC Multiome starter subsample; " + _OP,
        ),
        _Paired(
            "teaseq_pbmc",
            "teaseq_pbmc",
            "teaseq_pbmc",
            (
                "68123d2d7e4e06438e396ec52e5941729b564a1a5537d924121835fe2fb9760c",
                "fdb8e1880f3732c7b2f5375b25fdf4b2c56ba544c3e2571e9862c3dfa172bc5c",
            ),
            "ADT",
            None,
            "TEA-seq PBMC (Swanson 2021) as prepared by PYangLab/Matilda (Apache-2.0)",
        ),
        _Paired(
            "cbmc_citeseq",
            "cbmc_citeseq",
            "cbmc_citeseq",
            (
                "7a137eb7e3ea98a00ff229c66e605cd130703d5c9f98aed14dbc542e3eb25a22",
                "bc3714f131b664dc22c6b18e9e72407359a63478f8c7d1b0d9739c48898a009d",
            ),
            "ADT",
            None,
            "CITE-seq CBMC (Stoeckius 2017) from ttgump/scDCC (Apache-2.0)",
        ),
        _Paired(
            "snareseq_mouse_cortex",
            "snareseq_mouse_cortex",
            "snareseq_mouse_cortex",
            (
                "88d47a2ca36effa73b1af5650b1246e305fe563558c5e719f75c3577869ad338",
                "a42b9c9f1a645177d8a14ab9ef671b827e5f1fc73a5a1b267ecc77ed6971ba1d",
            ),
            "ATAC",
            None,  # the last quarter of the libraries, see split_multimodal
            "SNARE-seq adult mouse cortex (Chen 2019) as packaged by "
            "PeterZZQ/scMoMaT (MIT)",
        ),
        _Paired(
            "scicar_mouse_kidney",
            "scicar_mouse_kidney",
            "scicar_mouse_kidney",
            (
                "10a2cc607e44ce1ace749b64de24da8b5488a446de44e9aa2ef7d4e6427e3cf8",
                "4b28719d42cff2584eaa2e24faedc7776012acdeff6f5d5084165d6ae0d7d756",
            ),
            "ATAC",
            None,
            "sci-CAR mouse kidney (Cao 2018), openproblems-bio/openproblems "
            "sample (MIT)",
        ),
    )
}

#: Names accepted by :func:`load_multimodal`.
MULTIMODAL_DATASETS = tuple(_SPECS)


def _csr(X):
    return sp.csr_matrix(X, dtype=np.float32)


def log_normalize(counts):
    """``log1p(counts / s)``, ``s`` = library size over the mean library size.

    Parameters
    ----------
    counts : sparse matrix of shape (n_cells, n_genes)
        Raw counts.

    Returns
    -------
    X : scipy.sparse.csr_matrix of float32
        Log-normalised expression.
    """
    counts = _csr(counts)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(
        totals.mean(), totals, out=np.zeros_like(totals), where=totals > 0
    )
    X = sp.diags(scale.astype(np.float32)) @ counts
    X.data = np.log1p(X.data)
    return _csr(X)


def clr(counts):
    """Centred log-ratio per cell: ``log1p(x / exp(mean_j log1p(x_j)))``.

    Parameters
    ----------
    counts : sparse matrix of shape (n_cells, n_proteins)
        Raw ADT counts.

    Returns
    -------
    X : scipy.sparse.csr_matrix of float32
        CLR-normalised protein levels.
    """
    counts = _csr(counts)
    logged = counts.copy()
    logged.data = np.log1p(logged.data)
    geo = np.exp(np.asarray(logged.mean(axis=1)).ravel())
    X = sp.diags((1.0 / geo).astype(np.float32)) @ counts
    X.data = np.log1p(X.data)
    return _csr(X)


def binarize(counts):
    """ATAC peaks as 0/1 (``counts > 0``), CSR float32."""
    X = _csr(counts)
    X.eliminate_zeros()
    X.data[:] = 1.0
    return X


def _competition_units(adata, modality, shipped_normalized):
    counts = adata.layers.get("counts")
    if shipped_normalized or counts is None:
        # the organisers' files (and CBMC's proteins) are normalised already
        adata.X = binarize(adata.X) if modality == "ATAC" else _csr(adata.X)
        return adata
    if modality == "GEX":
        adata.X = log_normalize(counts)
    elif modality == "ADT":
        adata.X = clr(counts)
    else:
        adata.X = binarize(counts)
    return adata


def _in_units(adata, units, what, competition):
    """``adata`` with ``X`` in ``units``, ``layers["counts"]`` as CSR.

    ``competition(adata)`` returns it in the competition's units.
    """
    if units == "counts":
        if "counts" not in adata.layers:
            raise ValueError(
                f"{what} is shipped normalised, without raw counts "
                "(layers['counts']); use units='competition'."
            )
        adata.X = _csr(adata.layers["counts"])
    else:
        adata = competition(adata)
    if "counts" in adata.layers:
        adata.layers["counts"] = _csr(adata.layers["counts"])
    return adata


def _keep_units(adata):
    """Keep the competition files' ``X`` as the organisers ship it, as CSR."""
    adata.X = _csr(adata.X)
    return adata


def load_multimodal(
    name, data_home=None, *, units="competition", sha256=None, return_mudata=False
):
    """Load a real paired multimodal set: (gene expression, second modality).

    Parameters
    ----------
    name : str
        One of :data:`MULTIMODAL_DATASETS`: GEX + ADT
        ``"neurips2021_bmmc_cite_starter"`` (600 cells, 134 proteins, the
        competition's own data subsampled; shipped inside the package, so
        it needs no data folder), ``"teaseq_pbmc"`` (1,262
        cells, 46 proteins), ``"cbmc_citeseq"`` (8,617 cells, 10
        proteins); GEX + ATAC ``"snareseq_mouse_cortex"`` (10,309 cells,
        25,734 peaks), ``"neurips2021_bmmc_multiome_starter"`` (500 cells)
        and ``"scicar_mouse_kidney"`` (554 cells).  Or one of DANCE's
        names for the full competition files,
        ``"openproblems_bmmc_{cite,multiome}_phase2[_rna|_mod2]"``: skdance
        ships no copy of these; place the organisers' four files
        (``<name>.censor_dataset.output_{train,test}_mod{1,2}.h5ad``) in
        ``data_home`` or ``data_home/<name>/`` (no suffix means ``_rna``).
        Their cells are train then test, ``obs["is_train"]`` tells which,
        and :func:`split_multimodal` splits on it.
    data_home : str or path-like, default=None
        Folder holding the files (default ``$SKDANCE_DATA``).
    units : {"competition", "counts"}, default="competition"
        ``"competition"``: ``X`` in the NeurIPS 2021 units (log-normalised
        GEX, CLR ADT, binarised ATAC; see the module docstring; the
        competition files' ``X`` is kept as the organisers ship it);
        ``"counts"``: ``X`` = raw counts (``ValueError`` where the source
        ships none: CBMC's proteins).
    sha256 : dict, default=None
        Competition files only: expected hex digests by part
        (``"train_mod1"``, ``"train_mod2"``, ``"test_mod1"``,
        ``"test_mod2"``), checked before reading (see
        :func:`read_competition`).  The registered sets are always
        verified against skdance's own digests; skdance records none for
        the phase-2 files (they could not be fetched where skdance was
        built, to compute them).
    return_mudata : bool, default=False
        Return one :class:`mudata.MuData` with the modalities ``"rna"`` and
        ``"prot"`` (ADT) or ``"atac"``, muon's names, instead of the pair.
        Its ``obs`` and ``var`` hold the modalities' columns
        (``mdata.obs["rna:cell_type"]``). A protein can share its gene's
        name, so ``mdata.var_names`` need not be unique: name features
        through a modality (``mdata["prot"].var_names``).

    Returns
    -------
    rna : anndata.AnnData
        Gene expression, ``X`` as CSR float32, ``layers["counts"]`` where
        available, ``obs["cell_type"]`` and ``obs["batch"]``.
    mod2 : anndata.AnnData
        The second modality of the same cells in the same order,
        ``uns["modality"]`` = ``"ADT"`` or ``"ATAC"``.

    mdata : mudata.MuData
        With ``return_mudata=True``: both, as ``mdata["rna"]`` and
        ``mdata["prot"]`` or ``mdata["atac"]``.

    Examples
    --------
    >>> from skdance.datasets import load_multimodal
    >>> rna, adt = load_multimodal("neurips2021_bmmc_cite_starter")  # shipped
    >>> rna.shape, adt.shape, adt.uns["modality"]
    ((600, 1000), (600, 134), 'ADT')
    >>> mdata = load_multimodal("neurips2021_bmmc_cite_starter", return_mudata=True)
    >>> list(mdata.mod)
    ['rna', 'prot']
    """
    if units not in ("competition", "counts"):
        raise ValueError(f"units must be 'competition' or 'counts', got {units!r}.")
    if return_mudata:
        return _as_mudata(load_multimodal(name, data_home, units=units, sha256=sha256))
    if _PHASE2.fullmatch(name):
        return _load_phase2(name, data_home, units, sha256)
    if name not in _SPECS:
        raise ValueError(
            f"Unknown multimodal dataset {name!r}; choose one of "
            f"{MULTIMODAL_DATASETS} or a competition name "
            "'openproblems_bmmc_{cite,multiome}_phase2[_rna|_mod2]'."
        )
    if sha256 is not None:
        raise ValueError(
            "sha256= is for the competition files; the registered sets are "
            "verified against skdance's own digests."
        )
    from skdance.datasets._loaders import _read_h5ad

    spec = _SPECS[name]
    out = []
    for part, modality in (("rna", "GEX"), ("mod2", spec.modality)):
        adata = _read_h5ad(fetch_file(f"{name}_{part}", data_home, False))
        convert = partial(
            _competition_units,
            modality=modality,
            shipped_normalized=name.startswith("neurips2021"),
        )
        adata = _in_units(adata, units, f"{name}'s {modality}", convert)
        adata.uns["modality"] = modality
        adata.uns["test_batches"] = list(spec.test_batches or ())
        out.append(adata)
    return tuple(out)


def _as_mudata(pair):
    """One MuData of a (rna, mod2) pair, with muon's modality names."""
    import mudata

    rna, mod2 = pair
    name = {"ADT": "prot", "ATAC": "atac"}[mod2.uns["modality"]]
    # mudata 0.4's behaviour (no implicit pull on update), with the
    # modalities' obs and var columns pulled explicitly ("rna:cell_type");
    # a protein and its gene share a name (CD4), which mudata warns about
    # although it is what a CITE-seq MuData is
    with mudata.set_options(pull_on_update=False), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        mdata = mudata.MuData({"rna": rna, name: mod2})
        mdata.pull_obs()
        mdata.pull_var()
    return mdata


_PHASE2 = re.compile(r"openproblems_bmmc_(cite|multiome)_phase2(_rna|_mod2)?")


def _load_phase2(name, data_home, units, sha256):
    """(rna, mod2) of a competition set: train then test, ``obs["is_train"]``."""
    import anndata as ad

    kind, suffix = _PHASE2.fullmatch(name).groups()
    stem = name if suffix else f"{name}_rna"
    home = get_data_home(data_home)
    candidates = [
        home / stem / f"{stem}.censor_dataset",
        home / f"{stem}.censor_dataset",
    ]
    for prefix in candidates:
        if Path(f"{prefix}.output_train_mod1.h5ad").exists():
            break
    else:
        raise DatasetNotFoundError(
            f"The competition files of {name!r} are not under {home}: looked for "
            + " and ".join(f"{p}.output_train_mod1.h5ad" for p in candidates)
            + ". skdance ships no copy; download the organisers' phase-2 files "
            "(DANCE fetches them for its multimodality tasks) and set "
            "SKDANCE_DATA or data_home= to their folder."
        )
    train1, train2, test1, test2 = read_competition(prefix, sha256=sha256)
    modality = "ADT" if kind == "cite" else "ATAC"
    pairs = [(train1, test1), (train2, test2)]
    if stem.endswith("_mod2"):  # the organisers' mod1 is the second modality
        pairs.reverse()
    out = []
    for (train, test), what in zip(pairs, ("GEX", modality), strict=True):
        adata = ad.concat([train, test], merge="same", uns_merge="first")
        adata.obs["is_train"] = np.r_[
            np.ones(train.n_obs, dtype=bool), np.zeros(test.n_obs, dtype=bool)
        ]
        adata = _in_units(adata, units, f"{name}'s {what} file", _keep_units)
        adata.uns["modality"] = what
        adata.uns["test_batches"] = []
        out.append(adata)
    return tuple(out)


def split_multimodal(rna, mod2, *, test_batches=None, test_size=0.2, random_state=0):
    """Split paired cells into train and test, holding out whole batches.

    The competition's protocol: the test cells come from batches (donors,
    sites, libraries) never seen in training.  Where a set has one batch
    the split is random (``test_size``), which is easier: say so when
    reporting.

    Parameters
    ----------
    rna, mod2 : anndata.AnnData
        The pair :func:`load_multimodal` returns (same cells, same order).
    test_batches : list of str, default=None
        Batches (``obs["batch"]``) to hold out.  Default: the organisers'
        split where ``rna.obs["is_train"]`` exists (the competition files),
        else the set's own
        (``rna.uns["test_batches"]``; NeurIPS starters: ``s1d2``), else the
        last quarter of the sorted batches, at least one, when there are
        two or more (SNARE-seq: 3 of 12 libraries; sci-CAR: replicate 2),
        else (TEA-seq, CBMC: one batch) a random split.
    test_size : float, default=0.2
        Fraction of cells for the random split.
    random_state : int, default=0
        Seeds the random split.

    Returns
    -------
    rna_train, mod2_train, rna_test, mod2_test : anndata.AnnData
        Copies; the two training (and the two test) objects share rows.
    """
    if rna.n_obs != mod2.n_obs:
        raise ValueError(
            f"rna has {rna.n_obs} cells but mod2 has {mod2.n_obs}: the two "
            "modalities must describe the same cells."
        )
    if test_batches is None and "is_train" in rna.obs:
        test = ~rna.obs["is_train"].to_numpy(dtype=bool)
    else:
        test = holdout_mask(
            rna.n_obs,
            rna.obs["batch"].to_numpy() if "batch" in rna.obs else None,
            test_batches=(
                rna.uns.get("test_batches") if test_batches is None else test_batches
            ),
            test_size=test_size,
            random_state=random_state,
        )
    return rna[~test].copy(), mod2[~test].copy(), rna[test].copy(), mod2[test].copy()


def holdout_mask(
    n_cells, batches=None, *, test_batches=None, test_size=0.2, random_state=0
):
    """Boolean mask of the held-out cells (see :func:`split_multimodal`).

    Parameters
    ----------
    n_cells : int
        Number of cells.
    batches : array-like of shape (n_cells,) or None
        Batch of every cell.
    test_batches : list of str or None
        Batches to hold out; None or empty: the last quarter of the sorted
        batches (at least one) when there are two or more, else random.
    test_size : float, default=0.2
        Fraction held out at random where there is one batch.
    random_state : int, default=0
        Seeds the random split.

    Returns
    -------
    test : ndarray of bool of shape (n_cells,)
        True for the test cells.
    """
    batches = None if batches is None else np.asarray(batches).astype(str)
    test_batches = list(test_batches or [])
    levels = [] if batches is None else sorted(set(batches))
    if not test_batches and len(levels) >= 2:
        test_batches = levels[-max(1, len(levels) // 4) :]
    if test_batches:
        if batches is None:
            raise ValueError("No batches given to hold out test_batches from.")
        test = np.isin(batches, test_batches)
        if not test.any() or test.all():
            raise ValueError(
                f"test_batches={test_batches} must hold out some but not all "
                f"cells; batches are {levels}."
            )
        return test
    rng = np.random.default_rng(random_state)
    test = np.zeros(n_cells, dtype=bool)
    test[rng.permutation(n_cells)[: int(round(test_size * n_cells))]] = True
    return test


def read_competition(path, *, sha256=None):
    """Read the NeurIPS 2021 competition's train/test files from a folder.

    DANCE trains on the organisers' phase-2 files (e.g.
    ``openproblems_bmmc_cite_phase2_rna.censor_dataset.output_train_mod1.h5ad``
    and ``..._train_mod2``, ``..._test_mod1``, ``..._test_mod2``).  Pass
    the common prefix (or the folder holding exactly one such set).

    Parameters
    ----------
    path : str or path-like
        ``<folder>/<name>.censor_dataset`` (the prefix before
        ``.output_train_mod1.h5ad``), or a folder with one set.
    sha256 : dict, default=None
        Expected hex digests by part (``"train_mod1"``, ``"train_mod2"``,
        ``"test_mod1"``, ``"test_mod2"``; any subset).  A file whose digest
        differs raises ``OSError`` before it is read.

    Returns
    -------
    train_mod1, train_mod2, test_mod1, test_mod2 : anndata.AnnData
        The four files, ``X`` as CSR (the organisers' units).  In the
        matching task the organisers shuffle ``test_mod2``; its rows are
        then not paired with ``test_mod1``'s.
    """
    import anndata as ad

    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.output_train_mod1.h5ad"))
        if len(found) != 1:
            raise ValueError(
                f"{path} must hold exactly one '*.output_train_mod1.h5ad'; "
                f"found {len(found)}."
            )
        path = Path(str(found[0])[: -len(".output_train_mod1.h5ad")])
    names = ("train_mod1", "train_mod2", "test_mod1", "test_mod2")
    sha256 = dict(sha256 or {})
    unknown = sorted(set(sha256) - set(names))
    if unknown:
        raise ValueError(f"sha256 keys must be among {names}; got {unknown}.")
    parts = []
    for part in names:
        file = Path(f"{path}.output_{part}.h5ad")
        if not file.exists():
            raise FileNotFoundError(f"Missing competition file {file}.")
        actual = sha256sum(file) if part in sha256 else None
        if actual is not None and actual != sha256[part].lower():
            raise OSError(
                f"Checksum mismatch for {file}: expected sha256 {sha256[part]}, "
                f"got {actual}."
            )
        adata = ad.read_h5ad(file)
        adata.X = sp.csr_matrix(adata.X)
        parts.append(adata)
    for a, b, what in ((0, 1, "train"), (2, 3, "test")):
        if parts[a].n_obs != parts[b].n_obs:
            raise ValueError(
                f"The {what} files disagree on the number of cells "
                f"({parts[a].n_obs} vs {parts[b].n_obs})."
            )
    return tuple(parts)
