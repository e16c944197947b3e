"""Speed target of the TOFU-family evaluator: batched `LM.answer_losses` + `LM.generate` against a naive loop
(one forward per answer, one `generate` per prompt, as a per-example evaluator would run), on a real TOFU split.

Checks they agree (losses to 1e-4, identical greedy text), prints the speed ratio (target >= 5x at batch 32 on
CPU) and the peak size of the logits the output layer returns (scoring holds one block of scored positions).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_eval.py --data-dir ../shared/data/tofu
    .venv/bin/python scripts/bench_eval.py --threads 2 --tokenizer ../shared/tokenizers/llama2  # a real vocabulary
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from unlearn_bench.benchmarks.tofu.data import load_tofu_split, split_path, to_eval_qa, to_qa
from unlearn_bench.config import FinetuneConfig
from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import QA, EvalQA
from unlearn_bench.runtime.device import make_accelerator, seed_everything
from unlearn_bench.evaluation.lm import HEAD_ROWS, LM
from unlearn_bench.methods.base import IGNORE_INDEX
from unlearn_bench.models.tiny import build_tiny_model, train_tokenizer
from unlearn_bench.training.recipes import finetune

REPO = Path(__file__).resolve().parents[1]


class LogitsMeter:
    """Largest logits tensor the output layer returned (bytes), via a forward hook on it: scoring calls that
    layer itself, on blocks of scored positions (evaluation/lm.py HEAD_ROWS), generation and the naive loop
    through the model."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.peak = 0
        model.get_output_embeddings().register_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.peak = max(self.peak, output.numel() * output.element_size())


def naive_losses(lm: LM, pairs: list[QA]) -> list[float]:
    """One unpadded forward per answer: per-token mean NLL of the answer tokens."""
    out = []
    with torch.inference_mode():
        for qa in pairs:
            ids, labels = encode_example(qa, lm.tokenizer, lm.fmt, lm.max_length)
            logits = lm.model(input_ids=torch.tensor([ids])).logits[0, :-1]
            out.append(F.cross_entropy(logits, torch.tensor(labels[1:]), ignore_index=IGNORE_INDEX).item())
    return out


def naive_generate(lm: LM, questions: list[str], max_new_tokens: int) -> list[str]:
    """One unpadded greedy `generate` per prompt."""
    out = []
    with torch.inference_mode():
        for q in questions:
            prompt = torch.tensor([lm.fmt.prompt_ids(q, lm.tokenizer)])
            gen = lm.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens,
                                    do_sample=False, num_beams=1, pad_token_id=lm.pad_id,
                                    eos_token_id=lm.tokenizer.eos_token_id, use_cache=True)
            out.append(lm.tokenizer.decode(gen[0, prompt.shape[1]:], skip_special_tokens=True).strip())
    return out


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def pairs_of(examples: list[EvalQA]) -> list[QA]:
    """Every answer TOFU scores: true, paraphrased, perturbed (what `score_splits` batches)."""
    out = []
    for ex in examples:
        out += [QA(ex.question, a) for a in (ex.answer, ex.paraphrased_answer, *ex.perturbed_answers) if a is not None]
    return out


def tiny_model(data_dir: Path, corpus: list[str], finetune_steps: int, tokenizer_dir: Path | None):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir) if tokenizer_dir else train_tokenizer(corpus, vocab_size=1024)
    model = build_tiny_model(tokenizer, max_position_embeddings=512)  # conf/model/tiny.yaml architecture
    if finetune_steps:  # a little on forget01, so greedy answers end at EOS at various lengths
        forget = to_qa(load_tofu_split("forget01", data_dir), split_path("forget01", data_dir))
        cfg = FinetuneConfig(lr=3e-3, epochs=0, max_steps=finetune_steps, batch_size=8, warmup_ratio=0.0, weight_decay=0.0)
        finetune(model, tokenizer, forget, PromptFormat("plain"), cfg, 256, 0, make_accelerator(cpu=True), desc="finetune")
    return model.eval(), tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "tofu")
    ap.add_argument("--split", default="forget10_perturbed")
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=200, help="TOFU's generation length")
    ap.add_argument("--finetune-steps", type=int, default=40, help="0 evaluates a random model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokenizer", type=Path, help="a saved tokenizer (e.g. ../shared/tokenizers/llama2: a real "
                    "model's vocabulary, whose output layer dominates); default a 1,024-token one trained on the split")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(0)

    path = split_path(args.split, args.data_dir)
    examples = to_eval_qa(load_tofu_split(args.split, args.data_dir), path, expect_perturbed=None)[: args.examples]
    pairs, questions = pairs_of(examples), [ex.question for ex in examples]
    model, tokenizer = tiny_model(args.data_dir, [f"{p.question} {p.answer}" for p in pairs], args.finetune_steps, args.tokenizer)
    meter = LogitsMeter(model)
    lm = LM(model, tokenizer, PromptFormat("plain"), max_length=512, batch_size=args.batch_size)
    print(f"{args.split}: {len(examples)} questions, {len(pairs)} answers scored, vocabulary {len(tokenizer)}, "
          f"max_new_tokens={args.max_new_tokens}, "
          f"batch {args.batch_size}, {torch.get_num_threads()} thread(s)")

    lm.answer_losses(pairs[:1]), lm.generate(questions[:1], max_new_tokens=2)  # warm-up: one-time costs off the clock
    meter.peak = 0
    fast_losses, t_fast_loss = timed(lambda: lm.answer_losses(pairs))
    peak_loss_logits = meter.peak
    fast_text, t_fast_gen = timed(lambda: lm.generate(questions, max_new_tokens=args.max_new_tokens))
    slow_losses, t_slow_loss = timed(lambda: naive_losses(lm, pairs))
    slow_text, t_slow_gen = timed(lambda: naive_generate(lm, questions, args.max_new_tokens))

    max_diff = max(abs(a - b) for a, b in zip(fast_losses, slow_losses))
    mismatched = [i for i, (a, b) in enumerate(zip(fast_text, slow_text)) if a != b]
    n_tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in fast_text]
    print(f"losses: max |batched - naive| = {max_diff:.2e} (<= 1e-4: {max_diff <= 1e-4})")
    print(f"greedy text identical: {len(examples) - len(mismatched)}/{len(examples)}; generated tokens "
          f"min/mean/max {min(n_tokens)}/{sum(n_tokens) / len(n_tokens):.1f}/{max(n_tokens)}")
    for name, fast, slow in (("answer_losses", t_fast_loss, t_slow_loss), ("generate", t_fast_gen, t_slow_gen),
                             ("total", t_fast_loss + t_fast_gen, t_slow_loss + t_slow_gen)):
        print(f"{name:>13}: batched {fast:7.2f} s  naive {slow:7.2f} s  speed-up {slow / fast:5.1f}x")
    all_at_once = sum(len(encode_example(p, tokenizer, lm.fmt, lm.max_length)[0]) for p in pairs) * len(tokenizer) * 4
    print(f"peak logits held while scoring: {peak_loss_logits / 2**20:.1f} MiB (one block of {HEAD_ROWS} scored positions; "
          f"every answer's logits at once, unpadded, would be {all_at_once / 2**20:.1f} MiB); overall peak incl. "
          f"generation and the naive loop {meter.peak / 2**20:.1f} MiB")
    if max_diff > 1e-4 or mismatched:
        raise SystemExit(f"batched and naive evaluation disagree (examples {mismatched[:10]})")


if __name__ == "__main__":
    main()
