"""Shared figure style, seed bands, log-log axes and gridworld drawings.

Every toyrlhf figure uses :func:`apply_style` (or the :func:`style` context): large
type for slides, the Okabe–Ito colour-blind-safe palette, no top/right spines,
editable text in PDFs. Curves over seeds use :func:`seed_band`: the mean with a
band of the Student-t 95% interval for the mean over the seed axis
(:func:`toyrlhf.stats.mean_and_interval`).

Gridworlds (:class:`toyrlhf.envs.gridworld.GridWorld`) are drawn cell by cell:
walls dark grey, goals green, lava vermillion, starts blue; the letters S, G, L
mark them on top of any heatmap::

    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    draw_values(axes[0], grid, sol.V[0])
    draw_policy(axes[1], grid, sol.policy[0])
    draw_visitation(axes[2], grid, visitation(grid.mdp, sol.policy))
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
from cycler import cycler
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle

from toyrlhf.envs.gridworld import MOVES, GridWorld
from toyrlhf.stats import mean_and_interval

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
"""Okabe & Ito (2008), colour-blind safe: blue, orange, bluish green, vermillion, reddish purple,
sky blue, yellow, black."""

CELL_COLOURS = {
    "floor": "#FFFFFF",
    "wall": "#3C3C3C",
    "start": "#56B4E9",
    "goal": "#009E73",
    "lava": "#D55E00",
}
"""Colours of gridworld cells (Okabe–Ito, matching the ``rgb_array`` rendering)."""

STYLE = {
    "figure.figsize": (6.4, 4.4),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "lines.linewidth": 2.0,
    "image.cmap": "viridis",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}
"""The rcParams every toyrlhf figure uses."""


def apply_style() -> None:
    """Set toyrlhf's figure style globally (matplotlib rcParams)."""
    mpl.rcParams.update(STYLE)


def style():
    """toyrlhf's figure style for a ``with`` block only: ``with style(): fig, ax = plt.subplots()``."""
    return mpl.rc_context(STYLE)


# ------------------------------------------------------------------------------------------
# Curves
# ------------------------------------------------------------------------------------------


def seed_band(ax, x, ys, label=None, color=None, alpha: float = 0.25, level: float = 0.95, **line_kwargs):
    """Plot the mean over seeds with its Student-t interval as a band; returns the mean line.

    Args:
        ax: matplotlib axes.
        x: ``[N]`` x values.
        ys: ``[n_seeds, N]`` one curve per seed (seeds on axis 0). With one seed no band is drawn.
        label, color: of the line (the band takes the line's colour).
        alpha: opacity of the band.
        level: coverage of the interval (t with ``n_seeds - 1`` degrees of freedom).
    """
    x = np.asarray(x, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {x.shape}")
    if ys.ndim != 2 or ys.shape[1] != x.shape[0]:
        raise ValueError(f"ys must have shape [n_seeds, len(x)] = [n_seeds, {x.shape[0]}], got {ys.shape}")
    if not np.all(np.isfinite(ys)):
        bad = np.argwhere(~np.isfinite(ys))[0].tolist()
        raise ValueError(
            f"ys has a non-finite value at [seed, point] = {bad}: report divergence rather than plot it"
        )
    mean, lo, hi = mean_and_interval(ys, axis=0, level=level)
    (line,) = ax.plot(x, mean, label=label, color=color, **line_kwargs)
    if ys.shape[0] > 1:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


def loglog_axes(ax, base: float = 10):
    """Log scales on both axes with major and minor grid lines; returns ``ax``."""
    ax.set_xscale("log", base=base)
    ax.set_yscale("log", base=base)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    return ax


def slope_guide(ax, x, y0: float, power: float, label: str | None = None, **kwargs):
    """A dotted guide ``y0 (x / x[0])^power`` (e.g. ∝ T and ∝ T² on a log-log plot); returns the line."""
    x = np.asarray(x, dtype=np.float64)
    kwargs = {"linestyle": ":", "color": "0.55", "linewidth": 1.2, **kwargs}
    (line,) = ax.plot(x, y0 * (x / x[0]) ** power, **kwargs)
    if label is not None:
        ax.annotate(label, (x[-1], y0 * (x[-1] / x[0]) ** power), color="0.35", fontsize=9)
    return line


# ------------------------------------------------------------------------------------------
# Gridworlds
# ------------------------------------------------------------------------------------------


def _check_grid(grid) -> None:
    if not isinstance(grid, GridWorld):
        raise TypeError(f"grid must be a GridWorld (from make_gridworld), got {type(grid).__name__}")


def _per_state(grid: GridWorld, name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (grid.n_states,):
        raise ValueError(f"{name} must have shape [S] = {(grid.n_states,)}, got {values.shape}")
    return values


def _cell_image(grid: GridWorld) -> np.ndarray:
    """``[H, W, 3]`` RGB of the cell types."""
    kinds = {".": "floor", "#": "wall", "S": "start", "G": "goal", "L": "lava"}
    return np.array([[to_rgb(CELL_COLOURS[kinds[ch]]) for ch in row] for row in grid.map])


def _frame(ax, grid: GridWorld) -> None:
    ax.set_xlim(-0.5, grid.width - 0.5)
    ax.set_ylim(grid.height - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)


def _mark_cells(ax, grid: GridWorld, outline: bool) -> None:
    """Letters S, G, L in their cells; with ``outline``, a coloured border too (over heatmaps)."""
    small = max(grid.height, grid.width) > 25
    for ch, kind in (("S", "start"), ("G", "goal"), ("L", "lava")):
        for r, c in np.argwhere(np.array([list(row) for row in grid.map]) == ch):
            if outline:
                edge = CELL_COLOURS[kind]
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=edge, linewidth=2))
            if not small:
                ax.text(c, r, ch, ha="center", va="center", fontsize=9, fontweight="bold", alpha=0.7)


def draw_grid(ax, grid: GridWorld):
    """The map alone: floor white, walls grey, start blue, goal green, lava vermillion."""
    _check_grid(grid)
    image = ax.imshow(_cell_image(grid), interpolation="nearest")
    _frame(ax, grid)
    _mark_cells(ax, grid, outline=False)
    return image


def _heatmap(ax, grid: GridWorld, values, cmap, colorbar, label, annotate, fmt, mask, **imshow_kwargs):
    """Cell colours underneath, the heatmap on top; NaN (walls, masked states) shows the cell colour."""
    cmap = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    cmap = cmap.with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    shown = np.where(mask, np.nan, values)
    ax.imshow(_cell_image(grid), interpolation="nearest")
    image = ax.imshow(grid.to_grid(shown), cmap=cmap, interpolation="nearest", **imshow_kwargs)
    _frame(ax, grid)
    _mark_cells(ax, grid, outline=True)
    if annotate is None:
        annotate = grid.height * grid.width <= 144
    if annotate:
        for s, (r, c) in enumerate(grid.coords):
            if mask[s]:
                continue
            shade = np.mean(image.cmap(image.norm(values[s]))[:3])
            colour = "black" if shade > 0.5 else "white"
            ax.text(c, r + 0.3, format(values[s], fmt), ha="center", va="center", fontsize=7, color=colour)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    return image


def draw_values(ax, grid: GridWorld, values, cmap="viridis", colorbar: bool = True, annotate=None,
                fmt: str = ".2f", mask_terminal: bool = False, label: str = "value", **imshow_kwargs):
    """Heatmap of per-state ``values[S]`` (e.g. ``solve(grid.mdp).V[0]``); returns the image.

    ``label`` names the colour bar: say what the numbers are when they are not values
    (a difference of visits, a learned reward). ``annotate`` writes each value in its cell
    (default: maps of at most 144 cells);
    ``mask_terminal`` leaves goal and lava cells in their own colour. Extra keywords
    (``vmin``, ``vmax``, ``norm``) go to ``imshow``.
    """
    _check_grid(grid)
    values = _per_state(grid, "values", values)
    mask = grid.terminal if mask_terminal else np.zeros(grid.n_states, dtype=bool)
    if not isinstance(label, str):
        raise TypeError(f"label must be a string (the colour bar's name), got {type(label).__name__}")
    return _heatmap(ax, grid, values, cmap, colorbar, label, annotate, fmt, mask, **imshow_kwargs)


def draw_visitation(ax, grid: GridWorld, d, cmap="magma", colorbar: bool = True, annotate=False,
                    fmt: str = ".2f", mask_terminal: bool = True, **imshow_kwargs):
    """Heatmap of state visitation: ``d[S]`` as given, or ``d[T, S]`` (from ``visitation``)
    summed over time, i.e. the expected number of visits to each state; returns the image.

    By default goal and lava cells keep their own colour (``mask_terminal``): time spent
    absorbed there would otherwise swamp the colour scale.
    """
    _check_grid(grid)
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 2:
        d = d.sum(axis=0)
        label = "expected visits"
    else:
        label = "visitation"
    d = _per_state(grid, "d", d)
    mask = grid.terminal if mask_terminal else np.zeros(grid.n_states, dtype=bool)
    return _heatmap(ax, grid, d, cmap, colorbar, label, annotate, fmt, mask, **imshow_kwargs)


def draw_policy(ax, grid: GridWorld, policy, t: int = 0, color: str = PALETTE[0], min_prob: float = 0.02):
    """Arrows from each non-terminal cell, one per action, length ∝ probability; returns the quiver.

    ``policy`` is ``[S, A]`` or time-indexed ``[T, S, A]`` (step ``t`` is drawn).
    Actions follow :data:`toyrlhf.envs.gridworld.ACTIONS`; a probability-1 arrow
    reaches 0.45 of the way to the next cell; arrows below ``min_prob`` are omitted.
    """
    _check_grid(grid)
    policy = np.asarray(policy, dtype=np.float64)
    if policy.ndim == 3:
        if not 0 <= t < policy.shape[0]:
            raise ValueError(f"t must lie in [0, {policy.shape[0]}) for a [T, S, A] policy, got {t}")
        policy = policy[t]
    A = len(MOVES)
    if policy.shape != (grid.n_states, A):
        raise ValueError(
            f"policy must have shape [S, A] = {(grid.n_states, A)} or [T, S, A], got {policy.shape}"
        )
    draw_grid(ax, grid)
    live = ~grid.terminal
    rows, cols = grid.coords[:, 0], grid.coords[:, 1]
    s_idx, a_idx = np.nonzero(live[:, None] & (policy >= min_prob))
    length = 0.45 * policy[s_idx, a_idx]
    dy, dx = MOVES[a_idx, 0] * length, MOVES[a_idx, 1] * length
    return ax.quiver(cols[s_idx], rows[s_idx], dx, dy, angles="xy", scale_units="xy", scale=1,
                     color=color, width=0.006, headwidth=3.5, headlength=3.5, headaxislength=3.0)


def draw_trajectory(ax, grid: GridWorld, states, actions=None, color: str = PALETTE[0], label: str | None = None):
    """A path through the cells of ``states [L]`` over the map, from a circle (first state) on.

    With ``actions [L]`` the last action is drawn as an arrow from the last state in its
    intended direction (:data:`toyrlhf.envs.gridworld.ACTIONS`): where it leads after a
    slip is not known from ``states`` alone. Returns the path's line.
    """
    _check_grid(grid)
    states = np.asarray(states, dtype=np.int64)
    if states.ndim != 1 or states.size == 0:
        raise ValueError(f"states must have shape [L] with L >= 1, got {states.shape}")
    if states.min() < 0 or states.max() >= grid.n_states:
        raise ValueError(f"states must lie in [0, {grid.n_states}), got values in [{states.min()}, {states.max()}]")
    draw_grid(ax, grid)
    rows, cols = grid.coords[states, 0], grid.coords[states, 1]
    (line,) = ax.plot(cols, rows, "-", color=color, lw=3, alpha=0.8, label=label)
    ax.plot(cols[0], rows[0], "o", color=color, ms=11, mfc="white", mew=3)
    if actions is not None:
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != states.shape:
            raise ValueError(f"actions must have the shape of states {states.shape}, got {actions.shape}")
        if actions.min() < 0 or actions.max() >= len(MOVES):
            raise ValueError(f"actions must lie in [0, {len(MOVES)}), got values in [{actions.min()}, {actions.max()}]")
        dy, dx = MOVES[actions[-1]] * 0.45
        ax.annotate("", xy=(cols[-1] + dx, rows[-1] + dy), xytext=(cols[-1], rows[-1]),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": 3})
    return line


def save_panels(figure, stem, formats=("svg", "pdf")) -> list:
    """Write each panel of ``figure`` to a file of its own: ``stem-panel-1.svg``, ``…-2.pdf``, …

    For slides and handouts that need one panel of a figure. A panel is an axes with its
    title, labels and tick labels, and its colour bar if it has one; colour bars are not
    panels of their own. Files are written atomically; returns their paths.
    """
    from pathlib import Path

    from matplotlib.transforms import Bbox

    from toyrlhf.files import atomic_write

    if isinstance(formats, str) or not formats or not all(f in ("svg", "pdf", "png") for f in formats):
        raise ValueError(f"formats must be a sequence of 'svg', 'pdf' or 'png', got {formats!r}")
    stem = Path(stem)
    renderer = figure.canvas.get_renderer()
    colorbar_axes = {id(a) for a in figure.axes if a.get_label() == "<colorbar>"}
    panels = [a for a in figure.axes if id(a) not in colorbar_axes and a.get_visible() and a.axison]
    paths = []
    shown = [a.get_visible() for a in figure.axes]
    try:
        for i, ax in enumerate(panels, start=1):
            own = [ax]
            for artist in (*ax.images, *ax.collections):
                bar = getattr(artist, "colorbar", None)  # set by figure.colorbar(artist)
                if bar is not None:
                    own.append(bar.ax)
            for a, visible in zip(figure.axes, shown):
                a.set_visible(visible)
            box = Bbox.union([a.get_tightbbox(renderer) for a in own])
            box = box.transformed(figure.dpi_scale_trans.inverted()).padded(0.05)
            for a in figure.axes:  # the other panels stay out of this file, not only out of its frame
                a.set_visible(any(a is b for b in own))
            for fmt in formats:
                path = stem.parent / f"{stem.name}-panel-{i}.{fmt}"
                paths.append(atomic_write(path, lambda tmp, f=fmt, b=box: figure.savefig(tmp, format=f, bbox_inches=b)))
    finally:
        for a, visible in zip(figure.axes, shown):
            a.set_visible(visible)
    return paths
