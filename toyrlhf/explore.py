"""Exact compounding-error curves fast enough to follow a slider, and the slider itself.

The tour and the compounding-error notebook let a student move the per-step error ε, the
horizon T and the Lane's slip probability and watch the exact gaps of two learners move
(the BC-like and DAgger-like learners of
:mod:`toyrlhf.experiments.compounding_error_exact`):

    from toyrlhf import explore
    explore.gap_curves(0.01, 0.1, 200)        # GapCurves: exact gaps on Trap and Lane, every horizon
    explore.gap_figure(0.01, 0.1, 200)        # the same as a figure (the static picture)
    explore.gap_slider()                      # sliders for ε, T and slip (Jupyter with ipywidgets)

One compiled program serves every slider position: it always computes ``T_MAX`` horizons
(the gap for horizon ``T'`` is the partial sum over the first ``T'`` steps) and ε and slip
are traced values, so moving a slider costs milliseconds, not a compilation. Without a
widget frontend (a static page, a terminal) :func:`gap_slider` shows the static figure at
the initial values instead.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import tabular
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments.compounding_error_exact import error_injection_learners, stationary_expert

T_MAX = 400
"""The longest horizon the curves cover (the slider's range)."""
LANE_HALF_WIDTH = 5


class GapCurves(NamedTuple):
    """Exact gaps ``J_T(expert) - J_T(learner)`` for every horizon ``T = 1 .. T_MAX``."""

    trap_bc: jax.Array
    """``[T_MAX]`` Trap, BC-like learner (on Trap the DAgger-like learner is the same)."""
    lane_bc: jax.Array
    """``[T_MAX]`` Lane with slip, BC-like learner (default action off the expert's states)."""
    lane_dagger: jax.Array
    """``[T_MAX]`` Lane with slip, DAgger-like learner (errs everywhere, else follows the expert)."""


def _lane_with_slip(slip: jax.Array) -> tabular.TabularMDP:
    """The Lane of :func:`toyrlhf.envs.toy_mdps.lane` with a traced slip (its P is linear in slip)."""
    intended = toy_mdps.lane(T_MAX, LANE_HALF_WIDTH, 0.0)
    P0 = intended.P
    P = (1.0 - slip) * P0 + slip * P0.mean(axis=1, keepdims=True)
    return tabular.TabularMDP(P, P[:, :, LANE_HALF_WIDTH], intended.init, T_MAX)


def _gap(mdp: tabular.TabularMDP, expert: jax.Array, learner: jax.Array) -> jax.Array:
    return jnp.cumsum(tabular.reward_per_step(mdp, expert) - tabular.reward_per_step(mdp, learner))


@jax.jit
def _curves(epsilon: jax.Array, slip: jax.Array) -> GapCurves:
    trap = toy_mdps.trap(T_MAX)
    trap_expert = stationary_expert(trap)
    trap_bc, _ = error_injection_learners(trap, trap_expert, epsilon)
    lane = _lane_with_slip(slip)
    lane_expert = stationary_expert(toy_mdps.lane(T_MAX, LANE_HALF_WIDTH, 0.0))  # walks back to the centre
    lane_bc, lane_dagger = error_injection_learners(lane, lane_expert, epsilon)
    return GapCurves(
        _gap(trap, trap_expert, trap_bc), _gap(lane, lane_expert, lane_bc), _gap(lane, lane_expert, lane_dagger)
    )


def gap_curves(epsilon: float, slip: float = 0.0, horizon: int = T_MAX) -> GapCurves:
    """Exact gaps for horizons ``1 .. horizon`` at per-step error ``epsilon`` and Lane slip ``slip``."""
    for name, value in (("epsilon", epsilon), ("slip", slip)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    if epsilon == 0:
        raise ValueError("epsilon must be above 0: with no error there is no gap to show")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= T_MAX:
        raise ValueError(f"horizon must be an int in [1, {T_MAX}], got {horizon!r}")
    curves = _curves(jnp.float64(epsilon), jnp.float64(slip))
    return GapCurves(*(np.asarray(c)[:horizon] for c in curves))


def gap_figure(epsilon: float = 0.01, slip: float = 0.0, horizon: int = 200, ax=None):
    """Draw :func:`gap_curves` on log-log axes with the εT and εT²/2 references; returns the figure."""
    import matplotlib.pyplot as plt

    curves = gap_curves(epsilon, slip, horizon)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
    else:
        fig = ax.figure
    T = np.arange(1, horizon + 1)
    ax.loglog(T, curves.trap_bc, label="Trap: BC-like (= DAgger-like)")
    ax.loglog(T, curves.lane_bc, label=f"Lane (slip {slip:g}): BC-like")
    ax.loglog(T, curves.lane_dagger, label=f"Lane (slip {slip:g}): DAgger-like")
    ax.loglog(T, epsilon * T**2 / 2, "k:", lw=1, label="εT²/2")
    ax.loglog(T, epsilon * T, "k--", lw=1, label="εT")
    ax.set_xlabel("horizon T")
    ax.set_ylabel("exact gap J(expert) − J(learner)")
    ax.set_title(f"per-step error ε = {epsilon:g}")
    ax.set_ylim(max(epsilon / 10, 1e-6), horizon * 1.5)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def gap_slider(epsilon: float = 0.01, slip: float = 0.0, horizon: int = 200):
    """Sliders for ε, T and slip that redraw :func:`gap_figure`; returns the widget box.

    The sliders need a live Jupyter kernel with a widget frontend; a saved notebook or a web page
    shows no figure from them, so show :func:`gap_figure` next to the sliders as the static picture.
    Without ipywidgets installed it says so and returns None.
    """
    import matplotlib.pyplot as plt

    gap_curves(epsilon, slip, horizon)  # the same checks of the initial values
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:
        print('The sliders need ipywidgets: pip install "toyrlhf[notebooks]"; the static figure shows the same.')
        return None
    eps_slider = widgets.FloatLogSlider(value=epsilon, base=10, min=-4, max=-0.5, step=0.05, description="ε",
                                        readout_format=".4f")
    horizon_slider = widgets.IntSlider(value=horizon, min=2, max=T_MAX, step=1, description="T")
    slip_slider = widgets.FloatSlider(value=slip, min=0.0, max=0.9, step=0.05, description="slip")
    out = widgets.interactive_output(
        lambda epsilon, horizon, slip: (gap_figure(epsilon, slip, horizon), plt.show()),
        {"epsilon": eps_slider, "horizon": horizon_slider, "slip": slip_slider},
    )
    box = widgets.VBox([widgets.HBox([eps_slider, horizon_slider, slip_slider]), out])
    display(box)
    return box
