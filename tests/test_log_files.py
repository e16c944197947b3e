"""Logs written to a file carry no progress bars (tqdm's, transformers' weight loading and saving, lm-eval's
per-task and per-request bars) and none of lm-eval's warnings about the in-memory model it is handed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Imports transformers and tqdm before anything of ours, as a run's start-up may; then what a run does.
SCRIPT = """
import logging, sys
import tqdm, transformers
logging.basicConfig(level=logging.WARNING)
from unlearn_bench.runtime.logs import quiet_noise
quiet_noise()  # the runner's preflight
from unlearn_bench.models.tiny import build_tiny_model, train_tokenizer
from unlearn_bench.evaluation.lm_eval import evaluate_tasks
texts = [f"Question: what is item {i}? Answer: item {i} is a {w}." for i, w in enumerate(["cat", "dog"] * 50)]
tok = train_tokenizer(texts, vocab_size=300)
model = build_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
model.save_pretrained(sys.argv[2])
transformers.AutoModelForCausalLM.from_pretrained(sys.argv[2])
evaluate_tasks(model, tok, ["wmdp_bio"], data_dir=sys.argv[1], limit=2)
print("done", file=sys.stderr)
"""


@pytest.mark.slow
def test_no_bars_or_model_warnings_in_a_log_file(shared_data: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    with (tmp_path / "run.log").open("w") as log:  # stderr is a file, as under SLURM or `> run.log 2>&1`
        subprocess.run([sys.executable, "-c", SCRIPT, str(shared_data), str(tmp_path / "model")], stdout=log,
                       stderr=subprocess.STDOUT, env={**env, "OMP_NUM_THREADS": "1"}, timeout=300, check=True)
    text = (tmp_path / "run.log").read_text()
    assert text.strip().endswith("done"), text[-2000:]
    assert "it/s]" not in text and "\r" not in text and "%|" not in text, text
    assert "kwarg is not of type" not in text and "already-initialized model" not in text
