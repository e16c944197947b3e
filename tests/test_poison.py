"""Poisoned forget requests (bench.poison): the stated fraction, drawn by seed, never a forget item, scored on the
poisoned items' own split; the detector's statistics by hand; bad settings fail at start naming the field."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unlearn_bench.benchmarks.base import BenchData
from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark
from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
from unlearn_bench.data.records import QA
from unlearn_bench.pipeline.poison import drop_flagged
from unlearn_bench.pipeline.runner import run, run_dir_for
from unlearn_bench.poison.config import PoisonConfig
from unlearn_bench.poison.request import poison_count
from unlearn_bench.poison.screen import robust_z, screen_flags, screen_metrics

SOURCE = {"retain": "retain", "utility": "world_facts", "neighbour": "real_authors"}


def world(**poison) -> FictitiousBenchmark:
    return FictitiousBenchmark(FictitiousConfig(poison=PoisonConfig(**poison)))


@pytest.mark.parametrize("strategy,rate", [("retain", 0.05), ("retain", 0.1), ("retain", 0.25), ("utility", 0.1),
                                           ("neighbour", 0.05), ("neighbour", 0.1)])
def test_request_holds_the_stated_fraction_of_its_own_split_and_no_forget_item(strategy, rate):
    bench = world(rate=rate, strategy=strategy)
    clean, data = bench.splits()["forget"], bench.data()
    n_poison = sum(data.forget_poisoned)
    # the clean forget split stays whole and first; the poison makes up `rate` of the request to the nearest item
    assert data.forget[: len(clean)] == [qa.as_qa() for qa in clean] and not any(data.forget_poisoned[: len(clean)])
    assert len(data.forget) == len(clean) + n_poison == len(data.forget_perturbed) == len(data.forget_poisoned)
    assert abs(n_poison / len(data.forget) - rate) <= 0.5 / len(data.forget) + 1e-12
    assert n_poison == round(rate * len(clean) / (1 - rate)) == poison_count(rate, len(clean))
    poisoned = data.forget[len(clean):]
    assert len(set(poisoned)) == n_poison
    assert {qa.question for qa in poisoned}.isdisjoint({ex.question for ex in clean})
    # drawn from the evaluation split the strategy names (so that split's own rows see the damage too)
    assert set(poisoned) <= {ex.as_qa() for ex in bench.eval_splits()[SOURCE[strategy]]}
    # the wrong answers methods train on stay off every scored answer, for poisoned items too
    scored = {a for split in bench.eval_splits().values() for ex in split for a in (ex.answer, *ex.perturbed_answers)}
    assert not {a for alts in data.forget_perturbed[len(clean):] for a in alts} & scored


def test_draw_is_reproducible_by_seed_and_moves_with_it():
    draw = lambda seed: world(rate=0.1, strategy="retain", seed=seed).data().forget  # noqa: E731
    assert draw(0) == draw(0)
    assert set(draw(0)) != set(draw(1))


def test_rate_zero_leaves_the_request_and_evaluation_alone():
    plain, zero = FictitiousBenchmark(FictitiousConfig()), world(rate=0.0, strategy="utility")
    assert zero.data() == plain.data() and zero.poison is None


@pytest.mark.parametrize("poison,message", [
    ({"rate": 1.0}, "bench.poison.rate=1.0: use a fraction in [0, 1)"),
    ({"rate": -0.1}, "bench.poison.rate=-0.1: use a fraction in [0, 1)"),
    ({"rate": 0.1, "strategy": "random"}, "bench.poison.strategy='random': choose from retain, utility, neighbour"),
    ({"rate": 0.0, "strategy": "random"}, "choose from retain, utility, neighbour"),  # a typo fails at rate 0 too
    ({"rate": 0.25, "strategy": "utility"},
     "needs 67 poisoned items, but bench.poison.strategy=utility draws from the 'world_facts' split, which holds 24: "
     "lower the rate or choose from retain"),
    ({"rate": 0.001}, "less than one item"),
    ({"rate": 0.1, "screen_z": 0}, "bench.poison.screen_z=0"),
])
def test_bad_poison_settings_fail_before_training_naming_the_field(poison, message):
    with pytest.raises(ValueError) as err:
        world(**poison).data()
    assert message in str(err.value)


def test_tofu_sources_and_a_neighbour_set_too_small(shared_data: Path):
    from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
    from unlearn_bench.benchmarks.tofu.config import TofuConfig

    def tofu(**poison):
        return TofuBenchmark(TofuConfig(data_dir=str(shared_data / "tofu"), poison=PoisonConfig(**poison)))

    bench = tofu(rate=0.1, strategy="neighbour")
    data = bench.data()
    clean = bench.forget_perturbed
    assert sum(data.forget_poisoned) == 44 and len(data.forget) == 444  # 10% of a 444-item request
    assert set(data.forget[400:]) <= {ex.as_qa() for ex in bench.eval_splits()["real_authors"]}
    assert {qa.question for qa in data.forget[400:]}.isdisjoint({ex.question for ex in clean})
    with pytest.raises(ValueError, match="needs 133 poisoned items.*'real_authors' split, which holds 100"):
        tofu(rate=0.25, strategy="neighbour").data()


def test_robust_z_and_flags_by_hand():
    # median 3, |x - 3| = 2 1 0 1 7 -> MAD 1, scale 1.4826
    np.testing.assert_allclose(robust_z([1, 2, 3, 4, 10]), np.array([-2, -1, 0, 1, 7]) / 1.4826)
    losses = [1.0, 1.1, 0.9, 1.05, 0.95, 0.001, 1.0]     # item 5 is far easier (in log terms)
    similarity = [0.5, 0.55, 0.45, 0.5, 0.52, 0.5, 1.0]  # item 6 duplicates a retain record
    assert screen_flags(losses, similarity, z=2.0) == [False] * 5 + [True, True]
    rows = {m.metric: m.value for m in screen_metrics([True, True, False, True], [True, False, False, True], dropped=True)}
    assert rows == {"injected": 2, "flagged": 3, "precision": 2 / 3, "recall": 1.0, "dropped": 3}
    nothing = {m.metric: m.value for m in screen_metrics([False, False], [True, False], dropped=False)}
    assert math.isnan(nothing["precision"]) and nothing["recall"] == 0 and nothing["dropped"] == 0


def test_dropping_flagged_items_keeps_the_request_aligned():
    forget = [QA(f"q{i}", f"a{i}") for i in range(4)]
    data = BenchData([], [], forget, [], forget_perturbed=[[f"w{i}"] for i in range(4)],
                     forget_poisoned=[False, False, True, True])
    kept = drop_flagged(data, [False, True, True, False])
    assert kept.forget == [forget[0], forget[3]]
    assert kept.forget_perturbed == [["w0"], ["w3"]] and kept.forget_poisoned == [False, True]


def rows_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_poisoned_run_scores_the_poisoned_items_on_their_own_split(compose_cfg, smoke_overrides):
    """The `poisoned_retain` rows are the retain split's per-example log read at the poisoned items' indices."""
    cfg = compose_cfg(smoke_overrides + ["method=ga", "bench.poison.rate=0.25", "bench.poison.strategy=retain",
                                         "bench.poison.screen=true"])
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = rows_of(run_dir)
    got = {(r["method"], r["split"], r["metric"]): r["value"] for r in rows}
    bench = FictitiousBenchmark(FictitiousConfig(**{k: v for k, v in cfg.bench.items() if k != "poison"},
                                                 poison=PoisonConfig(**cfg.bench.poison)))
    retain = bench.eval_splits()["retain"]
    index = [i for i, ex in enumerate(retain) if ex in bench.poison.items]
    assert len(index) == len(bench.poison.items) == got[("ga", "poison_request", "injected")] > 0
    log = json.loads((run_dir / "eval_log_retain.json").read_text())
    keys = [str(i) for i in index]
    assert got[("ga", "poisoned_retain", "rouge")] == pytest.approx(np.mean([log["rougeL_recall"][k] for k in keys]))
    assert got[("ga", "poisoned_retain", "prob")] == pytest.approx(np.mean([math.exp(-log["avg_gt_loss"][k]) for k in keys]))
    assert ("finetuned", "poisoned_retain", "rouge") in got  # the target's own value on the same items
    # the detector's rows: a retain record in the request matches itself in the retain set
    assert got[("ga", "poison_request", "recall")] == 1.0
    assert got[("ga", "poison_request", "dropped")] == got[("ga", "poison_request", "flagged")]


def test_bad_strategy_is_a_one_line_error_at_start(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "unlearn_bench.cli", "bench.poison.strategy=everything",
                           f"paths.cache_dir={tmp_path / 'c'}", f"paths.results_dir={tmp_path / 'r'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "bench.poison.strategy='everything': choose from retain, utility, neighbour" in proc.stderr
    assert not (tmp_path / "c" / "finetune").exists()  # nothing trained


def test_poison_report_slope_is_the_utility_lost_between_the_rates(compose_cfg, smoke_overrides):
    """Two rates, one seed: the slope is the difference over the rate gap, per 10% poison; the figure is drawn."""
    from unlearn_bench.report.poison import damage_table, poison_runs, write_poison_report

    utility = {}
    for rate in (0.0, 0.25):
        cfg = compose_cfg(smoke_overrides + ["method=ga", f"bench.poison.rate={rate}"])
        assert run(cfg).status == "ok"
        utility[rate] = next(r["value"] for r in rows_of(run_dir_for(cfg)[0])
                             if (r["method"], r["split"], r["metric"]) == ("ga", "summary", "model_utility"))
    results = Path(cfg.paths.results_dir)
    runs = poison_runs(results)
    assert sorted(runs["rate"]) == [0.0, 0.25] and set(runs["strategy"]) == {"retain"}
    (row,) = damage_table(runs).to_dict("records")
    lost = (utility[0.0] - utility[0.25]) / 0.25 * 0.1
    assert row["utility lost per 10% poison"] == f"{lost:.3f} [{lost:.3f}, {lost:.3f}]"
    paths = write_poison_report(results)
    assert {p.name for p in paths} == {"poison.md", "poison.png", "poison.svg"} and all(p.stat().st_size for p in paths)
