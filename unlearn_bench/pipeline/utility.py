"""General-capability rows attached to any run: `eval.utility.tasks` (lm-eval names, e.g. [mmlu]) scored on every
evaluated model (fine-tuned target, retain reference, unlearned model), in memory through
`unlearn_bench.evaluation.lm_eval.evaluate_tasks`; offline with `eval.utility.data_dir` (a folder holding
`mmlu/test`, `mmlu/dev` and/or `wmdp/`, as `unlearn_bench.benchmarks.wmdp.data` describes)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.evaluation.lm_eval import evaluate_tasks

SPLIT = "utility"


def utility_metrics(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, eval_cfg: Any,
                    wrapper: InferenceWrapper | None = None) -> list[Metric]:
    """One row per task (and group) and metric, e.g. `mmlu/acc`, higher is better; none when no task is set.
    An inference-time method's `wrapper` applies to every lm-eval request."""
    ucfg = eval_cfg.utility
    if not ucfg.tasks:
        return []
    rows = evaluate_tasks(
        model, tokenizer, list(ucfg.tasks),
        data_dir=str(Path(ucfg.data_dir).expanduser()) if ucfg.data_dir else None,
        batch_size=eval_cfg.batch_size, limit=ucfg.limit, num_fewshot=ucfg.num_fewshot, wrapper=wrapper,
    )
    return [Metric(SPLIT, f"{r['task']}/{r['metric']}", r["value"], True) for r in rows]
