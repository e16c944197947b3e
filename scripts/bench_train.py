"""Training-loop throughput of the embedded default vs this machine's measured matmul peak.

Prints, side by side in one run: the matmul peak (GFLOP/s of a large fp32 matmul, the best the loop could
hope for), the loop's achieved GFLOP/s (6 x parameters x tokens per second, the usual dense-transformer
estimate), and their ratio; then the same steps as the loop ran them before its two savings (every position
projected onto the vocabulary, every example re-tokenized each epoch) and the speed-up; and the time with
batches grouped by length. Usage: python scripts/bench_train.py [--steps 70] [--batch-size 32] [--hidden-size 128 --layers 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark
from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
from unlearn_bench.data.batching import finetune_epochs
from unlearn_bench.data.collate import PromptFormat, collate
from unlearn_bench.data.records import iter_chunks
from unlearn_bench.runtime.device import make_accelerator
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, batch_nll, forward_logits, shifted_token_nll
from unlearn_bench.models.tiny import build_tiny_model, train_tokenizer
from unlearn_bench.training.loop import train
from unlearn_bench.training.settings import OptimSettings


def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=70, help="70: one epoch of the world at batch 32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=128, help="the embedded default's width")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()

    data = FictitiousBenchmark(FictitiousConfig()).data()
    tokenizer = train_tokenizer(data.tokenizer_corpus, 1024)
    fmt = PromptFormat("plain")
    examples = data.target_train

    def model():
        torch.manual_seed(0)
        return build_tiny_model(tokenizer, hidden_size=args.hidden_size, num_layers=args.layers,
                                intermediate_size=round(args.hidden_size * 2.6875))

    def before(epoch):  # re-tokenized every epoch, shuffled without grouping
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(epoch)).tolist()
        return (UnlearnBatch(collate([examples[i] for i in idx], tokenizer, fmt, 128)) for idx in iter_chunks(order, args.batch_size))

    def every_position(m, b):
        nll, mask = shifted_token_nll(forward_logits(m, b.forget), b.forget.labels)
        return LossOutput(nll.sum() / mask.sum())

    settings = OptimSettings(lr=1e-3, epochs=1, max_steps=args.steps, batch_size=args.batch_size)
    ours = finetune_epochs(examples, tokenizer, fmt, 128, args.batch_size, seed=0)
    grouped = finetune_epochs(examples, tokenizer, fmt, 128, args.batch_size, seed=0, group_by_length=True)
    answer_loss = lambda m, b: LossOutput(batch_nll(m, b.forget))  # noqa: E731
    peak = matmul_peak()
    timings = {}
    for name, loss, batches in [("ours", answer_loss, ours), ("before", every_position, before),
                                ("grouped", answer_loss, grouped)]:
        net = model()
        tokens = sum(int(b.forget.attention_mask.sum()) for b, _ in zip(batches(0), range(args.steps)))
        start = time.perf_counter()
        train(net, loss, batches, 10**6, settings, make_accelerator(cpu=True))
        timings[name] = (time.perf_counter() - start, tokens)
    n_params = sum(p.numel() for p in model().parameters())
    seconds, tokens = timings["ours"]
    achieved = 6 * n_params * tokens / seconds / 1e9
    print(f"threads={torch.get_num_threads()} params={n_params/1e6:.2f}M steps={args.steps} batch={args.batch_size}")
    print(f"tokens/s          {tokens / seconds:10.0f}")
    print(f"matmul peak       {peak:10.1f} GFLOP/s")
    print(f"training loop     {achieved:10.1f} GFLOP/s")
    print(f"loop / peak       {achieved / peak:10.2f}")
    print(f"steps/s ours {args.steps / seconds:.2f}, before {args.steps / timings['before'][0]:.2f}: "
          f"speed-up {timings['before'][0] / seconds:.2f}x")
    print(f"with group_by_length (off by default, see conf/model/tiny.yaml): {timings['grouped'][0] / seconds:.2f}x ours' time")


if __name__ == "__main__":
    main()
