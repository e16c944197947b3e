"""MUSE metrics: PrivLeak, KnowMem (few-shot QA) and VerbMem (continuation) scoring, as the MUSE authors do it.

Sources: swj0419/muse_bench `eval.py` (`eval_model`), `constants.py`, `metrics/knowmem.py` (`eval`),
`metrics/verbmem.py` (`eval`), `metrics/privleak.py` (`eval`, `sweep`), `metrics/logger.py` (`RougeEvalLogger`).
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from rouge_score import rouge_scorer

from unlearn_bench.benchmarks.muse.config import VERBMEM_MAX_NEW_TOKENS
from unlearn_bench.data.records import QA

if TYPE_CHECKING:  # transformers is only needed by callers that already hold a tokenizer
    from transformers import PreTrainedTokenizerBase

# eval.py `eval_model` defaults: privleak reads the forget-vs-holdout AUC of Min-40%; the generation lengths
# are the schema's defaults (config.py).
PRIVLEAK_MIN_K = 0.4

# constants.py `AUC_RETRAIN[corpus]["forget_holdout_Min-40%"]`, the retrained model's AUC, as published: in MUSE's
# orientation, where 0.5 = no signal and values near 0 mean the forget set still looks like training data.
MUSE_AUC_RETRAIN = {"news": 0.4772, "books": 0.5393}
# The same numbers in `mia.mia_auc`'s orientation (MUSE's is the complement, see `mia.privleak`), ready for it.
RETRAIN_AUC = {corpus: 1.0 - auc for corpus, auc in MUSE_AUC_RETRAIN.items()}

# metrics/knowmem.py `eval`: the answer is the generation up to the first of these (the model starting the next
# few-shot block), not merely up to the first newline.
KNOWMEM_STOP_STRINGS = ("\n\n", "\nQuestion", "Question:")


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    # metrics/logger.py `RougeEvalLogger`: no stemmer (unlike TOFU's scorer in `metrics.rouge`).
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l_f1(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of `prediction` against `reference`.

    MUSE's aggregate key for both knowmem and verbmem is `mean_rougeL` (eval.py), which `RougeEvalLogger.log`
    fills with `score['rougeL'].fmeasure`; recall is only logged (`rougeL_recall`). open-unlearning's MUSE
    configs agree (`rouge_type: rougeL_f1`).
    """
    return _scorer().score(reference, prediction)["rougeL"].fmeasure


def knowmem_prompt(question: str, shots: Sequence[QA]) -> str:
    """Few-shot prompt: "Question: {q}\\nAnswer: {a}\\n\\n" per shot, then "Question: {q}\\nAnswer: ".

    metrics/knowmem.py `eval`; the trailing space after the final "Answer:" is MUSE's.
    """
    prefix = "".join(f"Question: {shot.question}\nAnswer: {shot.answer}\n\n" for shot in shots)
    return f"{prefix}Question: {question}\nAnswer: "


def knowmem_answer(generation: str) -> str:
    """The answer part of a greedy knowmem generation: cut at the first stop string, then strip.

    The strip is ours and changes no score (ROUGE tokenizes on non-alphanumerics); it keeps logs readable.
    """
    for stop in KNOWMEM_STOP_STRINGS:
        generation = generation.split(stop)[0]
    return generation.strip()


def knowmem_score(generation: str, answer: str) -> float:
    """ROUGE-L F1 of the post-processed generation against the gold answer."""
    return rouge_l_f1(knowmem_answer(generation), answer)


def verbmem_reference(gt: str, tokenizer: PreTrainedTokenizerBase,
                      max_new_tokens: int = VERBMEM_MAX_NEW_TOKENS) -> str:
    """The part of `gt` a `max_new_tokens` continuation is compared with.

    metrics/verbmem.py `eval`: encode gt with special tokens, keep the first `max_new_tokens` ids (so a BOS
    counts against the budget), decode without special tokens. Without this, a 128-token continuation would be
    scored against a `gt` of up to 2048 tokens.
    """
    ids = tokenizer(gt, add_special_tokens=True)["input_ids"][:max_new_tokens]
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)


def verbmem_score(continuation: str, reference: str) -> float:
    """ROUGE-L F1 of the model's continuation against the (truncated, see `verbmem_reference`) gt."""
    return rouge_l_f1(continuation, reference)
