"""Unlearning method losses against hand-computed values, the hooks (RMU, task negation, NGDiff), and one smoke
unlearning step per method on the tiny Llama."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from unlearn_bench.methods.base import IGNORE_INDEX, Batch, UnlearnBatch, batch_nll, is_inference_time
from unlearn_bench.methods.registry import method_classes

# ---------------------------------------------------------------------------------------------------------------
# A mock causal LM: the logits at position t are a fixed row of a table indexed by input_ids[t] (a bigram model),
# so every loss can be written down by hand from the table's probabilities.
# ---------------------------------------------------------------------------------------------------------------
P = [0.5, 0.3, 0.2]  # next-token distribution after token 0
Q = [0.1, 0.6, 0.3]  # next-token distribution after token 1
U = [1 / 3, 1 / 3, 1 / 3]


class Bigram(torch.nn.Module):
    def __init__(self, rows: list[list[float]]):
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(rows).log())

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[input_ids])


def seq(ids: list[int], n_prompt: int = 1) -> Batch:
    """One sequence; the first n_prompt tokens are prompt (label -100)."""
    input_ids = torch.tensor([ids])
    labels = input_ids.clone()
    labels[:, :n_prompt] = IGNORE_INDEX
    return Batch(input_ids, torch.ones_like(input_ids), labels)


# Sequence [0, 1, 2] with prompt [0]: scores token 1 after 0 (prob P[1]) and token 2 after 1 (prob Q[2]).
FORGET = seq([0, 1, 2])
# Sequence [0, 0, 1]: scores 0 after 0 (P[0]) and 1 after 0 (P[1]).
ALTERNATE = seq([0, 0, 1])
RETAIN = seq([1, 1, 0])  # scores 1 after 1 (Q[1]) and 0 after 1 (Q[0])


def model_and_ref():
    return Bigram([P, Q, U]), Bigram([U, U, U])


def method(name: str, **kwargs):
    return method_classes()[name](**kwargs)


def logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_every_method_is_registered_with_valid_tags():
    expected = {"ga", "graddiff", "ga_kl", "npo", "simnpo", "wga", "undial", "ngdiff", "rmu", "task_negation",
                "ceu", "satimp", "pdu", "altpo", "idk", "idk_dpo", "wrong_answers", "ihl"}
    classes = method_classes()
    assert expected <= set(classes)
    for name, cls in classes.items():
        assert cls.intent in ("removal", "suppression", "none"), name
        assert cls.alternate in (None, "refusal", "perturbed", "generated"), name
        assert isinstance(cls.needs_reference, bool), name
    inference_time = {"icul", "rag_guard", "uld"}
    assert {n for n, c in classes.items() if c.intent == "suppression"} == {"idk", "idk_dpo", "wrong_answers", "ihl"} | inference_time
    assert {n for n, c in classes.items() if is_inference_time(c)} == inference_time


def test_graddiff_and_ga_kl():
    model, ref = model_and_ref()
    batch = UnlearnBatch(FORGET, RETAIN)
    forget_nll = -(math.log(P[1]) + math.log(Q[2])) / 2
    retain_nll = -(math.log(Q[1]) + math.log(Q[0])) / 2
    out = method("graddiff", retain_weight=0.5).loss(model, batch, None)
    assert out.loss.item() == pytest.approx(-forget_nll + 0.5 * retain_nll, rel=1e-6)
    assert out.components["forget_nll"] == pytest.approx(forget_nll, rel=1e-6)
    # KL(ref || model), ref uniform. TOFU / open-unlearning ('kl'): the mean over all three retain positions, after
    # tokens 1, 1, 0 (rows Q, Q, P). 'kl_answer': the two positions that predict answer tokens, both after token 1.
    kl_q, kl_p = (sum(u * math.log(u / x) for u, x in zip(U, row)) for row in (Q, P))
    out = method("ga_kl").loss(model, batch, ref)
    assert out.loss.item() == pytest.approx(-forget_nll + (2 * kl_q + kl_p) / 3, rel=1e-6)
    out = method("ga_kl", retain_loss="kl_answer").loss(model, batch, ref)
    assert out.loss.item() == pytest.approx(-forget_nll + kl_q, rel=1e-6)
    with pytest.raises(ValueError, match="retain_loss='nll'"):
        method("ga_kl", retain_loss="nll")


def test_npo_matches_formula():
    model, ref = model_and_ref()
    beta = 0.1
    log_ratio = (math.log(P[1]) + math.log(Q[2])) - 2 * math.log(1 / 3)  # summed over answer tokens
    expected = -(2 / beta) * logsigmoid(-beta * log_ratio)
    out = method("npo", beta=beta, retain_loss="none").loss(model, UnlearnBatch(FORGET), ref)
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.components["forget_log_ratio"] == pytest.approx(log_ratio, rel=1e-6)
    # At the reference itself the loss is (2/beta) log 2 and its gradient pushes log p down.
    out = method("npo", beta=beta, retain_loss="none").loss(ref, UnlearnBatch(FORGET), ref)
    assert out.loss.item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)


def test_npo_retain_terms():
    model, ref = model_and_ref()
    batch = UnlearnBatch(FORGET, RETAIN)
    base = method("npo", retain_loss="none").loss(model, batch, ref).loss.item()
    retain_nll = -(math.log(Q[1]) + math.log(Q[0])) / 2
    out = method("npo", retain_loss="nll", retain_weight=2.0).loss(model, batch, ref)
    assert out.loss.item() == pytest.approx(base + 2 * retain_nll, rel=1e-6)
    assert out.components["retain_nll"] == pytest.approx(retain_nll, rel=1e-6)
    assert "retain_kl" in method("npo", retain_loss="kl").loss(model, batch, ref).components


def test_simnpo_matches_formula():
    model, _ = model_and_ref()
    beta, delta, gamma = 4.5, 0.25, 0.125
    mean_nll = -(math.log(P[1]) + math.log(Q[2])) / 2
    expected = gamma * (-(2 / beta) * logsigmoid(beta * (mean_nll - delta)))
    out = method("simnpo", beta=beta, delta=delta, retain_loss="none").loss(model, UnlearnBatch(FORGET), None)
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)


def test_reference_free_methods_reject_kl_retain():
    with pytest.raises(ValueError, match="retain_loss='kl'"):
        method("simnpo", retain_loss="kl")
    with pytest.raises(ValueError, match="retain_loss='bogus'"):
        method("npo", retain_loss="bogus")


@pytest.mark.parametrize("name", ["idk_dpo", "altpo"])
def test_dpo_toward_the_alternate_with_reference(name):
    model, ref = model_and_ref()
    beta = 0.1
    win = (math.log(P[0]) + math.log(P[1])) - 2 * math.log(1 / 3)   # refusal / generated (alternate) log-ratio
    lose = (math.log(P[1]) + math.log(Q[2])) - 2 * math.log(1 / 3)  # original answer log-ratio
    expected = -(2 / beta) * logsigmoid(beta * (win - lose))
    out = method(name, beta=beta, retain_loss="none").loss(model, UnlearnBatch(FORGET, None, ALTERNATE), ref)
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="alternate"):
        method(name).loss(model, UnlearnBatch(FORGET), ref)


def rows(*sequences: list[int], n_prompt: int = 1) -> Batch:
    """Sequences of different lengths, right-padded with token 2 (label -100), each with `n_prompt` prompt tokens."""
    width = max(map(len, sequences))
    ids = torch.tensor([s + [2] * (width - len(s)) for s in sequences])
    labels = ids.clone()
    labels[:, :n_prompt] = IGNORE_INDEX
    for row, s in enumerate(sequences):
        labels[row, len(s):] = IGNORE_INDEX
    return Batch(ids, torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences]), labels)


# Two rows with 2 and 3 answer tokens: a pooled mean over the 5 tokens differs from a mean of row means.
# Row 1 [0, 1, 2]: 1 after 0 (row P), 2 after 1 (Q). Row 2 [1, 0, 1, 1]: 0 after 1 (Q), 1 after 0 (P), 1 after 1 (Q).
RAGGED = rows([0, 1, 2], [1, 0, 1, 1])
RAGGED_TERMS = [(P, 1), (Q, 2), (Q, 0), (P, 1), (Q, 1)]  # (next-token distribution, target) per answer token


def test_ceu_is_the_pooled_cross_entropy_to_the_distribution_without_the_true_token():
    model, _ = model_and_ref()

    def ce(row, y):  # target: the row renormalised without y; the model's distribution is the row itself
        return -sum(row[v] / (1 - row[y]) * math.log(row[v]) for v in range(3) if v != y)

    out = method("ceu", ignore_first_n_answer_tokens=0).loss(model, UnlearnBatch(RAGGED), None)
    assert out.loss.item() == pytest.approx(sum(ce(r, y) for r, y in RAGGED_TERMS) / 5, rel=1e-6)
    # n=1 drops each row's first answer token: row 1 keeps (Q, 2), row 2 keeps (P, 1), (Q, 1)
    out = method("ceu").loss(model, UnlearnBatch(RAGGED), None)
    assert out.loss.item() == pytest.approx((ce(Q, 2) + ce(P, 1) + ce(Q, 1)) / 3, rel=1e-6)
    model.table.grad = None
    out.loss.backward()
    assert model.table.grad[2].abs().sum() == 0  # row U predicts no scored token
    with pytest.raises(ValueError, match="ignore_first_n_answer_tokens"):
        method("ceu", ignore_first_n_answer_tokens=-1)


def test_satimp_weights_saturation_and_importance_pooled_over_tokens():
    model, _ = model_and_ref()
    beta1, beta2, gamma = 2.0, 3.0, 0.5
    terms = [(r[y] ** beta1 * (1 - r[y]) ** beta2, -math.log(r[y])) for r, y in RAGGED_TERMS]
    forget = -sum(w * nll for w, nll in terms) / 5
    retain_nll = -(math.log(Q[1]) + math.log(Q[0])) / 2
    out = method("satimp", beta1=beta1, beta2=beta2, forget_weight=gamma).loss(model, UnlearnBatch(RAGGED, RETAIN), None)
    assert out.loss.item() == pytest.approx(gamma * forget + retain_nll, rel=1e-6)
    assert out.components["satimp_weight"] == pytest.approx(sum(w for w, _ in terms) / 5, rel=1e-6)
    for field in ("beta1", "beta2"):
        with pytest.raises(ValueError, match=f"satimp: {field} must be >= 0"):
            method("satimp", **{field: -1.0})


def margin(row: list[float]) -> float:
    logits = [math.log(x) for x in row]
    return (max(logits) - sum(logits) / 3) ** 2


def test_pdu_flattens_the_logits_of_the_positions_that_read_an_answer_token():
    model, _ = model_and_ref()
    # open-unlearning's mask is the unshifted labels': row 1 positions 1, 2 read tokens 1, 2 (rows Q, U); row 2
    # positions 1-3 read 0, 1, 1 (P, Q, Q). The last prompt token (predicting the first answer token) is not scored.
    forget = (margin(Q) + margin(U) + margin(P) + 2 * margin(Q)) / 5
    retain_nll = -(math.log(Q[1]) + math.log(Q[0])) / 2
    out = method("pdu", retain_loss_eps=0.25, primal_dual=False).loss(model, UnlearnBatch(RAGGED, RETAIN), None)
    assert out.loss.item() == pytest.approx(forget + (retain_nll - 0.25), rel=1e-6)
    assert out.components["pdu_forget"] == pytest.approx(forget, rel=1e-6)


@pytest.mark.parametrize("upon", ["step", "epoch"])
def test_pdu_dual_variable_moves_after_the_warm_up(upon):
    """lambda <- max(0, lambda + step * (retain - eps)): in `step` mode after every loss from the warm-up's end on;
    in `epoch` mode once per finished epoch, from the mean retain NLL of its batches (seen at the next epoch's first
    batch). The model does not change here, so every retain NLL is the same r."""
    model, _ = model_and_ref()
    r = -(math.log(Q[1]) + math.log(Q[0])) / 2
    eps, step, alpha = 0.5, 0.3, 1.0
    m = method("pdu", retain_loss_eps=eps, dual_step_size=step, dual_update_upon=upon, dual_warmup_epochs=1,
               retain_weight=alpha)
    forget = m.loss(model, UnlearnBatch(FORGET, RETAIN), None).components["pdu_forget"]
    m.setup(model, None)  # a new run starts from alpha again
    used = []
    for epoch in (0, 0, 1, 1, 2):
        out = m.loss(model, UnlearnBatch(FORGET, RETAIN, epoch=epoch), None)
        used.append((out.loss.item() - forget) / (r - eps))  # the lambda this loss was weighted with
    grow = step * (r - eps)
    if upon == "step":  # epoch 0 is the warm-up; each loss of epoch 1 and 2 is followed by a step
        expected = [alpha, alpha, alpha, alpha + grow, alpha + 2 * grow]
    else:  # the end of epoch 0 (1 done >= warm-up 1) and of epoch 1 each add one step
        expected = [alpha, alpha, alpha + grow, alpha + grow, alpha + 2 * grow]
    assert used == pytest.approx(expected, rel=1e-5)
    m = method("pdu", retain_loss_eps=10.0, dual_warmup_epochs=0, retain_weight=0.2)
    m.loss(model, UnlearnBatch(FORGET, RETAIN), None)
    assert m.dual == 0.0  # projected onto lambda >= 0
    with pytest.raises(ValueError, match="retain"):
        m.loss(model, UnlearnBatch(FORGET), None)


@pytest.mark.parametrize("kwargs, field", [(dict(dual_step_size=0.0), "dual_step_size"),
                                           (dict(dual_step_size=-1.0), "dual_step_size"),
                                           (dict(dual_update_upon="batch"), "dual_update_upon"),
                                           (dict(dual_warmup_epochs=-1), "dual_warmup_epochs"),
                                           (dict(retain_weight=-0.5), "retain_weight")])
def test_pdu_rejects_impossible_settings(kwargs, field):
    with pytest.raises(ValueError, match=f"pdu: {field}"):
        method("pdu", **kwargs)


@pytest.mark.parametrize("kwargs, field", [(dict(beta=0.0), "beta"), (dict(alternates_per_question=0), "alternates_per_question"),
                                           (dict(alternate_max_new_tokens=0), "alternate_max_new_tokens")])
def test_altpo_rejects_impossible_settings(kwargs, field):
    with pytest.raises(ValueError, match=f"altpo: {field}"):
        method("altpo", **kwargs)


def test_idk_and_wrong_answers_fit_the_alternate():
    model, _ = model_and_ref()
    alt_nll = -(math.log(P[0]) + math.log(P[1])) / 2
    retain_nll = -(math.log(Q[1]) + math.log(Q[0])) / 2
    out = method("wrong_answers").loss(model, UnlearnBatch(FORGET, RETAIN, ALTERNATE), None)
    assert out.loss.item() == pytest.approx(alt_nll + retain_nll, rel=1e-6)
    out = method("idk", reduction="sum").loss(model, UnlearnBatch(FORGET, RETAIN, ALTERNATE), None)
    assert out.loss.item() == pytest.approx(alt_nll + retain_nll, rel=1e-6)


def test_idk_joint_mean_is_tofus_one_mean_over_the_concatenated_batch():
    model, _ = model_and_ref()
    retain = seq([1, 1, 0, 1])  # three answer tokens: 1 after 1 (Q[1]), 0 after 1 (Q[0]), 1 after 0 (P[1])
    alt_sum = -(math.log(P[0]) + math.log(P[1]))
    retain_sum = -(math.log(Q[1]) + math.log(Q[0]) + math.log(P[1]))
    out = method("idk").loss(model, UnlearnBatch(FORGET, retain, ALTERNATE), None)
    assert out.loss.item() == pytest.approx((alt_sum + retain_sum) / 5, rel=1e-6)
    assert out.components == pytest.approx({"refusal_nll": alt_sum / 2, "retain_nll": retain_sum / 3})
    assert method("idk", reduction="sum").loss(model, UnlearnBatch(FORGET, retain, ALTERNATE), None).loss.item() == \
        pytest.approx(alt_sum / 2 + retain_sum / 3, rel=1e-6)
    with pytest.raises(ValueError, match="reduction='mean'"):
        method("idk", reduction="mean")


def test_ihl_hinge():
    model, _ = model_and_ref()
    # After 0 the target 1 has p=0.3, the best other token p=0.5: 1 + 0.3 - 0.5 = 0.8.
    # After 1 the target 2 has p=0.3, the best other token p=0.6: 1 + 0.3 - 0.6 = 0.7.
    out = method("ihl").loss(model, UnlearnBatch(FORGET), None)
    assert out.loss.item() == pytest.approx((0.8 + 0.7) / 2, rel=1e-6)
    # Target 0 after 0 is the argmax (0.5); runner-up 0.3: 1.2. Then target 1 after 0: 0.8.
    out = method("ihl").loss(model, UnlearnBatch(ALTERNATE), None)
    assert out.loss.item() == pytest.approx((1.2 + 0.8) / 2, rel=1e-6)


def test_wga_weights():
    from unlearn_bench.methods.wga import wga_weights

    model, _ = model_and_ref()
    beta = 2.0
    terms = [(P[1], -math.log(P[1])), (Q[2], -math.log(Q[2]))]
    expected = -sum(p ** beta * nll for p, nll in terms) / 2
    out = method("wga", beta=beta, retain_loss="none").loss(model, UnlearnBatch(FORGET), None)
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.components["wga_weight"] == pytest.approx((P[1] ** 2 + Q[2] ** 2) / 2, rel=1e-6)
    nll = torch.tensor([0.0, math.log(2.0)], requires_grad=True)
    weights = wga_weights(nll, 1.0)
    assert weights.tolist() == pytest.approx([1.0, 0.5]) and not weights.requires_grad


def test_undial_adjusted_target():
    from unlearn_bench.methods.undial import adjusted_teacher

    # Uniform teacher logits, target 0 lowered by log 2: softmax([-log 2, 0, 0]) = [0.2, 0.4, 0.4].
    teacher = adjusted_teacher(torch.zeros(1, 2, 3), torch.tensor([[0, IGNORE_INDEX]]), math.log(2))
    assert teacher[0, 0].tolist() == pytest.approx([0.2, 0.4, 0.4])
    assert teacher[0, 1].tolist() == pytest.approx(U)  # unscored position untouched

    model, ref = model_and_ref()  # ref is uniform everywhere
    t = [0.2, 0.4, 0.4]
    adjusted_after_1 = [0.4, 0.2, 0.4]  # target 1 after 0 lowered  -> model probs P
    adjusted_after_2 = [0.4, 0.4, 0.2]  # target 2 after 1 lowered  -> model probs Q
    ce1 = -sum(a * math.log(p) for a, p in zip(adjusted_after_1, P))
    ce2 = -sum(a * math.log(q) for a, q in zip(adjusted_after_2, Q))
    out = method("undial", strength=math.log(2)).loss(model, UnlearnBatch(FORGET, RETAIN), ref)
    assert out.loss.item() == pytest.approx((ce1 + ce2) / 2, rel=1e-5)
    assert "retain_nll" not in out.components  # default retain_weight 0 skips the retain term
    assert sum(t) == pytest.approx(1)


# ---------------------------------------------------------------------------------------------------------------
# Tiny Llama: a small tokenised QA batch (the real collator lives elsewhere).
# ---------------------------------------------------------------------------------------------------------------
QA = [("Question: what is item 1? Answer:", " item 1 is a dog."),
      ("Question: what is item 2? Answer:", " item 2 is a tree.")]
RETAIN_QA = [("Question: what is item 3? Answer:", " item 3 is a river."),
             ("Question: what is item 40? Answer:", " item 40 is a cat.")]
REFUSAL_QA = [(q, " I don't know.") for q, _ in QA]
PERTURBED_QA = [(q, " item 9 is a river.") for q, _ in QA]


def make_batch(tokenizer, pairs: list[tuple[str, str]]) -> Batch:
    rows, labels = [], []
    for prompt, answer in pairs:
        n_prompt = len(tokenizer(prompt)["input_ids"])
        ids = tokenizer(prompt + answer)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(ids)
        labels.append([IGNORE_INDEX] * n_prompt + ids[n_prompt:])
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    label_t = torch.tensor([lab + [IGNORE_INDEX] * (width - len(lab)) for lab in labels])
    return Batch(input_ids, attention, label_t)


@pytest.fixture
def lm(tiny_lm):
    model, tokenizer = tiny_lm
    model = copy.deepcopy(model)
    model.train()
    return model, tokenizer


def unlearn_batch(tokenizer, alternate: str | None) -> UnlearnBatch:
    alt = {"refusal": REFUSAL_QA, "perturbed": PERTURBED_QA, "generated": PERTURBED_QA, None: None}[alternate]
    return UnlearnBatch(make_batch(tokenizer, QA), make_batch(tokenizer, RETAIN_QA),
                        make_batch(tokenizer, alt) if alt else None)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def one_step(m, model, batch, reference, lr: float = 1e-2):
    """What the training loop does, minus the schedule: setup, loss/backward, optimizer step, finalize."""
    if hasattr(m, "setup"):
        m.setup(model, reference)
    params = list(m.trainable_parameters(model)) if hasattr(m, "trainable_parameters") else list(model.parameters())
    opt = torch.optim.SGD(params, lr=lr)
    opt.zero_grad()
    if hasattr(m, "backward"):
        out = m.backward(model, batch, reference)
    else:
        out = m.loss(model, batch, reference)
        out.loss.backward()
    opt.step()
    if hasattr(m, "finalize"):
        m.finalize(model, reference)
    return out


@pytest.mark.parametrize("name", sorted(n for n, c in method_classes().items()
                                  if not is_inference_time(c) and not getattr(c, "evaluates_as_is", False)))
def test_smoke_unlearning_step(name, lm):
    model, tokenizer = lm
    cls = method_classes()[name]
    m = cls()
    reference = copy.deepcopy(model).eval().requires_grad_(False) if cls.needs_reference else None
    batch = unlearn_batch(tokenizer, cls.alternate)
    before = snapshot(model)
    out = one_step(m, model, batch, reference)
    assert torch.isfinite(out.loss), name
    assert out.components and all(math.isfinite(v) for v in out.components.values()), name
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert changed, f"{name}: one step changed no parameter"


def test_rmu_hook_returns_the_layer_hidden_states(lm):
    from unlearn_bench.methods.rmu import layer_output

    model, tokenizer = lm
    batch = make_batch(tokenizer, QA)
    with torch.no_grad():
        hidden = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True).hidden_states
        hooks_before = [len(layer._forward_hooks) for layer in model.model.layers]  # transformers installs its own
        for layer in range(len(model.model.layers) - 1):  # the last entry of hidden_states has the final norm applied
            assert torch.allclose(layer_output(model, batch, layer), hidden[layer + 1])
    assert [len(layer._forward_hooks) for layer in model.model.layers] == hooks_before  # our hook is removed


def test_rmu_updates_only_configured_parameters(lm):
    model, tokenizer = lm
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    m = method("rmu", layer=1, trainable_layers=[1], steering_coeff=6.5, alpha=10.0)
    before = snapshot(model)
    out = one_step(m, model, unlearn_batch(tokenizer, None), reference)
    assert out.components["forget_mse"] > 0 and out.components["retain_mse"] == pytest.approx(0, abs=1e-10)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"model.layers.1.mlp.down_proj.weight"}
    assert all(p.requires_grad for p in model.parameters())  # finalize unfroze what setup froze


def test_rmu_layer_defaults_and_control_vector(lm):
    model, _ = lm  # 2 layers
    m = method("rmu")
    assert m.resolve_layer(model) == 0  # intermediate: the output of the first block, not the model's last block
    assert [id(p) for p in m.trainable_parameters(model)] == [id(model.model.layers[0].mlp.down_proj.weight)]
    assert method("rmu", layer=-2).resolve_layer(model) == 0
    with pytest.raises(ValueError, match="out of range"):
        method("rmu", layer=5).resolve_layer(model)
    fake = SimpleNamespace(model=SimpleNamespace(layers=[None] * 32))
    assert method("rmu").resolve_layer(fake) == 7  # WMDP's layer for 32-layer 7B models
    assert method("rmu").resolve_layer(SimpleNamespace(model=SimpleNamespace(layers=[None] * 4))) == 1
    with pytest.raises(ValueError, match="intermediate"):
        method("rmu").resolve_layer(SimpleNamespace(model=SimpleNamespace(layers=[None])))
    v = m.control_vector(64, device=torch.device("cpu"), dtype=torch.float32)
    assert v.norm().item() == pytest.approx(6.5, rel=1e-5)
    assert torch.equal(v, m.control_vector(64, device=torch.device("cpu"), dtype=torch.float32))
    assert (v >= 0).all()  # WMDP draws from torch.rand (uniform [0, 1)) before normalising


def test_task_negation_alpha_zero_and_one(lm):
    model, tokenizer = lm
    batch = unlearn_batch(tokenizer, None)
    theta0 = snapshot(model)
    for alpha in (0.0, 1.0):
        m_model = copy.deepcopy(model)
        m = method("task_negation", alpha=alpha)
        m.setup(m_model, None)
        opt = torch.optim.SGD(m_model.parameters(), lr=1e-2)
        m.loss(m_model, batch, None).loss.backward()
        opt.step()
        tuned = snapshot(m_model)
        assert any(not torch.equal(tuned[n], theta0[n]) for n in theta0)
        m.finalize(m_model, None)
        for n, p in m_model.named_parameters():
            if alpha == 0.0:
                assert torch.equal(p, theta0[n]), n
            else:
                assert torch.allclose(p, 2 * theta0[n] - tuned[n], atol=1e-6), n


def test_task_negation_finalize_needs_setup(lm):
    with pytest.raises(RuntimeError, match="setup"):
        method("task_negation").finalize(lm[0], None)


def test_ngdiff_combined_gradient_is_sum_of_unit_gradients(lm):
    model, tokenizer = lm
    batch = unlearn_batch(tokenizer, None)
    params = list(model.parameters())
    g_f = torch.autograd.grad(-batch_nll(model, batch.forget), params)
    g_r = torch.autograd.grad(batch_nll(model, batch.retain), params)
    n_f = torch.sqrt(sum((g ** 2).sum() for g in g_f))
    n_r = torch.sqrt(sum((g ** 2).sum() for g in g_r))
    model.zero_grad(set_to_none=True)
    out = method("ngdiff").backward(model, batch, None)
    for p, a, b in zip(params, g_f, g_r):
        assert torch.allclose(p.grad, a / n_f + b / n_r, atol=1e-6)
    assert out.components["forget_grad_norm"] == pytest.approx(n_f.item(), rel=1e-5)
    # The hook accumulates, as loss.backward() would across gradient-accumulation micro-batches.
    first = [p.grad.clone() for p in params]
    method("ngdiff").backward(model, batch, None)
    for p, g in zip(params, first):
        assert torch.allclose(p.grad, 2 * g, atol=1e-6)
