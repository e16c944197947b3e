"""`experiment=smoke` sizes per benchmark and the tiny model's fit to real TOFU."""
from __future__ import annotations

from pathlib import Path

from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
from unlearn_bench.benchmarks.tofu.config import TofuConfig
from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.models.tiny import train_tokenizer


def test_tiny_model_overlay_is_scoped_to_tofu(compose_cfg) -> None:
    tofu, default = compose_cfg(["bench=tofu"]), compose_cfg([])
    assert (tofu.model.vocab_size, tofu.model.max_length) == (2048, 256)
    assert (default.model.vocab_size, default.model.max_length) == (1024, 128)  # the embedded default untouched
    assert compose_cfg(["bench=tofu", "model.max_length=64"]).model.max_length == 64  # the command line wins
    smoke = compose_cfg(["bench=tofu", "experiment=smoke"])
    assert smoke.model.vocab_size == 2048 and smoke.bench.train_retain_examples == 160


def test_tofu_training_subset_keeps_the_forget_split(shared_data: Path) -> None:
    full = TofuBenchmark(TofuConfig(data_dir=str(shared_data / "tofu"), forget_split="forget01")).data()
    sub = TofuBenchmark(TofuConfig(data_dir=str(shared_data / "tofu"), forget_split="forget01", train_retain_examples=160)).data()
    assert (len(sub.target_train), len(sub.retain_train), len(sub.forget)) == (200, 160, 40)
    assert sub.forget == full.forget and set(sub.forget) <= set(sub.target_train)
    assert sub.retain_train == full.retain_train[:160] and not set(sub.forget) & set(sub.retain_train)
    keys = [TofuBenchmark(TofuConfig(data_dir="d", train_retain_examples=n)).data_key("target") for n in (None, 160)]
    assert keys[0] != keys[1]  # a subset-trained target is never reused as the full one


def test_tiny_tokenizer_and_max_length_cover_real_tofu(compose_cfg, shared_data: Path) -> None:
    model = compose_cfg(["bench=tofu"]).model
    bench = TofuBenchmark(TofuConfig(data_dir=str(shared_data / "tofu"), eval_max_examples=None))
    data = bench.data()
    tok = train_tokenizer(data.tokenizer_corpus, model.vocab_size)
    fmt = PromptFormat(model.prompt_format)
    examples = data.target_train + [qa.as_qa() for split in bench.eval_splits().values() for qa in split]
    cut = sum(len(encode_example(qa, tok, fmt, 10_000)[0]) > model.max_length for qa in examples)
    assert cut / len(examples) <= 0.001  # scripts/tofu_tiny_coverage.py: 100.0% of both
