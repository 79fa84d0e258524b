"""The command line, the runner it drives, and the exact compounding-error experiment it reproduces."""

import json

import numpy as np
import pytest

from toyrlhf import cli, experiments
from toyrlhf.experiments import common
from toyrlhf.experiments import compounding_error_exact as cee
from toyrlhf.experiments.common import load_arrays


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    assert cli.main(["run", cee.NAME, "--quick", "--out", str(root), "--quiet"]) == 0
    return root


def test_list_names_every_registered_experiment(capsys):
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out
    for name in experiments.names():
        assert name in printed


def test_help_lists_experiments_and_version_is_printed(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert cee.NAME in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    import toyrlhf

    assert toyrlhf.__version__ in capsys.readouterr().out


def test_unknown_experiment_and_bad_settings_are_clear_errors(capsys):
    assert cli.main(["run", "no-such-experiment", "--quick"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", cee.NAME, "--seeds", "0"])
    assert cli.main(["run", cee.NAME, "--quick", "--set", "no_such_field=1"]) == 2
    err = capsys.readouterr().err
    assert "no_such_field" in err and "max_horizon" in err  # names the field and lists the real ones
    assert cli.main(["run", cee.NAME, "--quick", "--set", "max_horizon=ten"]) == 2
    assert "max_horizon=ten" in capsys.readouterr().err
    assert cli.main(["run", cee.NAME, "--quick", "--set", "primary_epsilon=0.5"]) == 2
    assert "primary_epsilon" in capsys.readouterr().err  # Config.__post_init__ rejects it
    assert cli.main(["run", cee.NAME, "--quick", "--seeds", "3"]) == 2  # an exact sweep has no seeds
    assert "n_seeds" in capsys.readouterr().err


def test_set_parses_each_field_type():
    config = cee.Config.quick()
    assert common.parse_override(config, "max_horizon=64").max_horizon == 64
    assert common.parse_override(config, "epsilons=0.001,0.1").epsilons == (0.001, 0.1)
    assert common.parse_override(config, "grid_map=four-rooms").grid_map == "four-rooms"
    with pytest.raises(ValueError, match="field=value"):
        common.parse_override(config, "max_horizon")


def test_run_writes_arrays_summary_figures_and_provenance(quick_run):
    folder = quick_run / "quick"
    for ext in ("npz", "json", "png", "pdf"):
        assert (folder / f"{cee.NAME}.{ext}").stat().st_size > 0
    assert not list(folder.glob(".*")), "no temporary files are left behind"
    summary = json.loads((folder / f"{cee.NAME}.json").read_text())
    assert summary["quick"] is True
    assert summary["config"] == common.config_to_dict(cee.Config.quick())
    assert [c["kind"] for c in summary["criteria"]] == ["finding"] * 3 + ["control"] * 2 + ["finding"] * 3
    assert [c["kind"] for c in summary["checks"]] == ["check"] * 4
    for c in summary["criteria"] + summary["checks"]:
        assert c["verdict"] == common.decide((c["measured"], c["measured"]), c["region"])
    assert summary["timings"]["compile_s"] > 0 and summary["timings"]["n_compiles"] == 1
    prov = summary["provenance"]
    assert prov["backend"] == "cpu" and prov["jax"] and prov["config"] == summary["config"]
    arrays = load_arrays(folder / f"{cee.NAME}.npz")
    assert arrays["gap"].shape == (4, 3, 2, 512)
    report = (quick_run / "REPORT.md").read_text()
    assert "**Findings**" in report and "**Controls**" in report and "**Checks**" in report
    assert "6 findings" in report  # checks and controls are not counted as findings


def test_exact_gaps_match_theory(quick_run):
    config, output, summary = common.load_result(cee, quick_run / "quick")
    gap, eps, T = output.gap, np.asarray(config.epsilons), np.arange(1, config.max_horizon + 1)
    # Trap: the closed form, to 1e-9 relative (a theorem about the computation, not a finding).
    closed = cee.trap_closed_form(eps[:, None], T[None, :])
    np.testing.assert_allclose(gap[cee.MDPS.index("Trap"), :, 0], closed, rtol=1e-9)
    # Standard imitation: every mistake costs exactly one reward, so the gap is εT for both learners.
    std = cee.MDPS.index("Standard imitation")
    np.testing.assert_allclose(gap[std], (eps[:, None] * T[None, :])[:, None, :].repeat(2, 1), rtol=1e-9)
    # Ross & Bagnell's bound is a theorem: below 1 at every T >= 2 (at T = 1 it is tight by definition).
    assert 0 < cee.bound_ratio(config, output) < 1
    assert all(c["verdict"] == "SUPPORTED" for c in summary["checks"])


def test_plot_redraws_from_saved_files_alone(quick_run, tmp_path, monkeypatch):
    def no_compute(*args, **kwargs):
        raise AssertionError("plot must not recompute")

    monkeypatch.setattr(cee, "compute", no_compute)
    assert cli.main(["plot", cee.NAME, "--from", str(quick_run / "quick"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / f"{cee.NAME}.png").stat().st_size > 10_000
    assert not list(tmp_path.glob("*-panel-*"))
    assert cli.main(["plot", cee.NAME, "--from", str(quick_run / "quick"), "--out", str(tmp_path), "--panels"]) == 0
    panels = sorted(tmp_path.glob(f"{cee.NAME}-panel-*.svg"))
    assert len(panels) >= 2 and len(list(tmp_path.glob(f"{cee.NAME}-panel-*.pdf"))) == len(panels)
    assert cli.main(["plot", cee.NAME, "--from", str(tmp_path / "empty")]) == 2


def test_criteria_on_null_data_are_not_supported():
    """A sweep where nothing compounds (every gap εT) must not support the compounding findings."""
    config = cee.Config.quick()
    T = np.arange(1, config.max_horizon + 1)
    eps = np.asarray(config.epsilons)
    linear = np.broadcast_to((eps[:, None] * T)[None, :, None, :], (4, len(eps), 2, len(T))).copy()
    null = cee.Output(gap=linear, mean_error=np.full_like(linear, 1e-3), reward_range=np.ones(4),
                      recoverability=np.ones(4))
    verdicts = {c.statement: c.verdict for c in cee.criteria(config, null)}
    assert verdicts["BC-like slope on Trap in [1.8, 2.05]"] == "NOT SUPPORTED"
    assert verdicts["BC-like slope on Lane in [1.8, 2.05]"] == "NOT SUPPORTED"
    flat = null._replace(gap=np.ones_like(linear))  # a gap that does not grow at all
    assert all(c.verdict != "SUPPORTED" for c in cee.criteria(config, flat))
    # The checks are not vacuous either: a gap that is not the Trap's closed form fails the first.
    assert [c.verdict for c in cee.checks(config, flat)][0] == "NOT SUPPORTED"


def test_reproduce_carries_on_past_a_failure_and_exits_nonzero(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "MODULES", ("toyrlhf.experiments.compounding_error_exact",))

    def broken(config, clock=None):
        raise RuntimeError("boom")

    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert cee.NAME in report and "SUPPORTED" in report
    monkeypatch.setattr(cee, "compute", broken)
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path / "b"), "--quiet"]) == 1
    assert "FAILED (RuntimeError: boom)" in (tmp_path / "b" / "REPORT.md").read_text()


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "toyrlhf", "list"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and cee.NAME in out.stdout
