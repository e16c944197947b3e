"""Training scenarios run by tests/test_parallel.py in one process and, through torch.distributed env vars, in two:
`python scenarios.py OUT_DIR` writes each scenario's result from every rank."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from unlearn_bench.runtime.device import make_accelerator
from unlearn_bench.methods.base import Batch, LossOutput, UnlearnBatch
from unlearn_bench.training.loop import train
from unlearn_bench.training.settings import OptimSettings


class Item:
    def __init__(self, v: int):
        self.v = v

    def to(self, device):
        return self


def nan_on_rank_1(accelerator) -> list:
    """Micro-batch 3 (rank 1's in the second step at grad_accum 2) has a NaN loss."""
    def step(model, b):
        loss = model(torch.tensor([[1.0]])).sum() ** 2
        return LossOutput(loss * float("nan") if b.v == 3 else loss)

    result = train(torch.nn.Linear(1, 1), step, lambda e: [Item(i) for i in range(8)], 8,
                   OptimSettings(epochs=1, grad_accum=2, batch_size=1), accelerator)
    return [result.status, result.steps]


def ngdiff_weights(accelerator) -> torch.Tensor:
    """NGDiff (gradients from its own hook) on a tiny Llama for 3 steps of 2 micro-batches; the final weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from unlearn_bench.methods.ngdiff import NGDiff

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32))
    g = torch.Generator().manual_seed(1)

    def batch() -> Batch:
        ids = torch.randint(0, 64, (2, 8), generator=g)
        return Batch(ids, torch.ones_like(ids), ids.clone())

    batches = [UnlearnBatch(batch(), batch()) for _ in range(6)]
    method = NGDiff()
    result = train(model, lambda m, b: method.loss(m, b, None), lambda e: batches, 6,
                   OptimSettings(lr=1e-3, epochs=1, grad_accum=2, batch_size=2, warmup_ratio=0.0), accelerator,
                   backward=lambda m, b: method.backward(m, b, None))
    assert result.status == "ok" and result.steps == 3
    return torch.cat([p.detach().flatten() for p in model.parameters()])


if __name__ == "__main__":
    out = Path(sys.argv[1])
    acc = make_accelerator(cpu=True)
    rank = acc.process_index
    (out / f"nan-{rank}.json").write_text(json.dumps([acc.num_processes, *nan_on_rank_1(acc)]))
    torch.save(ngdiff_weights(acc), out / f"ngdiff-{rank}.pt")
