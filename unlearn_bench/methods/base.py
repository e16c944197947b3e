"""What every unlearning method sees: batches in, a scalar loss (plus named components) out.

A method is a small dataclass whose fields are its hyperparameters, with:
  intent: ClassVar[str]            "removal" or "suppression": what the method is meant to achieve
  needs_reference: ClassVar[bool]  the runner builds one frozen copy of the starting model only if True
  alternate: ClassVar[str | None]  "refusal" / "perturbed": forget questions paired with other answers;
                                   "generated": answers the target model writes, from the method's
                                   generate_alternates(lm, forget) and generation_key() (altpo; the runner
                                   generates them once per target and caches them)
  needs_retain: ClassVar[bool]     (optional) the method fails at start on a benchmark without retain data
  def loss(self, model, batch: UnlearnBatch, reference) -> LossOutput
and optional hooks (looked up with getattr, so methods define only what they use):
  def trainable_parameters(self, model) -> Iterable[nn.Parameter]   (default: all)
  def setup(self, model, reference) -> None                          (before the loop)
  def backward(self, model, batch, reference) -> LossOutput          (fills .grad itself instead of the
                                                                      loop calling loss().backward(); see ngdiff)
  def finalize(self, model, reference) -> None                       (after the loop; see task_negation)
State across steps lives on the method object; `batch.epoch` says which epoch a batch belongs to (see pdu).
Each method module exposes `METHOD = TheClass`; `unlearn_bench.methods.registry` finds them.

Inference-time methods leave the weights as they are and change what the evaluators see instead: the prompt
(input space), the logits (output space, e.g. a second model's logits subtracted) or both. Such a method has
  intent: ClassVar[str]                    "suppression": the weights still hold everything
  inference_time: ClassVar[bool] = True
  needs_reference = False, alternate = None (as above; the training loop does not run)
  def fit(self, model, tokenizer, data: BenchData, *, fmt, max_length, seed, accelerator, settings) -> None
      take one unlearning request (data.forget, data.retain, data.forget_perturbed): add it to an index or a
      context pool, or train an assistant model; never change `model`. Called again for every later request
      (sequential unlearning): requests accumulate. `settings` are the method config's OptimSettings (for an
      assistant trained with `training.train`).
  def wrapper(self, model, tokenizer) -> InferenceWrapper
      the prompt transform and/or logits hook (evaluation/wrapper.py) over what has been fitted so far.
  def question_metrics(self, splits: {split: [question]}) -> list[Metric]     (optional; rows about the
      evaluation questions themselves, e.g. a retrieval guard's hit rate per split; see rag_guard)
`training.recipes.unlearn` calls `fit` instead of the training loop (zero steps); the runner hands the wrapper to every
evaluation: the benchmark's `LM`, lm-eval utility and hazard tasks (`evaluation.lm_eval.WrappedHFLM`),
black-box diagnostics (`DiagInputs.lm()`) and the sequential diagnostic. Attacks that need the weights
(relearning, quantization, probes) hold the weights and so run them without the wrapper.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from unlearn_bench.runtime.lazy import F, torch  # imported on first use: composing a config needs no torch


IGNORE_INDEX = -100
KL_KINDS = ("kl", "kl_answer")  # every position (TOFU, open-unlearning) | answer tokens only


def is_inference_time(method: object) -> bool:
    """True for a method that wraps the model at inference instead of training it (see the module docstring)."""
    return bool(getattr(method, "inference_time", False))


@dataclass
class Batch:
    input_ids: torch.Tensor       # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    labels: torch.Tensor          # [B, T], IGNORE_INDEX on prompt and padding tokens

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


@dataclass
class UnlearnBatch:
    forget: Batch
    retain: Batch | None = None
    alternate: Batch | None = None  # forget questions with other answers (`alternate`), row-aligned with forget
    epoch: int = 0                  # the training epoch it belongs to (0-based; state such as PDU's dual variable)

    def to(self, device: torch.device | str) -> "UnlearnBatch":
        return UnlearnBatch(
            self.forget.to(device),
            self.retain.to(device) if self.retain is not None else None,
            self.alternate.to(device) if self.alternate is not None else None,
            self.epoch,
        )


@dataclass
class LossOutput:
    loss: torch.Tensor
    components: dict[str, float] = field(default_factory=dict)


def forward_logits(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits


def shifted_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL of next-token prediction, [B, T-1], and the mask of scored (answer) tokens."""
    logits = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    nll = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.clamp(min=0).reshape(-1), reduction="none"
    ).view(targets.shape)
    return nll * mask, mask


def logits_at(model: torch.nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
    """The logits of the positions `keep` (a 1-D index tensor), [B, K, V]: the model projects only those hidden
    states onto the vocabulary (transformers' `logits_to_keep`). A wrapper that prepends positions and passes
    `logits_to_keep` on shifts it past them (diagnostics/soft_prompt.py); one that ignores it, or a model class
    without it, returns every position, handled here."""
    try:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep).logits
    except TypeError as err:  # a model class without logits_to_keep: score every position
        if "logits_to_keep" not in str(err):
            raise
        logits = forward_logits(model, batch)
    return logits[:, keep] if logits.shape[1] != keep.numel() else logits


def answer_logits(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The float logits of the positions that predict an answer token in some row, [B, K, V], and their next-token
    targets, [B, K] (IGNORE_INDEX where that row predicts no answer token)."""
    targets = batch.labels[:, 1:]
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    return logits_at(model, batch, keep).float(), targets[:, keep]


def answer_token_nll(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """`shifted_token_nll` restricted to the positions that predict an answer token in some row, [B, K]
    (`answer_logits`). Losses that reduce over answer tokens are unchanged; on the embedded world, where answers are
    a quarter of the tokens, a training step is ~20% faster (scripts/bench_train.py)."""
    logits, targets = answer_logits(model, batch)
    mask = targets != IGNORE_INDEX
    nll = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.clamp(min=0).reshape(-1), reduction="none"
    ).view(targets.shape)
    return nll * mask, mask


def sequence_nll(model: torch.nn.Module, batch: Batch, *, mean: bool = False) -> torch.Tensor:
    """Summed (or per-token mean) NLL of the answer tokens of each sequence, [B]."""
    nll, mask = answer_token_nll(model, batch)
    total = nll.sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1) if mean else total


def batch_nll(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean NLL over all answer tokens of the batch (the usual causal-LM fine-tuning loss)."""
    nll, mask = answer_token_nll(model, batch)
    return nll.sum() / mask.sum().clamp(min=1)


def kl_to_reference(model: torch.nn.Module, reference: torch.nn.Module, batch: Batch, *, answer_only: bool = False) -> torch.Tensor:
    """KL(reference || model) of the next-token distributions, averaged over positions.

    answer_only=False (retain_loss 'kl', the default) is TOFU's and open-unlearning's definition (TOFU dataloader.py
    `KL` loss, open-unlearning src/trainer/utils.py `compute_kl_divergence`): `kl_div(..., reduction="batchmean")`
    over the flattened [B*T, V] logits, i.e. the mean over every position, prompt and padding included (padding is
    up to the batch's longest sequence here, up to max_length in TOFU). answer_only=True (retain_loss 'kl_answer')
    averages over the positions that predict answer tokens only: what the retain term means to keep, independent of
    prompt length and batch padding. The default is the references' so that their hyperparameters (the retain
    weight) carry over."""
    logits = forward_logits(model, batch).float()
    with torch.no_grad():
        ref_logits = forward_logits(reference, batch).float()
    if answer_only:
        logits, ref_logits = logits[:, :-1], ref_logits[:, :-1]
    kl = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(ref_logits, -1), log_target=True, reduction="none").sum(-1)
    if not answer_only:
        return kl.mean()
    mask = batch.labels[:, 1:] != IGNORE_INDEX
    return (kl * mask).sum() / mask.sum().clamp(min=1)


def retain_term(kind: str, model: torch.nn.Module, reference: torch.nn.Module | None, batch: Batch | None) -> torch.Tensor | None:
    """The retain regulariser shared by most methods: 'nll', 'kl' / 'kl_answer' (need a reference; see
    `kl_to_reference`) or 'none'."""
    if batch is None or kind == "none":
        return None
    if kind == "nll":
        return batch_nll(model, batch)
    if kind in KL_KINDS:
        if reference is None:
            raise ValueError(f"retain_loss='{kind}' needs a reference model")
        return kl_to_reference(model, reference, batch, answer_only=kind == "kl_answer")
    raise ValueError(f"unknown retain_loss '{kind}' (choose from: nll, {', '.join(KL_KINDS)}, none)")


def check_retain_loss(method: object, kind: str) -> None:
    """Validate a method's `retain_loss` field at construction, not at the first step: 'kl' needs a reference,
    so reference-free methods (needs_reference=False) accept only 'nll' or 'none'."""
    allowed = ("nll", *KL_KINDS, "none") if getattr(method, "needs_reference", False) else ("nll", "none")
    if kind not in allowed:
        raise ValueError(f"{type(method).__name__}: retain_loss='{kind}' is not supported (choose from: {', '.join(allowed)})")


def with_retain(
    forget_loss: torch.Tensor,
    components: dict[str, float],
    *,
    model: torch.nn.Module,
    reference: torch.nn.Module | None,
    batch: UnlearnBatch,
    kind: str = "nll",
    retain_weight: float = 1.0,
    forget_weight: float = 1.0,
) -> LossOutput:
    """forget_weight * forget_loss + retain_weight * retain_term(kind) — open-unlearning's
    `gamma * forget_loss + alpha * retain_loss`. The retain term is skipped (not computed) when the weight is 0,
    the kind is 'none' or the batch has no retain part; it is logged as `retain_<kind>`."""
    total = forget_weight * forget_loss
    retain = retain_term(kind, model, reference, batch.retain) if retain_weight != 0 else None
    if retain is not None:
        total = total + retain_weight * retain
        components[f"retain_{kind}"] = retain.item()
    return LossOutput(total, components)


def require_alternate(method: object, batch: UnlearnBatch) -> Batch:
    """The alternate batch of a method with `alternate` set; a clear error if the runner did not supply it."""
    if batch.alternate is None:
        kind = getattr(method, "alternate", None)
        raise ValueError(f"{type(method).__name__} needs batch.alternate (forget questions with {kind} answers)")
    return batch.alternate


def ascent_with_retain(
    model: torch.nn.Module,
    batch: UnlearnBatch,
    reference: torch.nn.Module | None,
    *,
    kind: str,
    retain_weight: float,
    forget_weight: float,
) -> LossOutput:
    """Gradient ascent on the forget answers plus a retain term (open-unlearning's GradDiff with
    retain_loss_type=`kind`): forget_weight * -NLL(forget) + retain_weight * retain_term(kind)."""
    forget_nll = batch_nll(model, batch.forget)
    return with_retain(
        -forget_nll, {"forget_nll": forget_nll.item()}, model=model, reference=reference, batch=batch,
        kind=kind, retain_weight=retain_weight, forget_weight=forget_weight,
    )


def alternate_nll_with_retain(
    method: object,
    model: torch.nn.Module,
    batch: UnlearnBatch,
    reference: torch.nn.Module | None,
    *,
    component: str,
    retain_weight: float,
) -> LossOutput:
    """Fine-tuning toward the method's alternate answers (refusals, perturbed answers) plus retain NLL (TOFU's
    `idk` baseline); the alternate NLL is logged as `component`."""
    alternate_nll = batch_nll(model, require_alternate(method, batch))
    return with_retain(
        alternate_nll, {component: alternate_nll.item()}, model=model, reference=reference, batch=batch,
        kind="nll", retain_weight=retain_weight,
    )
