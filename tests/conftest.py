from __future__ import annotations

import os
from pathlib import Path

# Tests never reach a model or data hub: a path that is not local fails at once instead of timing out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest

# ../shared beside the repo; UNLEARN_BENCH_SHARED points elsewhere (a worktree whose parent lacks it).
SHARED = Path(os.environ.get("UNLEARN_BENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SHARED_DATA = SHARED / "data"
SHARED_TOKENIZERS = SHARED / "tokenizers"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark records beside the repo (../shared/data); absent in a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present: real benchmark records live beside the repo, not in it")
    return SHARED_DATA


def shared_tokenizer(family: str):
    """A real tokenizer from ../shared/tokenizers (llama2, llama3); the test is skipped where it is absent."""
    from transformers import AutoTokenizer

    path = SHARED_TOKENIZERS / family
    if not (path / "tokenizer.json").is_file():
        pytest.skip(f"{path} not present: real tokenizers live beside the repo, not in it")
    return AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="session")
def tiny_lm():
    """A randomly initialised tiny Llama and its tokenizer, for code-path tests."""
    from unlearn_bench.models.tiny import build_tiny_model, train_tokenizer

    texts = [f"Question: what is item {i}? Answer: item {i} is a {w}." for i, w in enumerate(["cat", "dog", "tree", "river"] * 50)]
    tokenizer = train_tokenizer(texts, vocab_size=400)
    model = build_tiny_model(tokenizer, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128)
    return model, tokenizer


@pytest.fixture
def saved_model_dir(tmp_path, tiny_lm):
    """`tiny_lm` saved with `save_pretrained`: what a hub model looks like once downloaded."""
    model, tokenizer = tiny_lm
    path = tmp_path / "local-llama"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def compose_cfg():
    """Compose the real config (conf/) with overrides, as the CLI would."""
    from hydra import compose, initialize_config_module

    from unlearn_bench.config import register_configs

    register_configs()

    def _compose(overrides: list[str]):
        with initialize_config_module(config_module="unlearn_bench.conf", version_base="1.3"):
            return compose("config", overrides=overrides)

    return _compose


@pytest.fixture
def smoke_overrides(tmp_path):
    """A seconds-long run writing to tmp_path (its cache is shared by the test's runs)."""
    return ["experiment=smoke", f"paths.cache_dir={tmp_path / 'cache'}", f"paths.results_dir={tmp_path / 'results'}"]
