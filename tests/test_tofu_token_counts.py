"""scripts/tofu_token_counts.py: our Llama-2 TOFU encoding against the answer-token counts in TOFU's published
eval logs. A log made with TOFU's own formula checks the script's bookkeeping; with Meta's Llama-2 tokenizer and
TOFU's logs of the full and retain90 models (../shared, or UNLEARN_BENCH_LLAMA2_TOKENIZER / UNLEARN_BENCH_TOFU_LOGS)
every count must agree: 817 questions, 3,651 perturbed answers each."""
from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path

import pytest

from conftest import SHARED_DATA, shared_tokenizer
from test_real_tokenizers import tofu_scored_ids
from unlearn_bench.benchmarks.tofu.data import load_tofu_split

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tofu_token_counts.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("tofu_token_counts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_log_made_by_tofus_formula_agrees_and_one_changed_count_is_found(script):
    tokenizer = shared_tokenizer("llama2")
    path = SHARED_DATA / "tofu" / "forget10_perturbed.json"
    if not path.is_file():
        pytest.skip(f"{path} not present: real records live beside the repo, not in it")
    records = load_tofu_split("forget10_perturbed", path.parent)[:5]

    def count(rec, answer):
        return len(tofu_scored_ids(tokenizer, rec["question"], answer, "[INST] ", " [/INST]", ""))

    log = {"num_token_gt": {str(i): count(r, r["answer"]) for i, r in enumerate(records)},
           "num_token_paraphrased": {str(i): count(r, r["paraphrased_answer"]) for i, r in enumerate(records)},
           "num_token_perturb": {str(i): [count(r, a) for a in r["perturbed_answer"]] for i, r in enumerate(records)}}
    assert script.agreement(tokenizer, log, records, "paraphrased_answer") == {
        "gt": (5, 5), "paraphrased": (5, 5), "perturbed": (25, 25), "all fields": (5, 5)}
    changed = copy.deepcopy(log)
    changed["num_token_perturb"]["3"][2] += 1
    assert script.agreement(tokenizer, changed, records, "paraphrased_answer") == {
        "gt": (5, 5), "paraphrased": (5, 5), "perturbed": (24, 25), "all fields": (4, 5)}


@pytest.mark.parametrize("model", ["llama2-7b_full", "llama2-7b_retain90"])
def test_every_logged_count_agrees_with_metas_llama2_tokenizer(script, model):
    # ../shared holds Meta's Llama-2 tokenizer and TOFU's published logs (locuslab/tofu
    # data/ft_epoch5_lr1e-05_llama2-7b_{full,retain90}_wd0.01/eval_results/ds_size300); the variables point elsewhere.
    import json

    from transformers import AutoTokenizer

    tokenizer_dir = os.environ.get("UNLEARN_BENCH_LLAMA2_TOKENIZER")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir) if tokenizer_dir else shared_tokenizer("llama2")
    logs = Path(os.environ.get("UNLEARN_BENCH_TOFU_LOGS", SHARED_DATA / "tofu_eval_logs" / model))
    if not ((logs / "eval_log_forget.json").is_file() and (SHARED_DATA / "tofu").is_dir()):
        pytest.skip(f"{logs} or {SHARED_DATA / 'tofu'} not present: TOFU's logs and records live beside the repo")
    assert tokenizer("[INST]")["input_ids"] == script.LLAMA2_INST
    for split, (log_file, records_split, key) in script.SPLITS.items():
        log = json.loads((logs / log_file).read_text(encoding="utf-8"))
        counts = script.agreement(tokenizer, log, load_tofu_split(records_split, SHARED_DATA / "tofu"), key)
        assert all(agree == total for agree, total in counts.values()), (split, counts)
        assert counts["all fields"][1] == len(log["num_token_gt"]) > 0, split
