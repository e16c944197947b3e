"""RMU: representation misdirection for unlearning.

Li, Pan, Gopal, Yue, ... & Hendrycks 2024, "The WMDP benchmark: Measuring and reducing malicious use with
unlearning". Follows the authors' rmu/unlearn.py (github.com/centerforaisafety/wmdp) and open-unlearning's RMU
(src/trainer/unlearn/rmu.py): at decoder layer L,
    forget = mse(h_model(forget), c * u)          u: a fixed random unit vector (torch.rand, normalised; seeded)
    retain = mse(h_model(retain), h_frozen(retain))
    loss   = forget + alpha * retain
with the MSE averaged over the hidden dimension and over answer tokens (labels != -100) as open-unlearning does, and
only the MLP down-projections of layers L-2..L updated (the `trainable_parameters` hook; `setup` freezes the rest,
`finalize` unfreezes it). Hidden states come from a forward hook on the decoder layer: the residual stream after L.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import F, torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import IGNORE_INDEX, Batch, LossOutput, UnlearnBatch

WMDP_RELATIVE_DEPTH = 7 / 32  # WMDP's layer 7 of Zephyr-7B's 32


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder blocks of a Llama-style HF causal LM (`model.model.layers`; DDP and peft wrappers are unwrapped)."""
    if not hasattr(model, "model") and hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):  # a peft (LoRA) wrapper
        model = model.get_base_model()
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"RMU needs a Llama-style model with model.model.layers; got {type(model).__name__}")
    return layers


def layer_output(model: torch.nn.Module, batch: Batch, layer: int) -> torch.Tensor:
    """Hidden states [B, T, D] output by decoder layer `layer`, captured with a forward hook."""
    captured: list[torch.Tensor] = []

    def hook(module, inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    finally:
        handle.remove()
    return captured[0]


def activation_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per token mean squared difference over the hidden dim, averaged over masked tokens, then over the batch
    (open-unlearning's `compute_activation_loss`)."""
    per_token = F.mse_loss(a.float(), b.float(), reduction="none").mean(-1)
    per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.mean()


@dataclass
class RMU:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = True
    alternate: ClassVar[str | None] = None

    layer: int | None = None                    # decoder layer L; None = WMDP's relative depth (7/32), <= L-2; <0 counts from the end
    trainable_layers: list[int] | None = None   # layers whose mlp.down_proj is trained; None = L-2..L
    steering_coeff: float = 6.5                 # c
    alpha: float = 1200.0                       # retain weight
    seed: int = 0                               # for the random control vector

    def resolve_layer(self, model: torch.nn.Module) -> int:
        n = len(decoder_layers(model))
        if self.layer is None:
            # An intermediate representation, as WMDP's layer 7 of 32: never the last block, whose output is the
            # model's output (on a 2-layer model that leaves layer 0, the residual stream between the blocks).
            if n < 2:
                raise ValueError(f"RMU steers an intermediate layer: a model with {n} layer(s) has none")
            return min(n - 2, round(n * WMDP_RELATIVE_DEPTH))
        index = self.layer + n if self.layer < 0 else self.layer
        if not 0 <= index < n:
            raise ValueError(f"RMU layer {self.layer} out of range for a model with {n} layers")
        return index

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        layers = decoder_layers(model)
        n = len(layers)
        if self.trainable_layers is None:
            top = self.resolve_layer(model)
            indices = list(range(max(0, top - 2), top + 1))
        else:
            indices = [i + n if i < 0 else i for i in self.trainable_layers]
            bad = [i for i in self.trainable_layers if not -n <= i < n]
            if bad:
                raise ValueError(f"RMU trainable_layers {bad} out of range for a model with {n} layers")
        return [layers[i].mlp.down_proj.weight for i in indices]

    def setup(self, model: torch.nn.Module, reference: torch.nn.Module | None) -> None:
        """Freeze everything but the trainable parameters, so backward skips the rest (as open-unlearning's RMU)."""
        keep = {id(p) for p in self.trainable_parameters(model)}
        self._frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in keep]
        for p in self._frozen:
            p.requires_grad_(False)

    def finalize(self, model: torch.nn.Module, reference: torch.nn.Module | None) -> None:
        for p in getattr(self, "_frozen", []):
            p.requires_grad_(True)
        self._frozen = []

    def control_vector(self, dim: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """c * u, u = uniform[0,1)^dim normalised to unit length (as WMDP's get_control_vector), fixed by `seed`."""
        generator = torch.Generator().manual_seed(self.seed)
        u = torch.rand(dim, generator=generator)
        return (u / u.norm() * self.steering_coeff).to(device=device, dtype=dtype)

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        layer = self.resolve_layer(model)
        h_forget = layer_output(model, batch.forget, layer)
        target = self.control_vector(h_forget.size(-1), device=h_forget.device, dtype=h_forget.dtype).expand_as(h_forget)
        forget = activation_mse(h_forget, target, batch.forget.labels != IGNORE_INDEX)
        total, components = forget, {"forget_mse": forget.item()}
        if batch.retain is not None and self.alpha != 0:
            if reference is None:
                raise ValueError("RMU needs a reference model for its retain term")
            h_retain = layer_output(model, batch.retain, layer)
            with torch.no_grad():
                h_frozen = layer_output(reference, batch.retain, layer)
            retain = activation_mse(h_retain, h_frozen, batch.retain.labels != IGNORE_INDEX)
            total = total + self.alpha * retain
            components["retain_mse"] = retain.item()
        return LossOutput(total, components)


METHOD = RMU
