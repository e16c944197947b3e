"""RWKU's synthetic forget corpus: biographies of each target written by the target model itself.

RWKU gives no forget corpus; its GA/NPO runs train on `positive.json`, texts the original model wrote about
the target (generation/pair_generation.py, `main`): the system turn "{intro} You know {subject} very well.",
the user turn "Please write a short biography of {subject}.", the chat-rendered prompt followed by an opening
(one of `all_truncated_outputs.json`), then up to 512 sampled tokens (temperature 1.0, top-p 0.9, and
transformers 4's default top-k 50, which RWKU's `generate` call leaves in place; stopping at EOS or <|eot_id|>);
the stored text is the opening plus the continuation. The intro there comes from all_intro.json, which
lacks the "Please forget {subject}. " that intro.json starts with, so that sentence is dropped here.

A tokenizer without a chat template (the tiny model) gets the two turns as plain lines. Openings are
templates with `{subject}`, used in turn; RWKU's own list is not published, so the default opening is the
name, which starts a biography for any model.
"""
from __future__ import annotations

from typing import Any, Sequence

from unlearn_bench.benchmarks.rwku.data import RWKUTarget
from unlearn_bench.evaluation.lm import LM

SYSTEM_TEMPLATE = "{intro} You know {subject} very well."
USER_TEMPLATE = "Please write a short biography of {subject}."


def generator_intro(target: RWKUTarget) -> str:
    """The intro as RWKU's generator saw it (all_intro.json: without intro.json's "Please forget X. ")."""
    lead = f"Please forget {target.subject}."
    return target.intro[len(lead):].strip() if target.intro.startswith(lead) else target.intro


def generation_prompt(target: RWKUTarget, tokenizer: Any) -> str:
    system = SYSTEM_TEMPLATE.format(intro=generator_intro(target), subject=target.subject)
    user = USER_TEMPLATE.format(subject=target.subject)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{system}\n{user}\n"


def generate_forget_corpus(lm: LM, targets: Sequence[RWKUTarget], per_target: int, openings: Sequence[str],
                           max_new_tokens: int, top_p: float, top_k: int) -> list[dict[str, Any]]:
    """`per_target` sampled biographies of each target, as RWKU's positive.json records (id, text, subject,
    intro). Seed torch first: sampling makes them differ."""
    if per_target < 1 or not openings:
        raise ValueError("bench.generated_per_target must be >= 1 and bench.generated_openings non-empty")
    jobs = [(t, k, openings[k % len(openings)].format(subject=t.subject)) for t in targets for k in range(per_target)]
    prompts = [generation_prompt(t, lm.tokenizer) + opening for t, _, opening in jobs]
    # Prompt and continuation stay within model.max_length: unlearning cuts texts there anyway, and the tiny
    # model has never seen positions past it.
    longest = max(len(lm.tokenizer(p)["input_ids"]) for p in prompts)
    budget = min(max_new_tokens, lm.max_length - longest)
    if budget < 1:
        raise ValueError(f"the generation prompt ({longest} tokens) leaves no room within model.max_length={lm.max_length}")
    outputs = lm.generate(prompts, budget, raw=True, sample=True, top_p=top_p, top_k=top_k)
    return [
        {"id": f"{t.subject} {k}", "text": _join(opening, out), "subject": t.subject, "intro": t.intro}
        for (t, k, opening), out in zip(jobs, outputs)
    ]


def _join(opening: str, continuation: str) -> str:
    """RWKU stores opening + continuation; `LM.generate` strips the continuation, so put the space back."""
    if not continuation or opening[-1:].isspace():
        return opening + continuation
    return f"{opening} {continuation}"
