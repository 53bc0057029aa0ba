"""Cell-cycle phase scores, the side information of scMoGNN's and JAE's embeddings.

DANCE scores every cell's S and G2/M phase with scanpy's
``score_genes_cell_cycle`` on Tirosh et al.'s (2016, Science 352:189) gene
lists, the lists of Seurat's and scanpy's cell-cycle tutorials, and regresses
a part of the embedding on the two scores.  Both skdance models use this one
function.
"""

import numpy as np
import scipy.sparse as sp

from skdance.nn import seeded

__all__ = ["G2M_GENES", "S_GENES", "cell_cycle_scores"]

# Tirosh et al. (2016): 43 S-phase genes, then 54 G2/M genes (human symbols;
# matched case-insensitively, so mouse symbols match too)
S_GENES = (
    "MCM5 PCNA TYMS FEN1 MCM2 MCM4 RRM1 UNG GINS2 MCM6 CDCA7 DTL PRIM1 UHRF1 "
    "MLF1IP HELLS RFC2 RPA2 NASP RAD51AP1 GMNN WDR76 SLBP CCNE2 UBR7 POLD3 "
    "MSH2 ATAD2 RAD51 RRM2 CDC45 CDC6 EXO1 TIPIN DSCC1 BLM CASP8AP2 USP1 "
    "CLSPN POLA1 CHAF1B BRIP1 E2F8"
).split()
G2M_GENES = (
    "HMGB2 CDK1 NUSAP1 UBE2C BIRC5 TPX2 TOP2A NDC80 CKS2 NUF2 CKS1B MKI67 "
    "TMPO CENPF TACC3 FAM64A SMC4 CCNB2 CKAP2L CKAP2 AURKB BUB1 KIF11 ANP32E "
    "TUBB4B GTSE1 KIF20B HJURP CDCA3 HN1 CDC20 TTK CDC25C KIF2C RANGAP1 "
    "NCAPD2 DLGAP5 CDCA2 CDCA8 ECT2 KIF23 HMMR AURKA PSRC1 ANLN LBR CKAP5 "
    "CENPE CTCF NEK2 G2E3 GAS2L3 CBX5 CENPA"
).split()

# scanpy bins the gene pool into 25 expression bins and draws 50 control
# genes per bin; fewer genes than this leave bins without controls
MIN_GENE_POOL = 50


def cell_cycle_scores(
    X, gene_names, *, s_genes=None, g2m_genes=None, scale=False, random_state=0
):
    """Return the S and G2/M phase scores of cells (scanpy's cell-cycle scoring).

    Each score is the mean expression of the phase's genes minus that of
    expression-matched random control genes (Tirosh et al. 2016; Seurat's
    ``CellCycleScoring``; :func:`scanpy.tl.score_genes_cell_cycle`).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_cells, n_genes)
        Log-normalised expression; never modified.
    gene_names : array-like of str of shape (n_genes,)
        Gene symbols of the columns of ``X``.
    s_genes, g2m_genes : list of str, default=None
        Marker genes of the S and G2/M phases; None: Tirosh et al.'s lists.
        Matched without regard to case (``MCM5`` finds ``Mcm5``).
    scale : bool, default=False
        Scale every gene to zero mean and unit variance over the cells first
        (:func:`scanpy.pp.scale`, as DANCE does for scMoGNN).  This
        densifies ``X``.
    random_state : int, default=0
        Seed of the control-gene draws; the global random state is restored.

    Returns
    -------
    scores : ndarray of shape (n_cells, 2)
        S score, G2/M score.

    Raises
    ------
    ValueError
        When ``gene_names`` does not match the columns of ``X``, when fewer
        than two marker genes of a phase are among ``gene_names``, or when
        there are fewer than 50 genes to draw control genes from.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.embedding import cell_cycle_scores
    >>> rng = np.random.default_rng(0)
    >>> genes = ["MCM5", "PCNA", "TYMS", "CDK1", "TOP2A", "MKI67"] + [
    ...     f"G{i}" for i in range(60)]
    >>> gex = np.log1p(rng.poisson(1.0, (40, len(genes))).astype(float))
    >>> cell_cycle_scores(gex, genes).shape
    (40, 2)
    """
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    names = np.asarray(gene_names, dtype=object).astype(str)
    if names.ndim != 1 or names.shape[0] != X.shape[1]:
        raise ValueError(f"gene_names has {names.size} names for {X.shape[1]} genes.")
    if names.shape[0] < MIN_GENE_POOL:
        raise ValueError(
            f"cell_cycle_scores needs at least {MIN_GENE_POOL} genes to draw "
            f"control genes from; got {names.shape[0]}."
        )
    upper = {}
    for name in names:
        upper.setdefault(name.upper(), name)
    sets = []
    for given, default, what in (
        (s_genes, S_GENES, "S"),
        (g2m_genes, G2M_GENES, "G2/M"),
    ):
        wanted = default if given is None else list(given)
        found = list(
            dict.fromkeys(
                upper[str(g).upper()] for g in wanted if str(g).upper() in upper
            )
        )
        if len(found) < 2:
            raise ValueError(
                f"cell_cycle_scores: only {len(found)} {what}-phase marker gene(s) "
                "found among gene_names; pass gene symbols (or your own lists)."
            )
        sets.append(found)
    if sp.issparse(X) and not scale:
        matrix = sp.csr_matrix(X, dtype=np.float64)  # a copy: X is never modified
    else:
        matrix = X.toarray() if sp.issparse(X) else np.array(X, dtype=np.float64)
    adata = ad.AnnData(matrix)
    adata.var_names = ad.utils.make_index_unique(pd.Index(names))
    if scale:
        sc.pp.scale(adata)
    # scanpy reseeds numpy's global state; seeded() restores it afterwards
    with seeded(int(random_state)):
        sc.tl.score_genes_cell_cycle(
            adata, s_genes=sets[0], g2m_genes=sets[1], random_state=None
        )
    return adata.obs[["S_score", "G2M_score"]].to_numpy(dtype=np.float64)
