"""Run open-unlearning's own TOFU evaluator (its `src/eval.py`, unchanged) and time it per phase.

Runs under open-unlearning's Python (its venv), not ours: `scripts/bench_eval_vs_ou.py` starts it as
`$OU_VENV/bin/python scripts/ou_timed_eval.py <ou checkout> <timings.json> <hydra overrides...>`. Each metric
function open-unlearning calls (`UnlearningMetric.evaluate_metric`, src/evals/metrics/base.py; pre-computed
metrics included, each once) is timed and filed under the phase our evaluator's `cost/eval_<phase>_seconds`
rows use, so the two tools' phases compare one to one; `total` is the evaluator's whole wall time, dataset
loading and tokenization included.
"""
from __future__ import annotations

import json
import runpy
import sys
import time
from collections import defaultdict
from pathlib import Path

# open-unlearning's metric handlers (src/evals/metrics/__init__.py) -> our phase names (evaluation/cost.py)
PHASES = {
    "probability": "scoring", "probability_w_options": "scoring", "truth_ratio": "scoring",
    "rouge": "generation",
    "mia_loss": "mia", "mia_zlib": "mia", "mia_min_k": "mia", "mia_min_k_plus_plus": "mia",
    "extraction_strength": "memorization", "exact_memorization": "memorization",
}


def main() -> None:
    ou_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    sys.path.insert(0, str(ou_dir / "src"))
    from evals.base import Evaluator
    from evals.metrics.base import UnlearningMetric

    seconds: dict[str, float] = defaultdict(float)
    timed_metric, timed_suite = UnlearningMetric.evaluate_metric, Evaluator.evaluate

    def evaluate_metric(self, model, metric_name, **kwargs):
        start = time.perf_counter()
        try:
            return timed_metric(self, model, metric_name, **kwargs)
        finally:
            seconds[PHASES.get(self.name, "aggregate")] += time.perf_counter() - start

    def evaluate(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return timed_suite(self, *args, **kwargs)
        finally:
            seconds["total"] += time.perf_counter() - start

    UnlearningMetric.evaluate_metric, Evaluator.evaluate = evaluate_metric, evaluate
    script = ou_dir / "src" / "eval.py"
    sys.argv = [str(script), *sys.argv[3:]]
    runpy.run_path(str(script), run_name="__main__")  # as a script, so its @hydra.main finds ../configs beside it
    out.write_text(json.dumps(dict(seconds), indent=2) + "\n")


if __name__ == "__main__":
    main()
