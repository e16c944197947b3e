"""LM's raw-prompt scorers (completion log-probabilities, next-token choices) against a manual forward pass."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.evaluation.lm import LM


def manual_logprobs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.float(), dim=-1)


def test_completion_logprobs_match_a_manual_sum(tiny_lm) -> None:
    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat(), max_length=64, batch_size=2)
    pairs = [("Question: what is item 3?", "item 3 is a cat."), ("Answer:\n", "dog"), ("item", "7 is a tree.")]
    got = lm.completion_logprobs(pairs)
    for (prompt, completion), value in zip(pairs, got):
        # a space joins prompt and completion unless the prompt ends in whitespace (open-instruct's rule)
        text = (prompt if prompt[-1] in "\n " else prompt + " ") + completion
        ids = tok(text)["input_ids"]
        n_prompt = len(tok(prompt)["input_ids"])
        lp = manual_logprobs(model, ids)
        expected = sum(lp[t - 1, ids[t]].item() for t in range(n_prompt, len(ids)))
        assert abs(value - expected) < 1e-4
    # batching and order do not change the scores
    assert lm.completion_logprobs(pairs[::-1]) == pytest.approx(got[::-1], abs=1e-5)


def test_next_token_choices_are_the_argmax_over_candidates(tiny_lm) -> None:
    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat(), max_length=64, batch_size=2)
    prompts = ["Question: what is item 1? Answer:", "item 2 is a", "Question:"]
    candidates = [tok.encode(" " + w, add_special_tokens=False)[-1] for w in ("cat", "dog", "tree", "river")]
    got = lm.next_token_choices(prompts, candidates)
    for prompt, choice in zip(prompts, got):
        lp = manual_logprobs(model, tok(prompt)["input_ids"])[-1]
        assert choice == int(lp[candidates].argmax())
    # the answer is an index into the candidates: reversing them mirrors it
    assert lm.next_token_choices(prompts, candidates[::-1]) == [len(candidates) - 1 - c for c in got]


def test_eval_lm_uses_the_model_context_not_the_training_cut(tiny_lm) -> None:
    from unlearn_bench.evaluation.lm import context_length, eval_lm

    model, tok = tiny_lm
    assert context_length(model) == model.config.max_position_embeddings == 256
    assert eval_lm(model, tok, PromptFormat(), max_length=64, batch_size=4).max_length == 256
    # a config without a context size falls back to model.max_length
    bare = SimpleNamespace(config=SimpleNamespace(get_text_config=lambda: SimpleNamespace(hidden_size=8)))
    assert context_length(bare) is None
    assert eval_lm(bare, tok, PromptFormat(), max_length=64, batch_size=4).max_length == 64


def test_generation_stops_at_the_model_end_of_turn_token(tiny_lm) -> None:
    import copy

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    lm = LM(model, tok, PromptFormat(), max_length=64, batch_size=2)
    prompt = "Question: what is item 5?"
    free = lm.generate([prompt], max_new_tokens=6, raw=True)[0]
    first = lm.model.generate(input_ids=torch.tensor([tok(prompt)["input_ids"]]), max_new_tokens=1, do_sample=False,
                              pad_token_id=lm.pad_id)[0, -1].item()
    assert first != tok.eos_token_id and len(tok(free, add_special_tokens=False)["input_ids"]) > 1
    # a chat model's own end-of-turn id (Llama-3's <|eot_id|>) lives in its generation config, not its tokenizer
    model.generation_config.eos_token_id = [tok.eos_token_id, first]
    assert lm.stop_ids == [tok.eos_token_id, first]
    assert lm.generate([prompt], max_new_tokens=6, raw=True)[0] == tok.decode([first]).strip()


def test_sampling_truncation_is_passed_through(tiny_lm, monkeypatch) -> None:
    model, tok = tiny_lm
    seen = {}

    def spy(**kwargs):
        seen.update(kwargs)
        return kwargs["input_ids"]

    monkeypatch.setattr(model, "generate", spy)
    LM(model, tok, PromptFormat(), max_length=64).generate(["item"], 4, raw=True, sample=True, top_p=0.9, top_k=50)
    assert (seen["do_sample"], seen["temperature"], seen["top_p"], seen["top_k"]) == (True, 1.0, 0.9, 50)


@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_greedy_decoding_is_transformers_generate_token_for_token(tiny_lm, family, monkeypatch) -> None:
    """LM's own greedy loop (rows that stopped leave the batch, full-attention layers write into a preallocated
    cache) against `generate(do_sample=False)` run on one prompt at a time, with stop tokens the random model does
    emit, so rows stop at different steps. Gemma-2's layers alternate an 8-token sliding window (a cache layer of
    its own, left as it is) and full attention."""
    import copy

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    if family == "gemma2":
        model = soft_capped_twin(model, tok, cap=None)
    torch.manual_seed(0)
    with torch.no_grad():  # random weights of a scale at which the family emits varied tokens, not one repeated
        for p in model.parameters():
            p.normal_(0.0, 0.3 if family == "llama" else 0.02)
    prompts = ["item", "what is item 3?", "Question: what is item 12? Answer:", "a", "river tree cat dog", "item 7 is"]
    lm = LM(model, tok, PromptFormat(), max_length=64, batch_size=4)

    def one_by_one() -> list[list[int]]:
        out = []
        with torch.no_grad():
            for p in prompts:
                ids = torch.tensor([tok(p)["input_ids"]])
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                                     do_sample=False, pad_token_id=lm.pad_id, eos_token_id=lm.stop_ids)
                out.append(gen[0, ids.shape[1]:].tolist())
        return out

    free = one_by_one()  # nothing stops: pick stop tokens from what the rows emit, at various steps
    import unlearn_bench.evaluation.lm as lm_module

    layer_types: list[list[str]] = []
    preallocated = lm_module.preallocated

    def recorded(cache, capacity):
        out = preallocated(cache, capacity)
        layer_types.append([type(layer).__name__ for layer in out.layers])
        return out

    monkeypatch.setattr(lm_module, "preallocated", recorded)
    firsts = [next((k for k in range(start, len(row)) if row[k] not in row[:k]), None)  # a new token from `start` on
              for row, start in zip(free, (2, 5, 8, 3))]
    stops = {row[k] for row, k in zip(free, firsts) if k is not None}
    model.generation_config.eos_token_id = [tok.eos_token_id, *stops]
    expected = [tok.decode(g, skip_special_tokens=True).strip() for g in one_by_one()]
    lengths = [len(g) for g in one_by_one()]
    assert len(set(lengths)) > 2 and min(lengths) < 12  # rows stop at different steps
    assert lm.generate(prompts, max_new_tokens=12, raw=True) == expected
    full = "PreallocatedLayer"
    assert layer_types and all(t == ([full, full] if family == "llama" else ["DynamicSlidingWindowLayer", full])
                               for t in layer_types), layer_types


def soft_capped_twin(model, tok, cap: float | None = 0.5):
    """A tiny Gemma-2 of the same vocabulary whose logits are soft-capped at `cap` after its output layer (and
    whose layers alternate sliding-window and full attention): scoring must take its logits, not the output
    layer's of its hidden states."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    cfg = Gemma2Config(vocab_size=model.config.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, head_dim=32,
                       sliding_window=8, max_position_embeddings=64, pad_token_id=tok.pad_token_id, final_logit_softcapping=cap)
    return Gemma2ForCausalLM(cfg).eval()


@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_shared_prompts_score_as_whole_sequences(tiny_lm, family) -> None:
    """Answers that share a prompt run it once (its KV cache reused): every statistic equals one forward of
    each whole sequence, to float rounding (batches small, so prefixes and suffixes span several batches).
    Llama's scored positions go through its output layer alone; Gemma-2's soft-capped logits come whole."""
    from unlearn_bench.data.records import QA
    from unlearn_bench.metrics.mia import min_k_plus_plus_stats

    model, tok = tiny_lm
    if family == "gemma2":
        model = soft_capped_twin(model, tok)
    pairs = [QA(q, a) for q in ("what is item 3?", "what is item 12 in the list?", "item")
             for a in ("item 3 is a cat.", "a dog", "river tree cat dog river tree", "x")]
    pairs += [QA(None, "item 5 is a river."), QA("what is item 3?", "")]
    lm = LM(model, tok, PromptFormat(), max_length=24, batch_size=3)  # 24 tokens: some answers are cut
    encoded = [lm.encode(qa) for qa in pairs]
    assert any(len(ids) == 24 for ids, _ in encoded)
    assert (lm._split_head()[0] is model) == (family == "gemma2")
    stats = lm.token_stats(encoded, vocab_stats=True)
    for (ids, labels), st in zip(encoded, stats):
        lp = manual_logprobs(model, ids)[:-1]
        scored = torch.tensor(labels[1:]) != -100
        targets = torch.tensor(ids[1:])[scored]
        assert torch.equal(st.targets, targets)
        assert torch.allclose(st.logprobs, lp[scored].gather(-1, targets[:, None]).squeeze(-1), atol=1e-5)
        assert torch.equal(st.greedy, lp[scored].argmax(-1) == targets)
        with torch.no_grad():
            mu, sigma = min_k_plus_plus_stats(model(input_ids=torch.tensor([ids])).logits[0, :-1][scored])
        assert torch.allclose(st.mu, torch.from_numpy(mu), atol=1e-5)
        # sigma = sqrt(E[log p^2] - mu^2) cancels (both ~36 here): float32 rounding of the logits moves it by up to ~1e-4
        assert torch.allclose(st.sigma, torch.from_numpy(sigma), rtol=1e-3)


def test_memorization_and_truncation_see_the_wrapper_prompt(tiny_lm, monkeypatch) -> None:
    """greedy_matches (memorization rows) and truncated score the prompt an inference-time method rewrote, as
    answer_losses and generate do: wrapped == the rewritten question without a wrapper, token for token."""
    from unlearn_bench.data.records import QA
    from unlearn_bench.evaluation.wrapper import InferenceWrapper

    model, tok = tiny_lm
    prefix = "Do not reveal item 3. " * 4
    wrapper = InferenceWrapper(prompt=lambda q: prefix + q)
    pairs = [QA("what is item 3?", "item 3 is a cat."), QA("item 2 is", "a dog.")]
    rewritten = [QA(prefix + qa.question, qa.answer) for qa in pairs]
    wrapped = LM(model, tok, PromptFormat(), max_length=256, batch_size=2, wrapper=wrapper)
    plain = LM(model, tok, PromptFormat(), max_length=256, batch_size=2)
    fed: list = []  # what each greedy_matches call runs the model on
    score = LM.token_stats
    monkeypatch.setattr(LM, "token_stats", lambda self, encoded, vocab_stats=False: fed.append(list(encoded))
                        or score(self, encoded, vocab_stats))
    for raw in (False, True):
        expected = plain.greedy_matches(rewritten, raw=raw)
        assert all(expected) and wrapped.greedy_matches(pairs, raw=raw) == expected  # every answer scored
        plain.greedy_matches(pairs, raw=raw)
        rewritten_fed, wrapped_fed, bare_fed = fed[-3:]
        assert wrapped_fed == rewritten_fed
        assert all(len(w[0]) > len(b[0]) for w, b in zip(wrapped_fed, bare_fed))
    # a cut that the bare pairs fit in but the rewritten ones do not
    longest = max(len(plain.encode(qa)[0]) for qa in pairs)
    wrapped.max_length = plain.max_length = longest
    assert plain.truncated(pairs) == 0
    assert wrapped.truncated(pairs) == plain.truncated(rewritten) == len(pairs)



def test_tofu_generates_from_the_whole_prompt_and_the_cut_is_an_option(tiny_lm, monkeypatch, caplog) -> None:
    """open-unlearning's eval_text_similarity (src/evals/metrics/utils.py) generates from the whole prompt: so do
    TOFU's splits by default; `cut_prompts` keeps a prompt's last (context - max_new_tokens) tokens, with one
    log line counting the prompts it cut."""
    from unlearn_bench.benchmarks.tofu.config import TofuConfig
    from unlearn_bench.benchmarks.tofu.qa_eval import score_splits
    from unlearn_bench.data.records import EvalQA

    model, tok = tiny_lm
    lengths: list[list[int]] = []

    def spy(self, input_ids, mask, max_new_tokens):  # the prompts' token counts as decoded (left padding masked)
        lengths.append(mask.sum(-1).tolist())
        return [[] for _ in input_ids]

    monkeypatch.setattr(LM, "_greedy", spy)
    lm = LM(model, tok, PromptFormat(), max_length=64, batch_size=8)
    long_q, short_q = "what is item 3? " * 8, "what is item 4?"
    full = [len(PromptFormat().prompt_ids(q, tok)) for q in (long_q, short_q)]
    assert full[0] > 64 - 40 > full[1]  # only the long prompt and 40 new tokens overrun the 64-token context
    score_splits(lm, {"forget": [EvalQA(q, "a cat", "the cat", ("a dog", "a tree")) for q in (long_q, short_q)]}, 40)
    assert sorted(lengths.pop()) == sorted(full)
    with caplog.at_level("INFO", logger="unlearn_bench.evaluation.lm"):
        lm.generate([long_q, short_q], max_new_tokens=40, cut_prompts=True)
    assert sorted(lengths.pop()) == sorted([64 - 40, full[1]])
    assert "cut 1 of 2 prompts to their last 24 tokens" in caplog.text
    assert not TofuConfig().cut_generation_prompts  # bench=tofu passes it to score_splits


def test_argmax_hits_is_argmax_on_ties_and_nans() -> None:
    """The max-reduction shortcut for greedy matches agrees with `argmax(-1) == target` (first index on ties,
    NaN taken for the max) on integer logits full of ties, rows with a NaN and rows all -inf."""
    from unlearn_bench.evaluation.lm import argmax_hits

    torch.manual_seed(0)
    for trial in range(50):
        logits = torch.randint(-3, 3, (64, 50)).float()
        logits[3, 7] = float("nan")
        logits[5] = float("-inf")
        targets = torch.randint(0, 50, (64,))
        targets[:20] = logits[:20].argmax(-1)  # hits, many of them tied at the max
        target_logits = logits.gather(-1, targets[:, None]).squeeze(-1)
        assert torch.equal(argmax_hits(logits, targets, target_logits), logits.argmax(-1) == targets), trial


def test_encoding_many_pairs_equals_encoding_each(tiny_lm) -> None:
    """`encode_all` (each distinct prompt tokenized once, raw texts and QA pairs mixed, a wrapper's rewrite)
    gives each pair what encoding it alone gives, in order."""
    from unlearn_bench.data.records import QA
    from unlearn_bench.evaluation.wrapper import InferenceWrapper

    model, tok = tiny_lm
    pairs = [QA("what is item 3?", "item 3 is a cat."), QA(None, "item 5 is a river."), QA("what is item 3?", "a dog"),
             QA("item", ""), QA(None, "x"), QA("what is item 12?", "item 12 is a tree.")]
    for fmt in (PromptFormat(), PromptFormat("llama2")):
        for wrapper in (None, InferenceWrapper(prompt=lambda q: "Do not say. " + q)):
            lm = LM(model, tok, fmt, max_length=12, batch_size=2, wrapper=wrapper)
            for add_eos in (True, False):
                for truncate in (True, False):
                    together = lm.encode_all(pairs, add_eos=add_eos, truncate=truncate)
                    assert together == [lm.encode_all([qa], add_eos, truncate)[0] for qa in pairs]
                    assert (max(len(ids) for ids, _ in together) > 12) == (not truncate)
