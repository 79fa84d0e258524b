"""The command line and the exact compounding-error experiment it reproduces."""

import json

import numpy as np
import pytest

from toyrlhf import cli, experiments
from toyrlhf.experiments import compounding_error_exact as cee
from toyrlhf.experiments.common import load_arrays


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    assert cli.main(["run", cee.NAME, "--quick", "--out", str(out), "--quiet"]) == 0
    return out


def test_list_names_every_registered_experiment(capsys):
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out
    for name in experiments.registry():
        assert name in printed


def test_unknown_experiment_is_a_clear_error(capsys):
    assert cli.main(["run", "no-such-experiment", "--quick"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", cee.NAME, "--seeds", "0"])


def test_run_writes_arrays_summary_and_figures(quick_run):
    for ext in ("npz", "json", "png", "pdf"):
        assert (quick_run / f"{cee.NAME}.{ext}").stat().st_size > 0
    summary = json.loads((quick_run / f"{cee.NAME}.json").read_text())
    assert summary["config"]["quick"] is True
    assert len(summary["criteria"]) == 7
    for c in summary["criteria"]:
        assert c["verdict"] in ("SUPPORTED", "NOT SUPPORTED")
        assert c["verdict"] in c["line"]
    assert summary["timings"]["compile_s"] > 0
    arrays = load_arrays(quick_run / f"{cee.NAME}.npz")
    assert arrays["gap"].shape == (4, 3, 2, 512)


def test_exact_gaps_match_theory(quick_run):
    arrays = load_arrays(quick_run / f"{cee.NAME}.npz")
    summary = json.loads((quick_run / f"{cee.NAME}.json").read_text())
    names = summary["config"]["mdps"]
    gap, eps, T = arrays["gap"], arrays["epsilons"], arrays["horizons"]
    # Trap: the closed form, to 1e-9 relative (a theorem about the computation, not a finding).
    closed = cee.trap_closed_form(eps[:, None], T[None, :])
    np.testing.assert_allclose(gap[names.index("Trap"), :, 0], closed, rtol=1e-9)
    # Standard imitation: every mistake costs exactly one reward, so the gap is εT for both learners.
    std = names.index("Standard imitation")
    np.testing.assert_allclose(gap[std], (eps[:, None] * T[None, :])[:, None, :].repeat(2, 1), rtol=1e-9)
    # Ross & Bagnell's bound is a theorem: it must hold at every point.
    bound = next(c for c in summary["criteria"] if "Ross" in c["statement"])
    assert bound["supported"], bound["line"]


def test_reproduce_writes_a_report(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "MODULES", ("toyrlhf.experiments.compounding_error_exact",))
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert cee.NAME in report
    assert report.count("SUPPORTED") >= 7
