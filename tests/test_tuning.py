"""The tuning grid's selection rule (unlearn_bench/report/tuning.py) on hand-made points."""
import pytest

from unlearn_bench.report.tuning import GRID, Point, admissible, choose, sweep_command

TARGET = Point("finetuned", 0.0, 0, 1e-20, 0.80, 0.90)


def point(lr: float, epochs: int, fq: float, mu: float, rouge: float) -> Point:
    return Point("npo", lr, epochs, fq, mu, rouge)


def test_choose_maximises_forget_quality_among_admissible_points():
    best_but_broken = point(1e-3, 5, 0.5, 0.70, 0.95)   # utility 0.70 < 0.9 x 0.80
    low_rouge = point(1e-3, 2, 0.3, 0.80, 0.80)         # retain ROUGE-L 0.80 < 0.9 x 0.90
    ok_low, ok_high = point(1e-4, 2, 1e-6, 0.80, 0.90), point(3e-4, 5, 0.02, 0.73, 0.82)
    assert [admissible(p, TARGET) for p in (best_but_broken, low_rouge, ok_low, ok_high)] == [False, False, True, True]
    assert choose([best_but_broken, low_rouge, ok_low, ok_high], TARGET) == ok_high
    assert choose([best_but_broken, low_rouge], TARGET) is None


def test_ties_prefer_the_cheaper_point():
    a, b = point(1e-4, 2, 1.0, 0.8, 0.9), point(1e-4, 5, 1.0, 0.8, 0.9)
    assert choose([b, a], TARGET) == a


def test_every_method_has_a_grid_and_the_sweep_uses_another_world_seed(tmp_path):
    from unlearn_bench.methods.registry import method_class  # raises on an unknown name

    for name in GRID:
        method_class(name)
    command = sweep_command("npo", GRID["npo"], tmp_path)
    assert "bench.world_seed=1" in command and "eval.diagnostics=[]" in command
    assert "method.lr=0.0001,0.0003,0.001" in command and "method.epochs=2,5" in command


def test_apply_choice_rewrites_lr_and_epochs_and_keeps_the_rest(tmp_path):
    from unlearn_bench.report.tuning import apply_choice

    config = tmp_path / "npo.yaml"
    config.write_text("# header\nlr: 0.001   # old; paper / open-unlearning: 1e-5\nepochs: 5\nbeta: 0.1\n")
    apply_choice(config, point(3e-4, 2, 0.1, 0.8, 0.9))
    lines = config.read_text().splitlines()
    assert lines[0] == "# header" and lines[3] == "beta: 0.1"
    assert lines[1].startswith("lr: 0.0003   # make tune") and lines[1].endswith("; paper / open-unlearning: 1e-5")
    assert lines[2].startswith("epochs: 2   # make tune")


def test_strong_setting_forgets_in_its_outputs_and_passes_the_gate():
    from unlearn_bench.report.strong import STRONG_GRID, choose_strong, none_share, strong_config

    target = Point("finetuned", 0.0, 0, 1e-27, 0.80, 0.98, forget_rouge=0.99)
    retain = Point("retain", 0.0, 0, 1.0, 0.80, 0.97, forget_rouge=0.25)

    def strong(lr: float, epochs: int, mu: float, rouge: float, forget: float) -> Point:
        return Point("npo", lr, epochs, 0.1, mu, rouge, forget)

    tuned = strong(3e-4, 2, 0.78, 0.91, 0.64)       # share (0.64 - 0.25) / 0.74 = 0.53: still answers
    wreck = strong(3e-3, 5, 0.10, 0.05, 0.01)       # forgets, but utility 0.10 < 0.5 x 0.80: the gate's collapsed
    mild, harsh = strong(1e-3, 2, 0.70, 0.60, 0.40), strong(1e-3, 5, 0.60, 0.50, 0.30)  # shares 0.20 and 0.07
    assert none_share(tuned, target, retain) == pytest.approx(0.39 / 0.74)
    assert choose_strong([tuned, wreck, mild, harsh], target, retain) == mild  # the least damage that forgets
    assert choose_strong([tuned, wreck], target, retain) is None
    assert "lr: 0.001\nepochs: 2\nmax_steps: 0" in strong_config(mild)
    assert set(STRONG_GRID) == set(GRID)  # every fine-tuning method the tuning grid has


def test_experiment_strong_fails_at_start_for_a_method_without_a_strong_setting(compose_cfg):
    from unlearn_bench.pipeline.validation import ConfigError, check_fields

    with pytest.raises(ConfigError, match="no conf/method_experiment/npo_strong.yaml .*unlearn_bench.report.strong"):
        check_fields(compose_cfg(["experiment=strong", "method=npo"]))
