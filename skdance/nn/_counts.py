"""Size-factor count normaliser with a sparse, mini-batch data path.

The count-likelihood models (scDeepCluster, scDCC, scTAG, scDSC, GraphSCI)
read raw counts and normalise them inside: size factors ``s_i`` (a cell's
total count over the median total of the training cells), ``log1p(x / s)``,
and a per-gene standardisation whose mean and standard deviation are learnt
in ``fit``.  :class:`CountNormalizer` learns those statistics from a CSR
matrix without densifying it (dense blocks of ``chunk_rows`` cells at a
time), and :class:`NormalizedCounts` holds the counts and ``log1p(x / s)``
as CSR matrices and hands out dense float32 tensors for one mini-batch of
rows at a time: memory grows with the batch, not with cells x genes.
"""

import numpy as np
import scipy.sparse as sp

__all__ = [
    "CountNormalizer",
    "NormalizedCounts",
    "RowSource",
    "column_mean_std",
    "dense_rows",
    "median_total",
    "size_factors",
    "stack_rows",
]

#: Rows densified at once when statistics are computed or rows are encoded.
CHUNK_ROWS = 4096


def _as_csr32(X):
    """``X`` (dense or sparse counts) as a float32 CSR matrix (no copy if it is)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if not X.has_canonical_format:  # duplicates would be summed by toarray
            X = X.copy()
            X.sum_duplicates()
        return X if X.dtype == np.float32 else X.astype(np.float32)
    return sp.csr_matrix(np.asarray(X, dtype=np.float32))


def _row_totals(X):
    """Total count of every row, accumulated in float64 (exact for counts)."""
    if sp.issparse(X):
        return np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
    return np.asarray(X, dtype=np.float64).sum(axis=1)


def median_total(X):
    """Median total count of the cells (rows) of ``X``, dense or sparse.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.nn import median_total
    >>> median_total(np.array([[1.0, 1.0], [4.0, 0.0], [0.0, 3.0]]))
    3.0
    """
    return float(np.median(_row_totals(X)))


def size_factors(X, median_total):
    """Size factors ``s_i = total_i / median_total`` as float32.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_genes)
        Counts.
    median_total : float
        Median total count of the training cells.

    Returns
    -------
    s : ndarray of shape (n_cells,), float32
        Size factors (the division is done in float64, then rounded).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.nn import size_factors
    >>> size_factors(np.array([[1.0, 1.0], [4.0, 0.0]]), 2.0)
    array([1., 2.], dtype=float32)
    """
    return (_row_totals(X) / median_total).astype(np.float32)


def _sequential_column_sum(blocks, n_cols, dtype=np.float32):
    """Sum dense row blocks over rows, one row after another.

    The same order as numpy's ``A.sum(axis=0)`` on the stacked C-ordered
    matrix (a row-by-row accumulation), so statistics computed block by block
    equal those of the dense matrix bit for bit.
    """
    total = np.zeros(n_cols, dtype=dtype)
    for block in blocks:
        total = np.concatenate([total[None, :], block]).sum(axis=0)
    return total


def dense_rows(X, rows=slice(None)):
    """Rows of ``X`` (sparse or dense) as a dense array, nothing else densified."""
    block = X[rows]
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def stack_rows(fn, n_rows, chunk_rows=CHUNK_ROWS):
    """Stack ``fn(start, stop)`` over row chunks into one float64 array.

    The output is allocated once, at its final size, and filled chunk by
    chunk: a wide output (e.g. 25,734 predicted peaks per cell) is held once,
    not again as a list of chunks and their concatenation.

    Parameters
    ----------
    fn : callable
        ``fn(start, stop)`` returns the (stop - start, n_columns) block of
        rows ``start:stop`` (ndarray or CPU tensor).
    n_rows : int
        Number of rows.
    chunk_rows : int, default=CHUNK_ROWS
        Rows per call.

    Returns
    -------
    out : ndarray of shape (n_rows, n_columns), float64
        ``(0, 0)`` when ``n_rows`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.nn import stack_rows
    >>> stack_rows(lambda a, b: np.arange(a, b)[:, None] * [1, 10], 5, 2)[:, 1]
    array([ 0., 10., 20., 30., 40.])
    """
    out = np.zeros((0, 0))
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        block = fn(start, stop)
        if hasattr(block, "numpy"):
            block = block.numpy()
        if start == 0:
            out = np.empty((n_rows, block.shape[1]))
        out[start:stop] = block
    return out


def _row_blocks(X, chunk_rows, shift=None):
    """Dense blocks of ``chunk_rows`` rows (squared deviations from ``shift``)."""
    for start in range(0, X.shape[0], chunk_rows):
        block = dense_rows(X, slice(start, start + chunk_rows))
        if shift is not None:
            block = block - shift
            block = block * block
        yield block


def column_mean_std(X, chunk_rows=CHUNK_ROWS):
    """Column sums, means and standard deviations of a sparse or dense matrix.

    Computed from dense blocks of ``chunk_rows`` rows, in the order of numpy's
    ``X.sum(axis=0)``, ``X.mean(axis=0)`` and ``X.std(axis=0)`` on the dense
    matrix (in its dtype), so the results are the same bit for bit while at
    most one block is ever dense.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Float matrix.
    chunk_rows : int, default=4096
        Rows densified at once.

    Returns
    -------
    total, mean, std : ndarray of shape (n_features,)
        Column sums, means and (population) standard deviations.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skdance.nn import column_mean_std
    >>> column_mean_std(sp.csr_matrix(np.array([[1.0, 0.0], [3.0, 0.0]])))
    (array([4., 0.]), array([2., 0.]), array([1., 0.]))
    """
    n, n_cols = X.shape
    total = _sequential_column_sum(_row_blocks(X, chunk_rows), n_cols, X.dtype)
    mean = total / n
    var = _sequential_column_sum(_row_blocks(X, chunk_rows, mean), n_cols, X.dtype)
    return total, mean, np.sqrt(var / n)


class RowSource:
    """A matrix kept as given (dense or CSR) that hands out float32 row batches.

    The one mini-batch source of the models: only the rows asked for are
    densified, as a C-contiguous, writable float32 tensor on the requested
    device.  Row totals (library sizes) are computed once, in float64, and
    kept as float32.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_features)
        The data; a sparse matrix is kept as float32 CSR.
    empty_library : float, default=1.0
        Library size given to rows whose total is 0 (a model that divides by
        the library must not divide by 0).

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_matrix, float32
        The data, as held.
    library : ndarray of shape (n_cells,), float32
        Row totals (``empty_library`` where a row sums to 0).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.nn import RowSource
    >>> rows = RowSource(np.array([[1.0, 2.0], [0.0, 0.0], [4.0, 0.0]]))
    >>> rows.batch([2, 0])
    tensor([[4., 0.],
            [1., 2.]])
    >>> rows.library_of([0, 1])
    tensor([3., 1.])
    """

    def __init__(self, X, *, empty_library=1.0):
        if sp.issparse(X):
            self.X = _as_csr32(X)
        else:
            self.X = np.asarray(X, dtype=np.float32)
        totals = _row_totals(self.X)
        self.library = np.where(totals > 0, totals, empty_library).astype(np.float32)

    @property
    def shape(self):
        """``(n_cells, n_features)``."""
        return self.X.shape

    def __len__(self):
        return self.X.shape[0]

    @staticmethod
    def _index(rows):
        if rows is None:
            return slice(None)
        if hasattr(rows, "numpy"):  # a (CPU) torch index tensor
            return rows.cpu().numpy()
        return rows

    def dense(self, rows=None):
        """Rows ``rows`` (all when None) as a writable, C-ordered float32 array."""
        block = dense_rows(self.X, self._index(rows))
        return np.require(block, np.float32, ["C", "W"])

    def batch(self, rows=None, device=None):
        """Rows ``rows`` (all when None) as a float32 tensor on ``device``."""
        import torch

        x = torch.from_numpy(self.dense(rows))
        return x if device is None else x.to(device)

    def library_of(self, rows=None, device=None):
        """Library sizes of ``rows`` as a float32 tensor on ``device``."""
        import torch

        lib = torch.from_numpy(np.ascontiguousarray(self.library[self._index(rows)]))
        return lib if device is None else lib.to(device)

    def chunks(self, chunk_rows=CHUNK_ROWS):
        """Yield row slices covering all rows in order, ``chunk_rows`` at a time."""
        n = self.shape[0]
        for start in range(0, n, chunk_rows):
            yield slice(start, min(start + chunk_rows, n))


class NormalizedCounts:
    """Counts and their normalisation, kept sparse, densified by rows on demand.

    Made by :meth:`CountNormalizer.transform`.

    Attributes
    ----------
    counts : scipy.sparse.csr_matrix of shape (n_cells, n_genes), float32
        Raw counts.
    logged : scipy.sparse.csr_matrix of shape (n_cells, n_genes), float32
        ``log1p(counts / s)`` (zero where the count is zero).
    size_factors : ndarray of shape (n_cells,), float32
        Size factors.
    gene_mean, gene_std : ndarray of shape (n_genes,), float32
        Standardisation of ``logged`` learnt in ``fit``.
    """

    def __init__(self, counts, logged, size_factors, gene_mean, gene_std):
        self.counts = counts
        self.logged = logged
        self.size_factors = size_factors
        self.gene_mean = gene_mean
        self.gene_std = gene_std

    @property
    def shape(self):
        """``(n_cells, n_genes)``."""
        return self.counts.shape

    def __len__(self):
        return self.counts.shape[0]

    @staticmethod
    def _rows(rows):
        if rows is None:
            return slice(None)
        if hasattr(rows, "numpy"):  # a (CPU) torch index tensor
            rows = rows.cpu().numpy()
        return rows

    def normed(self, rows=None):
        """Standardised ``log1p(x / s)`` of ``rows`` as a dense float32 array."""
        logged = self.logged[self._rows(rows)].toarray()
        return (logged - self.gene_mean) / self.gene_std

    def dense_counts(self, rows=None):
        """Raw counts of ``rows`` as a dense float32 array."""
        return self.counts[self._rows(rows)].toarray()

    def batch(self, rows=None, device=None):
        """Tensors ``(counts, normed, size_factors)`` of ``rows`` (all when None).

        Only these rows are densified.  ``device`` moves them (default CPU).
        """
        import torch

        rows = self._rows(rows)
        out = (
            torch.from_numpy(self.dense_counts(rows)),
            torch.from_numpy(self.normed(rows)),
            torch.from_numpy(np.ascontiguousarray(self.size_factors[rows])),
        )
        return out if device is None else tuple(t.to(device) for t in out)

    def normed_tensor(self, rows=None, device=None):
        """Return the standardised input of ``rows`` as a float32 tensor."""
        import torch

        x = torch.from_numpy(self.normed(self._rows(rows)))
        return x if device is None else x.to(device)

    def chunks(self, chunk_rows=CHUNK_ROWS):
        """Yield row slices covering all cells in order, ``chunk_rows`` at a time."""
        n = self.shape[0]
        for start in range(0, n, chunk_rows):
            yield slice(start, min(start + chunk_rows, n))

    def map_normed(self, fn, device=None, chunk_rows=CHUNK_ROWS):
        """Apply ``fn`` to the standardised input chunk by chunk; concatenate.

        Batched inference: ``fn`` (e.g. an encoder under ``torch.no_grad``)
        sees at most ``chunk_rows`` dense rows at a time.
        """
        import torch

        outs = [
            fn(self.normed_tensor(rows, device)) for rows in self.chunks(chunk_rows)
        ]
        return torch.cat(outs) if len(outs) > 1 else outs[0]


class CountNormalizer:
    """Size factors, ``log1p`` and per-gene standardisation, learnt from CSR.

    ``fit`` learns the median total count of the training cells and the mean
    and standard deviation of every gene's ``log1p(x / s)`` (zero deviations
    become 1).  It reads the counts ``chunk_rows`` dense rows at a time: the
    whole matrix is never dense.  The statistics are accumulated in float32
    row by row, the order of numpy's ``mean(axis=0)`` / ``std(axis=0)`` on
    the dense float32 matrix, so they equal the dense computation exactly.

    Parameters
    ----------
    chunk_rows : int, default=4096
        Rows densified at once while learning the statistics.

    Attributes
    ----------
    median_total_ : float
        Median total count of the training cells.
    gene_mean_, gene_std_ : ndarray of shape (n_genes,), float32
        Mean and standard deviation of ``log1p(x / s)`` over the training
        cells.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skdance.nn import CountNormalizer
    >>> X = sp.csr_matrix(np.array([[1.0, 0.0, 3.0], [2.0, 2.0, 0.0]]))
    >>> data = CountNormalizer().fit(X).transform(X)
    >>> counts, normed, sf = data.batch([1])
    >>> tuple(normed.shape), sf.tolist()
    ((1, 3), [1.0])
    """

    def __init__(self, chunk_rows=CHUNK_ROWS):
        self.chunk_rows = chunk_rows

    def _logged(self, counts, sf):
        """``log1p(x / s)`` of CSR float32 counts, as CSR (zeros stay zero)."""
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        data = np.log1p(counts.data / sf[rows])
        return sp.csr_matrix(
            (data, counts.indices, counts.indptr), shape=counts.shape, copy=False
        )

    def fit(self, X):
        """Learn the median total and the gene statistics of ``log1p(x / s)``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_cells, n_genes)
            Non-negative counts, no empty cell.

        Returns
        -------
        self : CountNormalizer
            Fitted normaliser.
        """
        counts = _as_csr32(X)
        self.median_total_ = median_total(counts)
        logged = self._logged(counts, size_factors(counts, self.median_total_))
        _, mean, std = column_mean_std(logged, self.chunk_rows)
        std[std == 0] = 1.0
        self.gene_mean_, self.gene_std_ = mean, std
        return self

    def transform(self, X):
        """Return the normalised data of ``X``, kept sparse.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_cells, n_genes)
            Counts on the fitted genes.

        Returns
        -------
        data : NormalizedCounts
            Counts, ``log1p(x / s)`` and size factors; dense rows on demand.
        """
        counts = _as_csr32(X)
        sf = size_factors(counts, self.median_total_)
        logged = self._logged(counts, sf)
        return NormalizedCounts(counts, logged, sf, self.gene_mean_, self.gene_std_)

    def fit_transform(self, X):
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)
