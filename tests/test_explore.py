"""The slider's exact curves agree with the compounding-error experiment's exact computation."""

import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (float64)
from toyrlhf import explore
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments import compounding_error_exact as cee


@pytest.mark.parametrize("slip", [0.0, 0.3])
def test_lane_curves_with_a_traced_slip_match_the_lane_built_with_that_slip(slip):
    horizon, eps = 60, 0.02
    curves = explore.gap_curves(eps, slip, horizon)
    lane = toy_mdps.lane(explore.T_MAX, explore.LANE_HALF_WIDTH, slip)
    expert = cee.stationary_expert(toy_mdps.lane(explore.T_MAX, explore.LANE_HALF_WIDTH, 0.0))
    gaps, _ = cee.gaps_and_errors(lane, expert, jnp.array([eps]))  # [1, 2 learners, T]
    np.testing.assert_allclose(curves.lane_bc, np.asarray(gaps[0, 0, :horizon]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(curves.lane_dagger, np.asarray(gaps[0, 1, :horizon]), rtol=1e-10, atol=1e-12)
    assert curves.lane_bc.shape == (horizon,)


def test_trap_curve_is_ross_and_bagnells_closed_form():
    curves = explore.gap_curves(0.01, 0.0, 300)
    np.testing.assert_allclose(curves.trap_bc, cee.trap_closed_form(0.01, np.arange(1, 301)), rtol=1e-10)


def test_on_a_recoverable_lane_the_bc_like_gap_outgrows_the_dagger_like_gap():
    curves = explore.gap_curves(0.01, 0.0, 400)
    assert curves.lane_bc[-1] > 10 * curves.lane_dagger[-1]  # εT²-like against εT-like


def test_bad_slider_values_are_refused():
    for kwargs, match in (({"epsilon": 0.0}, "above 0"), ({"epsilon": 1.5}, "epsilon"), ({"epsilon": 0.1, "slip": -1},
                          "slip"), ({"epsilon": 0.1, "horizon": explore.T_MAX + 1}, "horizon")):
        with pytest.raises(ValueError, match=match):
            explore.gap_curves(**kwargs)


def test_figure_and_sliders_build():
    import matplotlib.pyplot as plt

    fig = explore.gap_figure(0.01, 0.2, 50)
    assert len(fig.axes[0].lines) == 5
    box = explore.gap_slider(0.01, 0.2, 50)
    assert box is not None and len(box.children) == 2
    plt.close("all")
