"""Sequential unlearning: the forget set split into K requests, unlearned one after another from the fine-tuned
model, each request starting from the previous result; the bench's metrics after every request.

MUSE's sustainability criterion (Shi et al. 2024, "MUSE: Machine unlearning six-way evaluation for language
models", arXiv:2407.06460, swj0419/muse_bench) unlearns successive forget batches and tracks utility after
each; TOFU-style forget metrics after each request show whether earlier requests stay forgotten. Rows have
the split `diag/sequential/request_<k>`, one per metric named in `metrics` (`<split>_<metric>`, or the bare
name for `summary` metrics, as in TOFU's summary keys).

Every method runs on equal terms: a fine-tuning method is a fresh method object per request, trained on the
previous request's weights; an inference-time method is one object fitted request after request (a retrieval
guard's index and an in-context pool grow, an assistant trains on), its wrapper over the unchanged fine-tuned
weights scored after each. The claim that a retrieval guard handles request after request at no cost to utility
(each request only grows its index) is then measured beside methods that change the weights every time.
"""
from __future__ import annotations

import dataclasses
import logging

from unlearn_bench.diagnostics.settings import SequentialConfig
from unlearn_bench.training import recipes
from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.diagnostics.common import DiagInputs
from unlearn_bench.methods.base import is_inference_time
from unlearn_bench.models import loading

log = logging.getLogger(__name__)


def split_requests(n: int, k: int) -> list[range]:
    """k contiguous, near-equal index ranges covering 0..n-1 (contiguous keeps an author's questions together
    where the bench lists them by author)."""
    if not 1 <= k <= n:
        raise ValueError(f"eval.diag.sequential.requests={k} must be in 1..{n} (the forget set's size)")
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def requests(inputs: DiagInputs, cfg: SequentialConfig) -> list[range]:
    """The bench's own requests where it defines them (MUSE sust folds), else `cfg.requests` equal parts."""
    sizes = inputs.bench.request_sizes() if hasattr(inputs.bench, "request_sizes") else None
    if not sizes:
        return split_requests(len(inputs.data.forget), cfg.requests)
    if sum(sizes) != len(inputs.data.forget):
        raise ValueError(f"the bench's requests cover {sum(sizes)} forget items, the forget set has {len(inputs.data.forget)}")
    bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def metric_name(m: Metric) -> str:
    return m.metric if m.split == "summary" else f"{m.split}_{m.metric}"


def run(inputs: DiagInputs, cfg: SequentialConfig) -> list[Metric]:
    run_cfg, data = inputs.cfg, inputs.data
    model = loading.load_saved(inputs.model_dirs["finetuned"], run_cfg.model)
    out: list[Metric] = []
    method = inputs.new_method()
    for k, idx in enumerate(requests(inputs, cfg), start=1):
        if k > 1 and not is_inference_time(method):
            method = inputs.new_method()
        request = dataclasses.replace(
            data, forget=[data.forget[i] for i in idx],
            forget_perturbed=[data.forget_perturbed[i] for i in idx] if data.forget_perturbed else [],
            generated_alternates=[data.generated_alternates[i] for i in idx] if data.generated_alternates else [])
        result = recipes.unlearn(model, inputs.tokenizer, method, run_cfg.method, request, inputs.fmt,
                                run_cfg.model.max_length, run_cfg.seed, inputs.accelerator)
        if result.status != "ok":
            log.warning("sequential unlearning diverged at request %d (%s): later requests skipped", k, result.message)
            break
        model = inputs.accelerator.unwrap_model(model)
        evaluated = inputs.bench.evaluate(inputs.lm(model, recipes.inference_wrapper(method, model, inputs.tokenizer)),
                                          inputs.evals["retain"].reference_data)
        found = {metric_name(m): m for m in evaluated.metrics}
        missing = [name for name in cfg.metrics if name not in found]
        if missing:
            raise ValueError(f"eval.diag.sequential.metrics: {missing} not among the bench's metrics {sorted(found)}")
        out += [Metric(f"diag/sequential/request_{k}", name, found[name].value, found[name].higher_is_better)
                        for name in cfg.metrics]
    return out
