"""Spatial domain maps."""

import matplotlib
import numpy as np
import pytest

from skdance.plotting import spatial_domains, spatial_domains_panel

matplotlib.use("Agg")


@pytest.fixture
def grid():
    coords = np.c_[np.arange(20) % 5, np.arange(20) // 5].astype(float)
    truth = np.where(coords[:, 0] < 2, "L1", "L2").astype(object)
    truth[3] = np.nan
    return coords, truth


def test_spatial_domains_draws_one_collection(grid):
    import matplotlib.pyplot as plt

    coords, truth = grid
    ax = spatial_domains(coords, truth, title="slice")
    assert len(ax.collections) == 1
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(offsets), coords)
    colors = ax.collections[0].get_facecolors()
    # the unannotated spot is grey, the two domains two other colours
    assert len({tuple(c) for c in colors}) == 3
    assert tuple(colors[3][:3]) == matplotlib.colors.to_rgb("lightgrey")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["L1", "L2"]
    assert ax.get_aspect() == 1.0 and ax.yaxis_inverted()
    assert ax.get_title() == "slice"
    plt.close(ax.figure)


def test_panel_one_collection_per_panel_and_png(grid, tmp_path):
    import matplotlib.pyplot as plt

    coords, truth = grid
    models = {"A": np.arange(20) % 2, "B": np.arange(20) % 3, "C": np.zeros(20)}
    fig = spatial_domains_panel(coords, models, truth=truth, ncols=3)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 4  # the 6-cell grid's two unused axes are removed
    assert [ax.get_title() for ax in fig.axes] == ["manual annotation", "A", "B", "C"]
    assert all(len(ax.collections) == 1 for ax in fig.axes)
    path = tmp_path / "domains.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    plt.close(fig)


def test_bad_input(grid):
    coords, truth = grid
    with pytest.raises(ValueError, match="one domain per spot"):
        spatial_domains(coords, truth[:-1])
    with pytest.raises(ValueError, match=r"\(n_spots, 2\)"):
        spatial_domains(coords[:, 0], truth)
    bad = coords.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        spatial_domains(bad, truth)
    with pytest.raises(ValueError, match="Nothing to draw"):
        spatial_domains_panel(coords, {})


def test_match_domains_renames_without_changing_the_partition():
    from sklearn.metrics import adjusted_rand_score

    from skdance.plotting import match_domains

    truth = np.array(["L1", "L1", "L2", "L2", "L3", np.nan], dtype=object)
    labels = np.array([5, 5, 0, 0, 0, 9])
    renamed = match_domains(labels, truth)
    # cluster 5 -> L1, cluster 0 -> L2 (2 of its 3 spots), 9 (unannotated) keeps
    assert renamed.tolist() == ["L1", "L1", "L2", "L2", "L2", "9"]
    assert adjusted_rand_score(labels, renamed) == 1.0
    # an unpaired cluster whose own name is a layer's is renamed, not merged
    clash = match_domains(np.array(["L2", "L2", "x", "x", "y", "y"]), truth)
    assert clash.tolist() == ["L1", "L1", "L2", "L2", "L3", "L3"]
    spare = match_domains(np.array(["L2", "L2", "x", "x", "x", "L3"]), truth)
    assert spare.tolist() == ["L1", "L1", "L2", "L2", "L2", "cluster L3"]


def test_predicted_vs_measured_panels_and_png(tmp_path):
    from skdance.plotting import predicted_vs_measured

    rng = np.random.default_rng(0)
    Y = rng.normal(size=(40, 5))
    names = [f"p{i}" for i in range(5)]
    fig = predicted_vs_measured(
        Y, {"a": Y + 0.1, "b": np.zeros_like(Y) + 1.0}, names, features=["p1", "p3"]
    )
    assert len(fig.axes) == 4
    assert all(len(ax.collections) == 1 for ax in fig.axes)
    assert fig.axes[0].get_title().startswith("p1  r=1.00")
    path = tmp_path / "scatter.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    # default: the four most variable columns
    assert len(predicted_vs_measured(Y, {"a": Y}, names).axes) == 4
    with pytest.raises(ValueError, match="Unknown features"):
        predicted_vs_measured(Y, {"a": Y}, names, features=["CD4"])
    with pytest.raises(ValueError, match="shape"):
        predicted_vs_measured(Y, {"a": Y[:3]}, names)
    with pytest.raises(ValueError, match="names"):
        predicted_vs_measured(Y, {"a": Y}, names[:2])


def test_embedding_umaps_colours_types_and_batches(tmp_path):
    from skdance.plotting import embedding_umaps, umap_coordinates

    rng = np.random.default_rng(0)
    Z = np.r_[rng.normal(size=(30, 6)), rng.normal(size=(30, 6)) + 8.0]
    types = np.array(["T"] * 30 + ["B"] * 30)
    batches = np.array(["s1", "s2"] * 30)
    xy = umap_coordinates(Z, n_neighbors=10, random_state=0)
    assert xy.shape == (60, 2)
    # the two far-apart types stay apart in the layout
    gap = np.linalg.norm(xy[:30].mean(0) - xy[30:].mean(0))
    assert gap > 3 * max(xy[:30].std(0).max(), xy[30:].std(0).max())
    fig = embedding_umaps(
        {"a": Z, "b": Z[:, ::-1]}, types, batches, layouts={"a": xy, "b": xy}
    )
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]
    # one colour per type in the top row, per batch in the bottom row
    top = fig.axes[0].collections[0].get_facecolors()
    bottom = fig.axes[2].collections[0].get_facecolors()
    assert len({tuple(c) for c in top}) == 2 and len({tuple(c) for c in bottom}) == 2
    path = tmp_path / "umap.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="rows for"):
        embedding_umaps({"a": Z[:10]}, types)
    with pytest.raises(ValueError, match="batches"):
        embedding_umaps({"a": Z}, types, batches[:5], layouts={"a": xy})
    with pytest.raises(ValueError, match="NaN"):
        umap_coordinates(np.full((10, 3), np.nan))


def test_min_dist_spreads_the_layout_and_reaches_embedding_umaps():
    from skdance.plotting import embedding_umaps, umap_coordinates

    rng = np.random.default_rng(0)
    Z = np.r_[rng.normal(size=(30, 6)), rng.normal(size=(30, 6)) + 8.0]

    def spread(xy):  # mean distance of a group's cells to its centre
        return np.mean(
            [np.linalg.norm(g - g.mean(0), axis=1).mean() for g in (xy[:30], xy[30:])]
        )

    tight = umap_coordinates(Z, n_neighbors=10, min_dist=0.1, random_state=0)
    loose = umap_coordinates(Z, n_neighbors=10, min_dist=0.9, random_state=0)
    # a larger minimum distance between points spreads each group out
    assert spread(loose) > spread(tight)
    # embedding_umaps computes its layouts with the same min_dist
    fig = embedding_umaps({"a": Z}, ["T"] * 30 + ["B"] * 30, min_dist=0.9)
    drawn = fig.axes[0].collections[0].get_offsets()
    expected = umap_coordinates(Z, min_dist=0.9, random_state=0)
    np.testing.assert_allclose(drawn, expected)


def test_embedding_umaps_legend_and_distinct_colours_for_many_types(tmp_path):
    from matplotlib.colors import to_hex

    from skdance.plotting import embedding_umaps

    rng = np.random.default_rng(0)
    n_types = 41
    types = np.array([f"type {i}" for i in range(n_types)] * 3)
    batches = np.array(["s1", "s2", "s3"] * n_types)
    xy = rng.normal(size=(types.size, 2))
    fig = embedding_umaps(
        {"a": xy, "b": xy}, types, batches, layouts={"a": xy, "b": xy}
    )
    legend = fig.axes[1].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert sorted(labels) == sorted(set(types))
    # no two cell types share a colour, in the legend or on the panels
    handle_colours = {to_hex(h.get_color()) for h in legend.legend_handles}
    assert len(handle_colours) == n_types
    points = fig.axes[0].collections[0].get_facecolors()
    assert len({to_hex(c) for c in points}) == n_types
    # the long legend is split into columns, readable and outside the panel
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 7
    fig.savefig(tmp_path / "umap.png")
    renderer = fig.canvas.get_renderer()
    lefts = {round(t.get_window_extent(renderer).x0) for t in legend.get_texts()}
    assert len(lefts) > 1
    legend_box = legend.get_window_extent(renderer)
    assert legend_box.x0 >= fig.axes[1].get_window_extent(renderer).x1
    assert legend_box.x1 <= fig.bbox.x1
    assert len(fig.axes[3].get_legend().get_texts()) == 3
