"""Saved checkpoints carry the fields transformers 4.45 (open-unlearning's pin) reads beside transformers 5's, and
load back unchanged; with UNLEARN_BENCH_TF445_PYTHON (a Python whose transformers is 4.45) the checkpoint is
loaded there too and must give the same logits and tokens."""
from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from unlearn_bench.models import loading
from unlearn_bench.models.compat import legacy_config, legacy_tokenizer_config

TEXT = "Question: what is item 3? Answer: item 3 is a tree."


def test_legacy_rope_fields_follow_rope_parameters():
    llama3 = {"rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0}, "dtype": "bfloat16"}
    out = legacy_config(llama3)
    assert out["rope_theta"] == 500000.0 and out["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0}
    assert out["torch_dtype"] == "bfloat16" and out["rope_parameters"] == llama3["rope_parameters"]
    plain = legacy_config({"rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}})
    assert plain["rope_theta"] == 10000.0 and plain["rope_scaling"] is None
    assert legacy_tokenizer_config({"tokenizer_class": "TokenizersBackend"})["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert legacy_tokenizer_config({"tokenizer_class": "LlamaTokenizer"})["tokenizer_class"] == "LlamaTokenizer"


def saved(tmp_path, tiny_lm) -> tuple[Path, torch.Tensor, list[int]]:
    """A tiny model whose RoPE base is not 4.45's default of 10,000, saved; its logits on TEXT and TEXT's ids."""
    base, tokenizer = tiny_lm
    config = copy.deepcopy(base.config)
    config.rope_parameters = {"rope_theta": 25000.0, "rope_type": "default"}
    torch.manual_seed(0)
    model = type(base)(config).eval()
    out = tmp_path / "ckpt"
    loading.save(model, tokenizer, out)
    ids = tokenizer(TEXT)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    return out, logits, ids


def test_saved_checkpoint_has_legacy_fields_and_reloads_the_same(tmp_path, tiny_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, logits, ids = saved(tmp_path, tiny_lm)
    config = json.loads((out / "config.json").read_text())
    assert config["rope_theta"] == 25000.0 == config["rope_parameters"]["rope_theta"]
    assert config["torch_dtype"] == config["dtype"]
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert AutoTokenizer.from_pretrained(str(out))(TEXT)["input_ids"] == ids
    reloaded = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(torch.tensor([ids])).logits[0], logits)


LOAD_445 = """
import json, sys, torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
path, text = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path).eval()
ids = tok(text)["input_ids"]
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0]
print(json.dumps({"version": transformers.__version__, "rope_theta": model.config.rope_theta, "ids": ids,
                  "logits": logits.tolist()}))
"""


def test_transformers_445_loads_it_with_the_same_logits(tmp_path, tiny_lm):
    python = os.environ.get("UNLEARN_BENCH_TF445_PYTHON")
    if not python:
        pytest.skip("UNLEARN_BENCH_TF445_PYTHON unset: no transformers 4.45 to load the checkpoint with "
                    "(python3 -m venv v && v/bin/pip install torch==2.13.0 transformers==4.45.2)")
    out, logits, ids = saved(tmp_path, tiny_lm)
    proc = subprocess.run([python, "-c", LOAD_445, str(out), TEXT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["version"].startswith("4.45") and got["rope_theta"] == 25000.0 and got["ids"] == ids
    torch.testing.assert_close(torch.tensor(got["logits"]), logits, rtol=1e-5, atol=1e-5)
