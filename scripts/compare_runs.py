"""Do two run folders hold the same metrics? Rows are matched by (method, split, metric); the `cost` rows (wall
times) are left out. Exits 1 naming the first rows that differ by more than `--tol`, or that one side lacks.

    python scripts/compare_runs.py results/fictitious/tiny/npo/<run id> /elsewhere/results/fictitious/tiny/npo/<run id>

Used to show that a change which should not move any number (a file move, a refactor) moves none: run the
embedded default before and after, then compare.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from unlearn_bench.store.resume import read_metric_rows


def keyed(run_dir: Path) -> dict[tuple[str, str, str], float | None]:
    return {(r.method, r.split, r.metric): r.value for r in read_metric_rows(run_dir / "metrics.jsonl")
            if r.split != "cost"}


def differences(a: dict, b: dict, tol: float) -> list[str]:
    out = [f"{k}: only in the {'first' if k in a else 'second'} run" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        same = (x is None and y is None) or (x is not None and y is not None and
                                             ((math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol))
        if not same:
            out.append(f"{k}: {x} vs {y}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--tol", type=float, default=0.0, help="largest absolute difference counted as equal (default: exact)")
    args = parser.parse_args(argv)
    a, b = keyed(args.first), keyed(args.second)
    diff = differences(a, b, args.tol)
    print(f"{len(a)} and {len(b)} metric rows (cost rows left out); {len(diff)} differ")
    for line in diff[:20]:
        print("  " + line)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
