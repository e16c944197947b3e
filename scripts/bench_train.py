"""Training-loop throughput of the embedded default vs this machine's measured matmul peak.

Prints, side by side in one run: the matmul peak (GFLOP/s of a large fp32 matmul, the best the loop could
hope for), the loop's achieved GFLOP/s (6 x parameters x tokens per second, the usual dense-transformer
estimate), and their ratio. Usage: python scripts/bench_train.py [--steps 30] [--batch-size 32] [--hidden-size 128 --layers 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark, FictitiousConfig
from unlearn_bench.data.batching import finetune_epochs
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.device import make_accelerator
from unlearn_bench.methods.base import LossOutput, batch_nll
from unlearn_bench.models.tiny import build_tiny_model, train_tokenizer
from unlearn_bench.training import OptimSettings, train


def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=128, help="the embedded default's width")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()

    data = FictitiousBenchmark(FictitiousConfig()).data()
    tokenizer = train_tokenizer(data.tokenizer_corpus, 1024)
    model = build_tiny_model(tokenizer, hidden_size=args.hidden_size, num_layers=args.layers,
                             intermediate_size=round(args.hidden_size * 2.6875))
    fmt = PromptFormat("plain")
    batches = finetune_epochs(data.target_train, tokenizer, fmt, 128, args.batch_size, seed=0)
    tokens = sum(int(b.forget.attention_mask.sum()) for b, _ in zip(batches(0), range(args.steps)))
    n_params = sum(p.numel() for p in model.parameters())

    peak = matmul_peak()
    start = time.perf_counter()
    train(model, lambda m, b: LossOutput(batch_nll(m, b.forget)), batches, 10**6,
          OptimSettings(lr=1e-3, epochs=1, max_steps=args.steps, batch_size=args.batch_size), make_accelerator(cpu=True))
    seconds = time.perf_counter() - start
    achieved = 6 * n_params * tokens / seconds / 1e9
    print(f"threads={torch.get_num_threads()} params={n_params/1e6:.2f}M steps={args.steps} batch={args.batch_size}")
    print(f"tokens/s          {tokens / seconds:10.0f}")
    print(f"matmul peak       {peak:10.1f} GFLOP/s")
    print(f"training loop     {achieved:10.1f} GFLOP/s")
    print(f"loop / peak       {achieved / peak:10.2f}")


if __name__ == "__main__":
    main()
