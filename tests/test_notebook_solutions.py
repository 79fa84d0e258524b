"""Every worked solution runs top to bottom in a fresh kernel (quick settings) and ends with its exercises.

Apart from tests/test_notebooks.py so that the two pytest-xdist processes share the notebooks' wait.
"""

import pytest
from notebook_runs import SOLUTIONS, check_runs_and_ends_with_exercises


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_runs_top_to_bottom_and_ends_with_exercises(path, tmp_path_factory, tmp_path):
    check_runs_and_ends_with_exercises(path, tmp_path_factory.mktemp("executed-solutions"), tmp_path)
