"""`method=none`: no fine-tuning and no unlearning; `model.path` is evaluated as it is.

For scoring a model trained elsewhere (open-unlearning's released TOFU checkpoints, one's own unlearned model)
with this harness's metrics: `model.path` is the model under test, `model.retain_path` the retain reference that
forget quality and PrivLeak compare against. The runner never calls `loss`; its rows carry intent `none`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch


@dataclass
class EvaluateAsIs:
    intent: ClassVar[str] = "none"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None
    evaluates_as_is: ClassVar[bool] = True  # the runner skips both training stages

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        raise RuntimeError("method=none trains nothing: the runner evaluates model.path as is")


METHOD = EvaluateAsIs
