"""Every model config of open-unlearning's families composes and renders a TOFU question as open-unlearning's
configs/model/<model>.yaml `template_args` write it (the reference strings below); its answer ends in that family's
end of turn; and a config whose template the tokenizer lacks, or rejects, fails at the start check.

Tokenizers: the real ones in ../shared/tokenizers where the family has one (Qwen3's; Llama-3's, whose first template
has no date header, standing in for Llama-3.1/3.2's). Qwen2.5, Phi-3.5 and Gemma have none there: a SentencePiece
stand-in gets the family's special tokens and a template written from open-unlearning's tags."""
from __future__ import annotations

import copy

import pytest

from conftest import shared_tokenizer
from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import QA
from unlearn_bench.methods.base import IGNORE_INDEX
from unlearn_bench.pipeline.validation import check_prompt_format

Q, A = "Where was Basil Mahfouz Al-Kuwaiti born?", "Basil Mahfouz Al-Kuwaiti was born in Kuwait City."
SYS = "You are a helpful assistant."
# open-unlearning's template_args (d3d7cf9): system_prompt_with_special_tokens, user_start_tag, user_end_tag,
# asst_start_tag; the end of turn of asst_end_tag.
CHATML = (f"<|im_start|>system\n{SYS}<|im_end|>\n", "<|im_start|>user\n", "<|im_end|>\n", "<|im_start|>assistant\n",
          "<|im_end|>")
LLAMA3 = (f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{SYS}<|eot_id|>",
          "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n",
          "<|eot_id|>")
PHI35 = (f"<|system|>\n{SYS}<|end|>\n", "<|user|>\n", "<|end|>\n", "<|assistant|>\n", "<|end|>")
GEMMA = ("", "<bos><start_of_turn>user\n", "<end_of_turn>\n", "<start_of_turn>model\n", "<end_of_turn>")


def tagged_template(system: str, user: str, user_end: str, asst: str, default_system: str | None = None) -> str:
    """A chat template that writes open-unlearning's tags; Gemma's rejects a system turn, as its real one does."""
    sys_open, sys_close = (system.split(SYS) if system else ("", ""))
    head = ("{% if messages[0]['role'] == 'system' %}" + (
        sys_open + "{{ messages[0]['content'] }}" + sys_close if system else "{{ raise_exception('System role not supported') }}")
        + "{% set turns = messages[1:] %}{% else %}" + (default_system or "") + "{% set turns = messages %}{% endif %}")
    user_open = user.replace("<bos>", "{{ bos_token }}")
    turns = ("{% for m in turns %}{% if m['role'] == 'user' %}" + user_open + "{{ m['content'] }}" + user_end
             + "{% else %}" + asst + "{{ m['content'] }}" + user_end + "{% endif %}{% endfor %}")
    return head + turns + "{% if add_generation_prompt %}" + asst + "{% endif %}"


def stand_in(tags: tuple[str, ...], family: str):
    tok = copy.deepcopy(shared_tokenizer(family))
    tok.add_special_tokens({"additional_special_tokens": [t for t in ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
                                                                       "<start_of_turn>", "<end_of_turn>") if t in "".join(tags)]})
    return tok


def qwen25():
    tok = copy.deepcopy(shared_tokenizer("qwen3"))  # Qwen2.5 shares its first 151,665 ids
    tok.chat_template = tagged_template(*CHATML[:4], default_system=CHATML[0].replace(
        SYS, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."))
    return tok


def phi35():
    tok = stand_in(PHI35, "llama2")
    tok.chat_template = tagged_template(*PHI35[:4])
    return tok


def gemma():
    tok = stand_in(GEMMA, "llama2")
    tok.chat_template = tagged_template(*GEMMA[:4])
    return tok


THINK = "<think>\n\n</think>\n\n"  # Qwen3's template with enable_thinking=False (data/collate.PromptFormat)
CONFIGS = {  # name: (hub id, tokenizer, tags, what ends the prompt after the assistant tag)
    **{f"qwen2.5-{s}-instruct": (f"Qwen/Qwen2.5-{s.upper()}-Instruct", qwen25, CHATML, "") for s in ("1.5b", "3b", "7b")},
    **{f"qwen3-{s}": (f"Qwen/Qwen3-{s.upper()}", lambda: shared_tokenizer("qwen3"), CHATML, THINK)
       for s in ("0.6b", "1.7b", "4b", "8b")},
    "llama3.1-8b-instruct": ("meta-llama/Llama-3.1-8B-Instruct", lambda: shared_tokenizer("llama3"), LLAMA3, ""),
    "llama3.2-3b-instruct": ("meta-llama/Llama-3.2-3B-Instruct", lambda: shared_tokenizer("llama3"), LLAMA3, ""),
    "phi-3.5-mini-instruct": ("microsoft/Phi-3.5-mini-instruct", phi35, PHI35, ""),
    "gemma-7b-it": ("google/gemma-7b-it", gemma, GEMMA, ""),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_chat_configs_render_open_unlearnings_prompt(compose_cfg, name):
    hub_id, tokenizer_of, (system, user, user_end, asst, end), after = CONFIGS[name]
    model = compose_cfg([f"model={name}", "bench=tofu"]).model
    assert (model.name, model.path, model.prompt_format) == (name, hub_id, "chat")
    tok = tokenizer_of()
    fmt = PromptFormat(model.prompt_format, model.system_prompt, model.date_string)
    check_prompt_format(fmt, tok, model)
    expected = system + user + Q + user_end + asst + after
    assert fmt.prompt(Q, tok) == expected.replace("<bos>", tok.bos_token or "")
    ids, labels = encode_example(QA(Q, A), tok, fmt, 512)
    assert tok.decode([t for t in labels if t != IGNORE_INDEX]) == A + end  # the answer through its end of turn
    assert fmt.stop_ids(tok) == [tok.convert_tokens_to_ids(end)]


@pytest.mark.parametrize("size", ["7b", "13b"])
def test_base_llama2_configs_write_open_unlearnings_question_answer_lines(compose_cfg, size):
    model = compose_cfg([f"model=llama2-{size}", "bench=tofu"]).model
    assert (model.path, model.prompt_format) == (f"meta-llama/Llama-2-{size}-hf", "base")
    tok = shared_tokenizer("llama2")
    fmt = PromptFormat(model.prompt_format)
    check_prompt_format(fmt, tok, model)
    # configs/model/Llama-2-7b-hf.yaml: user_start_tag "Question: ", user_end_tag "\n", asst_start_tag "Answer: ";
    # preprocess_chat_instance tokenizes prompt + answer with BOS, masks the prompt's own token count, appends EOS.
    prompt = f"Question: {Q}\nAnswer: "
    assert fmt.prompt(Q, tok) == prompt
    ids, labels = encode_example(QA(Q, A), tok, fmt, 512)
    ou_ids = tok(prompt + A, add_special_tokens=True)["input_ids"] + [tok.eos_token_id]
    n_prompt = len(tok(prompt, add_special_tokens=True)["input_ids"])
    assert ids == ou_ids and labels == [IGNORE_INDEX] * n_prompt + ou_ids[n_prompt:]


def test_a_chat_template_the_tokenizer_lacks_or_rejects_fails_at_the_start_check(compose_cfg):
    model = compose_cfg(["model=qwen3-8b"]).model
    base = copy.deepcopy(shared_tokenizer("llama2"))  # no chat template
    with pytest.raises(ValueError, match="model=qwen3-8b .*prompt_format=chat, but its tokenizer has no chat template"):
        check_prompt_format(PromptFormat("chat", SYS), base, model)
    gemma_model = compose_cfg(["model=gemma-7b-it", "model.system_prompt=Be brief."]).model
    with pytest.raises(ValueError, match="model=gemma-7b-it .*model.system_prompt='Be brief.'.*System role not supported"):
        check_prompt_format(PromptFormat("chat", "Be brief."), gemma(), gemma_model)
    with pytest.raises(ValueError, match="prompt_format='qwen' is not one of chat, plain, phi, llama2, base"):
        check_prompt_format(PromptFormat("qwen"), base, model)


@pytest.mark.slow
def test_a_chat_config_on_a_tokenizer_without_template_stops_before_training(compose_cfg, smoke_overrides, tmp_path,
                                                                            saved_model_dir):
    from unlearn_bench.pipeline.runner import run

    cfg = compose_cfg(smoke_overrides + ["model=qwen3-0.6b", f"model.path={saved_model_dir}", "model.dtype=float32"])
    with pytest.raises(ValueError, match="no chat template"):
        run(cfg)
    assert not (tmp_path / "cache" / "finetune").exists()
