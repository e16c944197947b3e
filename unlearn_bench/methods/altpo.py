"""AltPO: alternate preference optimisation, DPO towards alternate answers the target model writes itself.

Mekala, Dorna, Dubey, Lalwani, Koleczek, Rungta, Hasan & Lobo 2024, "Alternate preference optimization for
unlearning factual knowledge in large language models" (arXiv 2409.13474). Follows open-unlearning's
community/methods/AltPO: its DPO trainer (src/trainer/unlearn/dpo.py, `compute_dpo_loss`) with the alternate
answer preferred over the original,
    forget = -(2/beta) * mean logsigmoid(beta * (logratio(alternate) - logratio(original)))
(log-ratios against the frozen starting model, summed over answer tokens; loss = gamma * forget + alpha * retain
NLL; DPO.yaml's beta 0.1, gamma 1, alpha 1), on alternates from its generate.py: the target model, shown each forget
question with its answer and asked for another answer with every fact changed (`INSTRUCTION`, generate.py's
INST_QAS_LLAMA3_INSTR), samples `alternates_per_question` continuations (generate.yaml: 5, temperature 1, 200 new
tokens, each cut at "Question:" and "Q:", no other filtering). The runner generates them once per target model and
caches them (`alternates/` in the cache, pipeline/context.py `generated_alternates`).

Differences: the prompt is rendered in the model's own format (its chat template with generate.py's system turn;
`llama2` as generate.py's INST_QAS_TEMPLATE; plain formats as plain lines), where generate.py hard-codes a Llama-3
string without the template's date header. Sampling uses top-k 50 (transformers' default, which generate.py's call
keeps) and no top-p (it also keeps a model's own generation_config, e.g. Llama-3.2-Instruct's top_p 0.9). A model
whose context cannot hold prompt and 200 tokens (the tiny model's 128) generates half its context, after the
prompt's last tokens. An epoch visits each forget question once with one of its alternates drawn at random, where
open-unlearning's dataset holds one row per alternate (5 visits per epoch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from unlearn_bench.methods.base import LossOutput, UnlearnBatch, check_retain_loss
from unlearn_bench.methods.preference import alternate_preference_loss

if TYPE_CHECKING:
    from torch import nn

    from unlearn_bench.data.records import QA
    from unlearn_bench.evaluation.lm import LM

INSTRUCTION = ("Now pretend you are making things up. Write another answer to the question that is of a different "
               "template than the given answer and changes all facts from what are introduced in the given answer "
               "(changed answers must be plausible while being inconsistent with given answer). Ensure that your "
               "alternate answer is a plausible response to the question and doesn't change any details mentioned "
               "in question and only introduces changes to all the facts introduced answer.")
SYSTEM_PROMPT = "You are a helpful AI assistant"
# generate.py's Llama-2 template (INST_QAS_TEMPLATE_QUERY), with its own shorter instruction
LLAMA2_INSTRUCTION = "Now write another version of the answer with some alternate plausible facts that change answer details.\n"
LLAMA2_TEMPLATE = "[INST] Question: {q}\nAnswer:{a}\n" + LLAMA2_INSTRUCTION + " [/INST] Alternate Answer :"
ANSWER_LEAD = "Alternate Answer :"
STOP_STRINGS = ("Question:", "Q:")  # generate.yaml `until` (its "Question: " and "Q: " are cut by these)
TOP_K = 50


def alternate_prompt(qa: QA, prompt_format: str, date_string: str, tokenizer: Any) -> str:
    """The text the target model continues with an alternate answer to `qa`."""
    from unlearn_bench.data.collate import PromptFormat

    if prompt_format == "llama2":
        return LLAMA2_TEMPLATE.format(q=qa.question, a=qa.answer)
    user = f"Question: {qa.question}\nAnswer: {qa.answer}\n{INSTRUCTION}"
    if prompt_format == "chat" and getattr(tokenizer, "chat_template", None):
        return PromptFormat("chat", SYSTEM_PROMPT, date_string).prompt(user, tokenizer) + ANSWER_LEAD
    return f"{user}\n{ANSWER_LEAD}"


def cut_at_stop_strings(text: str) -> str:
    for stop in STOP_STRINGS:
        text = text.split(stop)[0]
    return text.strip()


@dataclass
class AltPO:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = True
    alternate: ClassVar[str | None] = "generated"

    beta: float = 0.1
    retain_loss: str = "nll"    # nll | kl | none
    retain_weight: float = 1.0  # open-unlearning: alpha
    forget_weight: float = 1.0  # open-unlearning: gamma
    alternates_per_question: int = 5     # generate.yaml: repeats
    alternate_max_new_tokens: int = 200  # generate.yaml: max_new_tokens

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"altpo: beta must be > 0, got {self.beta}")
        for name in ("alternates_per_question", "alternate_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"altpo: {name} must be >= 1, got {getattr(self, name)}")
        check_retain_loss(self, self.retain_loss)

    def generation_key(self) -> dict[str, Any]:
        """What determines the alternates besides the target model and the forget questions (the cache key)."""
        return {"per_question": self.alternates_per_question, "max_new_tokens": self.alternate_max_new_tokens,
                "top_k": TOP_K, "prompt": [INSTRUCTION, SYSTEM_PROMPT, LLAMA2_TEMPLATE, ANSWER_LEAD, STOP_STRINGS]}

    def generate_alternates(self, lm: LM, forget: Sequence[QA]) -> list[list[str]]:
        """`alternates_per_question` sampled alternate answers per forget record, in order (seed torch first)."""
        prompts = [alternate_prompt(qa, lm.fmt.name, lm.fmt.date_string, lm.tokenizer) for qa in forget]
        budget = min(self.alternate_max_new_tokens, lm.max_length // 2)
        outputs = lm.generate(prompts * self.alternates_per_question, budget, raw=True, sample=True, top_k=TOP_K)
        n = len(forget)
        return [[cut_at_stop_strings(outputs[k * n + i]) for k in range(self.alternates_per_question)] for i in range(n)]

    def loss(self, model: nn.Module, batch: UnlearnBatch, reference: nn.Module | None) -> LossOutput:
        return alternate_preference_loss(self, model, batch, reference, alternate_name="alternate")


METHOD = AltPO
