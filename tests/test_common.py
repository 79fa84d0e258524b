"""The verdict rule, criteria, the runner's refusals, and files written and read back."""

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import pytest

from toyrlhf.experiments import common
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED, UNDETERMINED, Criterion, decide


@pytest.mark.parametrize(
    "interval, region, verdict",
    [
        ((1.8, 2.0), (1.7, 2.1), SUPPORTED),
        ((1.78, 2.56), (1.7, 2.1), UNDETERMINED),  # the point estimate 2.02 lies inside: not enough
        ((2.2, 2.5), (1.7, 2.1), NOT_SUPPORTED),
        ((0.0, 0.5), (0.8, math.inf), NOT_SUPPORTED),
        ((0.9, 3.0), (0.8, math.inf), SUPPORTED),
        ((-math.inf, math.inf), (0.0, math.inf), UNDETERMINED),  # too few seeds to bootstrap
        ((math.nan, 1.0), (0.0, 2.0), UNDETERMINED),
        ((2.1, 2.1), (1.7, 2.1), SUPPORTED),  # the region is closed
    ],
)
def test_decide_on_the_whole_interval(interval, region, verdict):
    assert decide(interval, region) == verdict


def test_criterion_line_and_bad_input():
    c = Criterion("x in [0, 1]", 0.5, (-0.5, 1.5), (0.0, 1.0), to_decide="more seeds")
    assert c.verdict == UNDETERMINED and not c.supported
    assert c.line().startswith("UNDETERMINED: x in [0, 1]") and "to decide: more seeds" in c.line()
    assert Criterion("exact", 0.5, None, (0.0, 1.0), "check").verdict == SUPPORTED
    assert Criterion("exact", 1.5, None, (0.0, 1.0), "check").verdict == NOT_SUPPORTED
    with pytest.raises(ValueError, match="kind"):
        Criterion("x", 0.5, None, (0.0, 1.0), "claim")
    with pytest.raises(ValueError, match="region"):
        Criterion("x", 0.5, None, (1.0, 0.0))
    with pytest.raises(ValueError, match="interval"):
        decide((2.0, 1.0), (0.0, 1.0))


class _Inner(NamedTuple):
    a: np.ndarray


class _Output(NamedTuple):
    x: np.ndarray
    inner: _Inner


@dataclasses.dataclass(frozen=True)
class _Config:
    n: int = 3
    rates: tuple[float, ...] = (0.1, 1.0)
    limit: float = math.inf
    flag: bool = False
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(n=2)


class _Module:
    """A minimal experiment, to test the runner without compiling anything."""

    NAME = "toy"
    CLAIM = "none"
    Config = _Config
    Output = _Output

    def __init__(self, x):
        self.x = x

    def compute(self, config, clock=None):
        return _Output(x=self.x, inner=_Inner(a=np.arange(config.n)))

    def criteria(self, config, output):
        return [Criterion("x mean >= 0", float(output.x.mean()), (0.0, 1.0), (0.0, math.inf))]

    def checks(self, config, output):
        return [Criterion("n", float(config.n), None, (1, 10), "check")]

    def plot(self, config, output):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(output.x)
        return fig


def test_runner_refuses_nonfinite_output_naming_the_field():
    with pytest.raises(FloatingPointError, match="x"):
        common.run_experiment(_Module(np.array([0.0, np.nan])), quick=True)
    with pytest.raises(TypeError, match="Config"):
        common.run_experiment(_Module(np.zeros(2)), config=object())


def test_write_then_load_round_trips_config_and_output(tmp_path):
    module = _Module(np.array([0.25, 0.5]))
    config = _Config(n=4, rates=(0.5,), limit=math.inf, flag=True)
    result = common.run_experiment(module, config)
    paths = common.write_result(result, tmp_path)
    assert [p.suffix for p in paths] == [".npz", ".png", ".pdf", ".json"]
    loaded_config, output, summary = common.load_result(module, tmp_path)
    assert loaded_config == config
    np.testing.assert_array_equal(output.x, module.x)
    np.testing.assert_array_equal(output.inner.a, np.arange(4))
    assert summary["criteria"][0]["verdict"] == SUPPORTED and summary["checks"][0]["kind"] == "check"


def test_config_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="nope"):
        common.config_from_dict(_Config, {"nope": 1})


def test_loading_an_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        common.load_arrays(path)


def test_writing_an_object_array_is_refused(tmp_path):
    module = _Module(np.array([None, 1], dtype=object))
    result = common.ExperimentResult("toy", "c", _Config(), _Output(module.x, _Inner(np.zeros(1))), [], [], None, {})
    with pytest.raises(TypeError, match="object"):
        common.write_result(result, tmp_path)


def test_loading_a_file_that_is_not_an_npz_says_so(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_text("not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        common.load_arrays(path)
