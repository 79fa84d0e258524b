"""Over-optimisation experiment: functional-form fits by hand, and the exact proxy-monotonicity property."""

import numpy as np
import pytest

from toyrlhf.experiments import overoptimization as oo


def test_fit_form_recovers_known_coefficients():
    d = np.linspace(0.1, 3.0, 30)
    for kind in ("bon", "rl"):
        y = oo.form(d, 1.3, 0.4, kind)
        alpha, beta = oo.fit_form(d, y, kind)
        assert alpha == pytest.approx(1.3) and beta == pytest.approx(0.4)
    np.testing.assert_allclose(oo.form(np.array([2.0]), 1.0, 0.5, "bon"), [0.0])  # 2 (1 - 0.5·2)


def test_peak_and_drop_by_hand():
    gold = np.array([[0.0, 2.0, 1.0], [0.0, 4.0, 1.0]])
    peak, drops, se = oo.misspecified_drop(gold)
    assert peak == 1 and np.allclose(drops, [1.0, 3.0]) and se == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))
    assert oo.peak_ratio(gold) == pytest.approx(1.0 / 3.0)


def test_quick_run_structure_and_exact_monotone_proxy():
    result = oo.run(quick=True, seeds=3)
    assert len(result.criteria) == 5
    assert result.criteria[0].supported  # E_{π_β}[r̂] rises with 1/β and E[max of n] with n: exact facts
    for tag in ("bon", "tilted"):
        assert result.arrays[f"gold_{tag}"].shape[:3] == (2, 3, 2)  # gold rewards, seeds, models
        assert np.all(np.diff(result.arrays[f"proxy_{tag}"], axis=-1) >= -1e-9)
    assert result.measurements["resources_per_seed"]["preference_labels"] == 3000
