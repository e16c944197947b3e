"""Partial-answer prompt: the forget question followed by the first words of its true answer; the score is the
ROUGE-L recall of the greedy completion against the rest of the answer.

Schwarzschild et al. 2024, "Rethinking LLM memorization through the lens of adversarial compression"
(arXiv:2404.15146), find that short cues still elicit "forgotten" answers from unlearned models; a model that
never knew the answer can only continue the format, which the retain model's score measures.
Answers of one word have no rest to complete and are left out.
"""
from __future__ import annotations


from unlearn_bench.diagnostics.settings import PartialConfig
from unlearn_bench.diagnostics.common import Attack, DiagInputs, rouge_attack


def check(cfg: PartialConfig) -> None:
    if not 0 < cfg.fraction < 1:
        raise ValueError(f"eval.diag.partial.fraction={cfg.fraction} must be in (0, 1)")


def split_answer(answer: str, fraction: float) -> tuple[str, str] | None:
    """(given prefix, rest to complete) at a word boundary; None for answers of fewer than two words."""
    words = answer.split()
    if len(words) < 2:
        return None
    n = min(len(words) - 1, max(1, int(len(words) * fraction)))
    return " ".join(words[:n]), " ".join(words[n:])


def attacks(inputs: DiagInputs, cfg: PartialConfig) -> list[Attack]:
    fmt, tok = inputs.fmt, inputs.tokenizer
    index, prompts, rests = [], [], []
    for i, ex in enumerate(inputs.forget_examples):
        if (parts := split_answer(ex.answer, cfg.fraction)) is not None:
            index.append(i)
            # the bench's own prompt, then the answer's start as if the model had written it
            prompts.append(fmt.prompt(ex.question, tok) + fmt.answer_prefix() + parts[0])
            rests.append(parts[1])
    if not index:
        raise ValueError("eval.diagnostics has partial, but every forget answer is a single word")
    return [rouge_attack(inputs, "partial", index, prompts, {"fraction": cfg.fraction}, references=rests, raw=True)]
