"""Every method and every model composes with every bench; typos and wrong types fail at start, naming the choices."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from unlearn_bench.config import register_configs
from unlearn_bench.pipeline.runner import build_method

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def hydra_ctx():
    register_configs()
    with initialize_config_module(config_module="unlearn_bench.conf", version_base="1.3"):
        yield


def pairwise() -> list[tuple[str, str, str]]:
    """Every method with every bench (default model), every model with every bench (default method): the groups
    interact only through the optional pair files of config.yaml (method_for_bench, model_for_bench, ...), all keyed
    by bench and one other group, so this covers each pair; the full product (2,310 runs, 5 min) adds none."""
    methods, models, benches = options("method"), options("model"), options("bench")
    return sorted({(m, "tiny", b) for m in methods for b in benches} | {("npo", m, b) for m in models for b in benches})


def test_pairwise_covers_every_pair_file():
    pairs = {(m, b) for m, _, b in pairwise()} | {(mo, b) for _, mo, b in pairwise()}
    for group, files in (("method_for_bench", "{b}_{x}"), ("model_for_bench", "{x}_{b}")):
        for path in (CONF / group).glob("*.yaml"):
            assert any(path.stem == files.format(b=b, x=x) for x, b in pairs), path


@pytest.mark.parametrize("method,model,bench", pairwise())
def test_every_pair_composes(method, model, bench):
    cfg = compose("config", overrides=[f"method={method}", f"model={model}", f"bench={bench}"])
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert cfg.method.name == method and cfg.method.intent in ("removal", "suppression", "none")
    build_method(cfg.method)


def test_unknown_option_names_the_choices():
    with pytest.raises(MissingConfigException) as e:
        compose("config", overrides=["method=npoo"])
    assert "npo" in str(e.value) and "graddiff" in str(e.value)


def test_wrong_type_fails():
    with pytest.raises((ConfigCompositionException, ValidationError)) as e:
        compose("config", overrides=["method.lr=abc"])
    assert "lr" in str(e.value) or "lr" in str(e.value.__cause__)


def test_unknown_field_names_the_schema():
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as e:
        compose("config", overrides=["model.nlayers=2"])
    assert "nlayers" in str(e.value) + str(e.value.__cause__)


def test_experiment_overlay_and_sweepable_method_fields():
    cfg = compose("config", overrides=["experiment=smoke", "method=npo", "method.beta=0.05"])
    assert cfg.bench.num_authors < 200 and cfg.method.beta == 0.05


def test_reference_experiments_use_the_references_schedules():
    # WMDP's rmu/unlearn.py and MUSE's iterative.py train at a constant rate without warmup.
    for experiment, method in (("wmdp_rmu_zephyr", "rmu"), ("muse_news_llama2", "npo")):
        cfg = compose("config", overrides=[f"experiment={experiment}", f"method={method}"])
        assert (str(cfg.method.scheduler.value), cfg.method.warmup_ratio) == ("constant", 0.0), experiment
    # ... and MUSE's baselines train on 2048-token windows of the concatenated texts (baselines/scripts/unlearn_news.sh)
    cfg = compose("config", overrides=["experiment=muse_news_llama2", "method=npo"])
    assert (cfg.bench.train_layout, cfg.bench.chunk_tokens) == ("windows", 2048)
