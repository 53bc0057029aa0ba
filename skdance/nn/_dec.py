"""Deep embedded clustering (DEC) head: Student-t assignment and target."""

import torch

__all__ = ["kl_clustering_loss", "student_t_assignment", "target_distribution"]


def student_t_assignment(z, centers, alpha=1.0):
    """Soft assignment of embeddings to centres with a Student-t kernel.

    ``q_ij ∝ (1 + ||z_i - mu_j||² / alpha) ** (-(alpha + 1) / 2)``, rows
    normalised (Xie et al. 2016).

    Parameters
    ----------
    z : torch.Tensor of shape (n_cells, latent_dim)
        Embeddings.
    centers : torch.Tensor of shape (n_clusters, latent_dim)
        Cluster centres.
    alpha : float, default=1.0
        Degrees of freedom.

    Returns
    -------
    q : torch.Tensor of shape (n_cells, n_clusters)
        Rows sum to 1.
    """
    dist2 = torch.cdist(z, centers).square()
    q = torch.pow(1.0 + dist2 / alpha, -(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def target_distribution(q):
    """DEC's sharpened target ``p_ij ∝ q_ij² / f_j`` with ``f_j = sum_i q_ij``.

    Parameters
    ----------
    q : torch.Tensor of shape (n_cells, n_clusters)
        Soft assignments.

    Returns
    -------
    p : torch.Tensor of shape (n_cells, n_clusters)
        Rows sum to 1; no gradient.
    """
    q = q.detach()
    weight = q.square() / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_clustering_loss(p, q):
    """``KL(P || Q)`` averaged over cells (DEC's clustering loss)."""
    return torch.sum(p * (torch.log(p + 1e-10) - torch.log(q + 1e-10)), dim=1).mean()
