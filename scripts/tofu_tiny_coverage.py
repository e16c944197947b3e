"""Share of real TOFU examples the tiny model sees whole: train the tiny model's tokenizer on TOFU's text (as
the runner does), encode every QA of `full` and the evaluation splits in the model's prompt format, and count
those that fit `max_length` (training: prompt + answer + EOS; generation: prompt + `max_new_tokens`).

    python scripts/tofu_tiny_coverage.py ../shared/data/tofu --vocab 1024 2048 --max-length 128 256
"""
from __future__ import annotations

import argparse
from pathlib import Path

from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
from unlearn_bench.benchmarks.tofu.config import TofuConfig
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.models.tiny import train_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--vocab", type=int, nargs="+", default=[1024])
    parser.add_argument("--max-length", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--max-new-tokens", type=int, default=200)
    args = parser.parse_args()
    bench = TofuBenchmark(TofuConfig(data_dir=str(args.data_dir), eval_max_examples=None))
    data = bench.data()
    evals = [qa for split in bench.eval_splits().values() for qa in split]
    fmt = PromptFormat("plain")
    print("| vocab | tokens/QA (full, mean / max) | max_length | train QA whole | eval prompt + answer whole |")
    print("|---|---|---|---|---|")
    for vocab in args.vocab:
        tok = train_tokenizer(data.tokenizer_corpus, vocab)
        train = [len(tok(fmt.prompt(q.question, tok) + fmt.answer_prefix() + q.answer)["input_ids"]) + 1 for q in data.target_train]
        ev = [len(tok(fmt.prompt(q.question, tok) + fmt.answer_prefix() + q.answer)["input_ids"]) + 1 for q in evals]
        for max_length in args.max_length:
            share = sum(n <= max_length for n in train) / len(train)
            share_eval = sum(n <= max_length for n in ev) / len(ev)
            print(f"| {vocab} | {sum(train) / len(train):.1f} / {max(train)} | {max_length} | {share:.1%} | {share_eval:.1%} |")


if __name__ == "__main__":
    main()
