"""Answer-token counts of our Llama-2 TOFU encoding vs TOFU's published eval logs.

TOFU's logs (locuslab/tofu, `data/ft_epoch5_lr1e-05_llama2-7b_full_wd0.01/eval_results/ds_size300/*.json`) record,
per question, how many tokens its evaluation scored (`num_token_gt`, `num_token_paraphrased`, `num_token_perturb`:
`(labels != -100).sum(-1)` in its evaluate_util.py). Per-token losses, the truth ratio, forget quality and model
utility all depend on which tokens are scored, so this is the check that our encoding (`encode_example` with
`prompt_format=llama2`) scores TOFU's tokens. It prints the agreement per split and field, and which vocabulary the
tokenizer has (Meta's Llama-2 encodes "[INST]" as 518 25580 29962 after BOS).

    python scripts/tofu_token_counts.py --tokenizer <Llama-2 tokenizer dir> --logs <dir of TOFU's 4 eval logs> \
        --data ../shared/data/tofu
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from transformers import AutoTokenizer

from unlearn_bench.benchmarks.tofu.data import load_tofu_split
from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import QA
from unlearn_bench.methods.base import IGNORE_INDEX

LLAMA2_INST = [1, 518, 25580, 29962]  # "[INST]" under Meta's Llama-2 tokenizer.model
# split: (TOFU log file, TOFU split of the records, field of the paraphrased answer)
SPLITS = {
    "forget10": ("eval_log_forget.json", "forget10_perturbed", "paraphrased_answer"),
    "retain": ("eval_log.json", "retain_perturbed", "paraphrased_answer"),
    "real_authors": ("eval_real_author_wo_options.json", "real_authors_perturbed", "answer"),
    "world_facts": ("eval_real_world_wo_options.json", "world_facts_perturbed", "answer"),
}


def scored_tokens(tokenizer, question: str, answer: str) -> int:
    _, labels = encode_example(QA(question, answer), tokenizer, PromptFormat("llama2"), None)
    return sum(label != IGNORE_INDEX for label in labels)


def agreement(tokenizer, log: dict, records: list[dict], paraphrase_key: str) -> dict[str, tuple[int, int]]:
    """(agreeing, total) per field; the logs are keyed by the record's index in the split."""
    out = {"gt": [0, 0], "paraphrased": [0, 0], "perturbed": [0, 0], "all fields": [0, 0]}
    for key, logged_gt in log["num_token_gt"].items():
        rec = records[int(key)]
        pairs = [("gt", rec["answer"], logged_gt), ("paraphrased", rec[paraphrase_key], log["num_token_paraphrased"][key])]
        pairs += [("perturbed", a, n) for a, n in zip(rec["perturbed_answer"], log["num_token_perturb"][key])]
        every = True
        for field, answer, logged in pairs:
            same = scored_tokens(tokenizer, rec["question"], answer) == logged
            out[field][0] += same
            out[field][1] += 1
            every &= same
        out["all fields"][0] += every
        out["all fields"][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--logs", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(str(args.tokenizer))
    inst = tokenizer("[INST]")["input_ids"]
    print(f"tokenizer {args.tokenizer}: '[INST]' -> {inst} ({'Llama-2' if inst == LLAMA2_INST else 'NOT Llama-2'}'s vocabulary)")
    for split, (log_file, records_split, paraphrase_key) in SPLITS.items():
        log = json.loads((args.logs / log_file).read_text(encoding="utf-8"))
        counts = agreement(tokenizer, log, load_tofu_split(records_split, args.data), paraphrase_key)
        print(f"{split:13s} " + "  ".join(f"{k} {a}/{n}" for k, (a, n) in counts.items()))


if __name__ == "__main__":
    main()
