"""`make tune` (unlearn_bench/report/tuning.py) and its objective (report/objective.py) on hand-made points and
metric rows; the Optuna studies' bookkeeping on a real SQLite storage, without running anything."""
import json
import math
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from unlearn_bench.report.objective import (Point, admissible, check_direction, objective, run_objective,
                                            sqlite_storage)
from unlearn_bench.report.tuning import SPACES, choose, current_params, prepare_study, sweep_command

CONF = Path(__file__).resolve().parents[1] / "conf"
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


def test_objective_is_forget_quality_above_the_floors_and_minus_the_shortfall_below():
    # floors: utility 0.72, ROUGE-L 0.81
    assert objective(point(1e-4, 2, 0.02, 0.73, 0.82), TARGET) == 0.02             # above both floors: admissible
    assert objective(point(1e-4, 2, 0.5, 0.64, 0.95), TARGET) == pytest.approx(-0.1)   # (0.72 - 0.64) / 0.80
    assert objective(point(1e-4, 2, 0.5, 0.80, 0.72), TARGET) == pytest.approx(-0.1)   # (0.81 - 0.72) / 0.90
    assert objective(point(1e-4, 2, 0.5, 0.64, 0.72), TARGET) == pytest.approx(-0.2)   # both
    # a diverged run has no metrics: it scores as zero utility and ROUGE-L, below every real point
    assert objective(point(1e-4, 2, math.nan, math.nan, math.nan), TARGET) == pytest.approx(-1.8)
    # a target of zero utility sets a floor of zero (experiment=smoke's target)
    assert objective(point(1e-4, 2, 0.3, 0.0, 0.0), Point("finetuned", 0, 0, 0, 0.0, 0.5)) == pytest.approx(-0.9)


def rows(method: str, fq: float | None, mu: float | None, rouge: float | None) -> list[dict]:
    return [{"method": method, "split": split, "metric": metric, "value": value}
            for split, metric, value in [("summary", "forget_quality", fq), ("summary", "model_utility", mu),
                                         ("retain", "rougeL_recall", rouge), ("forget", "rougeL_recall", 0.1)]
            if value is not None]


def write_run(run_dir, method_rows: list[dict]) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml({"method": {"name": "npo", "lr": 3e-4, "epochs": 2}}))
    lines = rows("retain", 1.0, 0.79, 0.95) + rows("finetuned", 1e-20, 0.80, 0.90) + method_rows
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")


def test_run_objective_reads_the_run_folder(tmp_path):
    write_run(tmp_path / "ok", rows("npo", 0.03, 0.75, 0.85))
    assert run_objective(tmp_path / "ok") == 0.03
    write_run(tmp_path / "broken", rows("npo", 0.3, 0.76, 0.63))  # retain ROUGE-L 0.63 < 0.81
    assert run_objective(tmp_path / "broken") == pytest.approx(-0.2)
    status = {"method": "npo", "split": "run", "metric": "status", "value": None, "status": "diverged"}
    write_run(tmp_path / "diverged", [status])
    assert run_objective(tmp_path / "diverged") == pytest.approx(-1.8)


def test_run_objective_without_the_target_names_the_file(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("method: {name: npo, lr: 0.001, epochs: 2}\n")
    (run_dir / "metrics.jsonl").write_text(json.dumps(rows("npo", 0.1, 0.8, 0.9)[0]) + "\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl: no model_utility .*'finetuned'"):
        run_objective(run_dir)


def test_the_sweeper_must_maximise():
    check_direction("maximize")
    for wrong in ("minimize", ["maximize", "maximize"]):
        with pytest.raises(ValueError, match="hydra/sweeper=tune"):
            check_direction(wrong)


def test_every_method_has_a_space_holding_its_current_config(tmp_path):
    from unlearn_bench.methods.registry import method_class  # raises on an unknown name

    for name, space in SPACES.items():
        method_class(name)
        cfg = OmegaConf.load(CONF / "method" / f"{name}.yaml")
        assert space.lr[0] <= cfg.lr <= space.lr[1] and cfg.epochs in space.epochs, name  # the first trial is in it
    assert current_params("ga", SPACES["ga"]) == {"method.lr": 1e-4, "method.epochs": 5}  # conf/method/ga.yaml
    assert current_params("npo", SPACES["npo"])["method.lr"] == 3e-4
    assert "method.epochs" not in current_params("ihl", SPACES["ihl"])  # epochs fixed: not a parameter
    command = sweep_command("npo", SPACES["npo"], tmp_path, 4, 2)
    assert "hydra/sweeper=tune" in command and "hydra.sweeper.n_trials=4" in command
    assert "hydra.sweeper.sampler.seed=2" in command and f"hydra.sweeper.storage.path={tmp_path}/optuna.db" in command
    assert "bench.world_seed=1" in command and "eval.diagnostics=[]" in command
    assert "method.lr=tag(log,interval(0.0001,0.002))" in command and "method.epochs=2,5" in command


def test_prepare_study_queues_the_current_config_and_resumes_a_killed_search(tmp_path):
    storage = sqlite_storage(str(tmp_path / "new" / "optuna.db"))  # its folder is created
    first = {"method.lr": 3e-4}
    assert prepare_study(storage, "tune_npo", 3, first) == (3, 0)
    assert prepare_study(storage, "tune_npo", 3, first) == (3, 1)  # queues nothing more (the queued trial counts)
    study = optuna.load_study(study_name="tune_npo", storage=storage)
    distribution = optuna.distributions.LogUniformDistribution(1e-4, 2e-3)
    trial = study.ask({"method.lr": distribution})  # what the sweeper does: the queued config comes first
    assert trial.params == first and len(study.trials) == 1
    study.tell(trial, 0.01)
    study.tell(study.ask({"method.lr": distribution}), state=TrialState.FAIL)  # its run raised
    killed = study.ask({"method.lr": distribution})  # a kill leaves this one running
    # one trial completed: two to go, the first of them the killed one again, and a seed not used before
    assert prepare_study(storage, "tune_npo", 3, first) == (2, 3)
    study = optuna.load_study(study_name="tune_npo", storage=storage)  # as the sweeper's process opens it
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.WAITING]
    assert study.ask({"method.lr": distribution}).params == killed.params
    assert prepare_study(storage, "tune_npo", 3, first) == (2, 4)  # killed again: still two to go


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
    assert set(STRONG_GRID) == set(SPACES)  # every fine-tuning method make tune searches


def test_experiment_strong_fails_at_start_for_a_method_without_a_strong_setting(compose_cfg):
    from unlearn_bench.pipeline.validation import ConfigError, check_fields

    # ceu: make tune-strong found no point of its grid that forgets and passes the utility gate
    with pytest.raises(ConfigError, match="no conf/method_experiment/ceu_strong.yaml .*unlearn_bench.report.strong"):
        check_fields(compose_cfg(["experiment=strong", "method=ceu"]))
    check_fields(compose_cfg(["experiment=strong", "method=npo"]))  # npo has one: no error
