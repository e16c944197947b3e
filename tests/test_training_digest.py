"""A model's cache key covers the texts it is trained on, so a change of the world generator (no data files to
fingerprint) retrains instead of reusing models of the old world."""
from __future__ import annotations

import dataclasses

from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark
from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA
from unlearn_bench.pipeline.context import Context


def _context(compose_cfg, smoke_overrides, data=None) -> Context:
    cfg = compose_cfg(smoke_overrides)
    bench = FictitiousBenchmark(FictitiousConfig(num_authors=cfg.bench.num_authors, world_seed=cfg.bench.world_seed))
    return Context(cfg, bench, data or bench.data(), PromptFormat(cfg.model.prompt_format), accelerator=None)


def test_model_keys_change_with_the_training_texts(compose_cfg, smoke_overrides) -> None:
    ctx = _context(compose_cfg, smoke_overrides)
    same = _context(compose_cfg, smoke_overrides)
    assert ctx.model_key("target") == same.model_key("target")
    assert ctx.model_key("target")["training_texts"] != ctx.model_key("retain")["training_texts"]
    data = ctx.data
    # One answer reworded, as a generator change would: the target's key moves, the retain model's too only if
    # its own texts changed (the reworded record is a forget record, which the retain model never sees).
    forget_qa = data.forget[0]
    reworded = [QA(qa.question, qa.answer + " indeed") if qa == forget_qa else qa for qa in data.target_train]
    changed = _context(compose_cfg, smoke_overrides, dataclasses.replace(data, target_train=reworded))
    assert changed.model_key("target") != ctx.model_key("target")
    assert changed.model_key("retain") == ctx.model_key("retain")
    # A wrong answer's wording lives only in the tokenizer corpus; it still reaches both keys.
    corpus = data.tokenizer_corpus[:-1] + [data.tokenizer_corpus[-1] + "!"]
    retokenized = _context(compose_cfg, smoke_overrides, dataclasses.replace(data, tokenizer_corpus=corpus))
    assert retokenized.model_key("retain") != ctx.model_key("retain")


def test_replacing_the_context_keeps_the_keys_of_the_data_as_first_loaded(compose_cfg, smoke_overrides) -> None:
    ctx = _context(compose_cfg, smoke_overrides)
    key = ctx.model_key("target")
    swapped = dataclasses.replace(ctx, data=dataclasses.replace(ctx.data, target_train=ctx.data.target_train[:1]))
    assert swapped.model_key("target") == key  # a generated forget corpus replaces data after training
