"""Plotting helpers draw what they claim: band widths, arrow vectors, heatmap cells."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.envs.gridworld import make_gridworld
from toyrlhf.plotting import (
    PALETTE,
    STYLE,
    apply_style,
    draw_policy,
    draw_values,
    draw_visitation,
    loglog_axes,
    seed_band,
    style,
)


@pytest.fixture(scope="module")
def grid():
    return make_gridworld(["S.#", "..L", "#.G"], slip=0.1, step_cost=0.01, horizon=6)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_style_uses_the_colour_blind_safe_palette():
    with style():
        assert [c.lower() for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]] == [c.lower() for c in PALETTE]
    apply_style()
    assert plt.rcParams["font.size"] == STYLE["font.size"] and plt.rcParams["pdf.fonttype"] == 42


def test_seed_band_is_the_student_t_interval_of_the_mean(ax):
    ys = np.array([[0.0, 1.0, 4.0], [2.0, 3.0, 4.0], [4.0, 5.0, 4.0]])  # 3 seeds, 3 points
    line = seed_band(ax, [1, 2, 3], ys, label="demo")
    np.testing.assert_allclose(line.get_ydata(), [2.0, 3.0, 4.0])
    band = ax.collections[0].get_paths()[0].vertices
    half = 4.302652729911275 * 2.0 / np.sqrt(3)  # t_{0.975, 2 df} from tables, sample std 2, 3 seeds
    assert band[:, 1].max() == pytest.approx(3.0 + half)
    assert band[:, 1].min() == pytest.approx(2.0 - half)
    assert np.any(np.isclose(band[:, 1], 4.0))


def test_seed_band_rejects_wrong_shapes_and_nan(ax):
    with pytest.raises(ValueError, match="ys must have shape"):
        seed_band(ax, [1, 2, 3], np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"non-finite value at \[seed, point\] = \[1, 0\]"):
        seed_band(ax, [1, 2], np.array([[1.0, 2.0], [np.nan, 1.0]]))


def test_loglog_axes(ax):
    loglog_axes(ax)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_draw_values_places_each_state_in_its_cell(grid, ax):
    values = np.arange(grid.n_states, dtype=float)
    image = draw_values(ax, grid, values, annotate=True)
    data = np.ma.filled(image.get_array(), np.nan)
    np.testing.assert_array_equal(np.isnan(data), grid.state_index < 0)
    np.testing.assert_array_equal(data[grid.coords[:, 0], grid.coords[:, 1]], values)
    shown = {t.get_text() for t in ax.texts}
    assert {"S", "G", "L"} <= shown and "6.00" in shown


def test_draw_visitation_sums_over_time_and_masks_terminal_cells(grid, ax):
    policy = np.full((grid.n_states, 4), 0.25)
    d = np.asarray(tabular.visitation(grid.mdp, policy))
    image = draw_visitation(ax, grid, d)
    data = np.ma.filled(image.get_array(), np.nan)
    live = ~grid.terminal
    rows, cols = grid.coords[live, 0], grid.coords[live, 1]
    np.testing.assert_allclose(data[rows, cols], d.sum(0)[live])
    assert np.all(np.isnan(data[grid.coords[grid.terminal, 0], grid.coords[grid.terminal, 1]]))


def test_draw_policy_arrow_lengths_are_proportional_to_probabilities(grid, ax):
    policy = np.zeros((grid.n_states, 4))
    policy[:, 2] = 1.0  # right everywhere ...
    s0 = grid.state_at(0, 0)
    policy[s0] = [0.0, 0.25, 0.75, 0.0]  # ... except the start: down 1/4, right 3/4
    quiver = draw_policy(ax, grid, policy)
    offsets, u, v = quiver.get_offsets(), np.asarray(quiver.U), np.asarray(quiver.V)
    n_live = int((~grid.terminal).sum())
    assert len(offsets) == n_live + 1  # one arrow per live state, two at the start
    at_start = np.all(offsets == [0, 0], axis=1)
    arrows = sorted(zip(u[at_start], v[at_start], strict=True))
    np.testing.assert_allclose(arrows, [(0.0, 0.45 * 0.25), (0.45 * 0.75, 0.0)])
    others = ~at_start
    np.testing.assert_allclose(u[others], 0.45)
    np.testing.assert_allclose(v[others], 0.0)


def test_draw_policy_checks_its_input(grid, ax):
    with pytest.raises(ValueError, match="policy must have shape"):
        draw_policy(ax, grid, np.zeros((grid.n_states, 3)))
    with pytest.raises(TypeError, match="GridWorld"):
        draw_policy(ax, grid.mdp, np.zeros((grid.n_states, 4)))
    time_indexed = np.zeros((6, grid.n_states, 4))
    time_indexed[:, :, 1] = 1.0
    quiver = draw_policy(ax, grid, time_indexed, t=5)
    np.testing.assert_allclose(np.asarray(quiver.V), 0.45)  # 'down' is +1 row


def test_save_panels_writes_each_panel_with_its_own_colour_bar(grid, tmp_path):
    from toyrlhf.plotting import save_panels

    with plt.rc_context({"svg.fonttype": "none"}):  # text stays text, so the test can read it
        fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
        draw_values(left, grid, np.arange(grid.n_states, dtype=float), label="visits: learner − expert")
        right.plot([0, 1], [1, 0])
        right.set_title("a curve")
        paths = save_panels(fig, tmp_path / "fig")
        plt.close(fig)
    names = sorted(p.name for p in paths)
    assert names == ["fig-panel-1.pdf", "fig-panel-1.svg", "fig-panel-2.pdf", "fig-panel-2.svg"]
    first, second = (tmp_path / "fig-panel-1.svg").read_text(), (tmp_path / "fig-panel-2.svg").read_text()
    assert "visits: learner − expert" in first and "a curve" not in first  # the colour bar travels with its panel
    assert "a curve" in second and "visits" not in second
    with pytest.raises(ValueError, match="formats"):
        save_panels(fig, tmp_path / "fig", formats="svg")
    with pytest.raises(TypeError, match="label"):
        draw_values(left, grid, np.zeros(grid.n_states), label=3)
