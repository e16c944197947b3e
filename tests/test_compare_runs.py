"""scripts/compare_runs.py: the check that a refactor moved no metric."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_runs.py"
spec = importlib.util.spec_from_file_location("compare_runs", SCRIPT)
compare_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_runs)


def test_differences_name_changed_missing_and_tolerated_rows():
    a = {("npo", "forget", "rouge"): 0.5, ("npo", "summary", "forget_quality"): math.nan, ("retain", "x", "y"): None}
    b = {("npo", "forget", "rouge"): 0.5 + 1e-9, ("npo", "summary", "forget_quality"): math.nan, ("npo", "new", "m"): 1.0}
    diff = compare_runs.differences(a, b, tol=0.0)
    assert diff == ["('npo', 'new', 'm'): only in the second run", "('retain', 'x', 'y'): only in the first run",
                    "('npo', 'forget', 'rouge'): 0.5 vs 0.500000001"]
    assert compare_runs.differences(a, b, tol=1e-6)[2:] == []
