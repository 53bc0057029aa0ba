"""Time skdance's GraphAttention against PyG's GATConv (forward + backward).

Run ``python -m benchmarks.gat_layer``; the numbers are in
``benchmarks/results/gat_layer.md``.  PyG (torch-geometric) is needed only
here, not by skdance.
"""

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp
import torch

from skdance.graph import KNNGraph
from skdance.nn import GraphAttention, to_edge_index, to_torch_sparse


def _time(step, repeats):
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4000)
    parser.add_argument("--neighbors", type=int, default=6)
    parser.add_argument("--in-dim", type=int, default=3000)
    parser.add_argument("--out-dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import torch_geometric
    from torch_geometric.nn import GATConv

    rng = np.random.default_rng(0)
    coords = rng.uniform(size=(args.nodes, 2))
    A = KNNGraph(n_neighbors=args.neighbors).fit_transform(coords)
    A = sp.csr_matrix(A + sp.identity(args.nodes))  # STAGATE adds self loops
    A.data[:] = 1.0
    adj = to_torch_sparse(A)
    edge_index, _ = to_edge_index(A)
    torch.manual_seed(0)
    x = torch.randn(args.nodes, args.in_dim)

    ours = GraphAttention(args.in_dim, args.out_dim)
    pyg = GATConv(args.in_dim, args.out_dim, heads=1, add_self_loops=False, bias=False)

    def step_ours():
        ours.zero_grad()
        (ours(x, adj) ** 2).mean().backward()

    def step_pyg():
        pyg.zero_grad()
        (pyg(x, edge_index) ** 2).mean().backward()

    lin = torch.nn.Linear(args.in_dim, args.out_dim, bias=False)

    def step_linear():
        lin.zero_grad()
        (lin(x) ** 2).mean().backward()

    print(f"torch {torch.__version__}, torch-geometric {torch_geometric.__version__}")
    print(
        f"{args.nodes} nodes, {A.nnz} edges (with self loops), "
        f"{args.in_dim} -> {args.out_dim}, {torch.get_num_threads()} threads, "
        f"forward + backward, {args.repeats} repeats (median / min, seconds)"
    )
    for name, step in [
        ("skdance GraphAttention", step_ours),
        ("PyG GATConv", step_pyg),
        ("x W alone (floor)", step_linear),
    ]:
        med, best = _time(step, args.repeats)
        print(f"{name:24s} {med:.3f} / {best:.3f}")


if __name__ == "__main__":
    main()
