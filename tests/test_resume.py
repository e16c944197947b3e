from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unlearn_bench.store.results import MetricRow, atomic_write_json, atomic_write_jsonl, atomic_write_text
from unlearn_bench.store.resume import find_completed_run, read_metric_rows, run_is_complete

CONF = Path(__file__).resolve().parents[1] / "conf"


def make_run(root: Path, run_id: str, status: str = "ok", config_hash: str = "abc", method: str = "ga") -> Path:
    run_dir = root / "tofu" / "tiny" / method / run_id
    atomic_write_text(run_dir / "config.yaml", f"method: {method}\n")
    atomic_write_jsonl(run_dir / "metrics.jsonl", [MetricRow("tofu", "tiny", method, "forget", "rougeL", 0.5, False).to_dict()])
    atomic_write_jsonl(run_dir / "generations.jsonl", [{"prompt": "q", "output": "a"}])
    atomic_write_text(run_dir / "summary.md", "# run\n")
    atomic_write_json(run_dir / "run.json", {"status": status, "config_hash": config_hash, "run_id": run_id, "error": None})
    return run_dir


def test_finished_run_is_found_for_its_config_hash(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r1")
    assert run_is_complete(run_dir)
    assert find_completed_run(tmp_path, "tofu", "tiny", "ga", "abc") == run_dir
    assert find_completed_run(tmp_path, "tofu", "tiny", "ga", "other-hash") is None
    assert find_completed_run(tmp_path, "tofu", "tiny", "npo", "abc") is None
    assert find_completed_run(tmp_path / "nowhere", "tofu", "tiny", "ga", "abc") is None


def test_diverged_run_is_reused_but_failed_run_is_redone(tmp_path: Path) -> None:
    diverged = make_run(tmp_path, "d", status="diverged", config_hash="h-div")
    failed = make_run(tmp_path, "f", status="failed", config_hash="h-fail")
    assert run_is_complete(failed)  # the report shows it...
    assert find_completed_run(tmp_path, "tofu", "tiny", "ga", "h-fail") is None  # ...but a rerun retries it
    assert find_completed_run(tmp_path, "tofu", "tiny", "ga", "h-div") == diverged


def test_failed_run_needs_only_config_and_run_json(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "f", status="failed")
    for name in ("metrics.jsonl", "generations.jsonl", "summary.md"):
        (run_dir / name).unlink()
    assert run_is_complete(run_dir)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "run.json").unlink(),
        lambda d: (d / "run.json").write_text('{"status": "ok", "config_h'),
        lambda d: (d / "run.json").write_text('{"status": "running", "config_hash": "abc"}'),
        lambda d: (d / "metrics.jsonl").write_text((d / "metrics.jsonl").read_text()[:-20]),
        lambda d: (d / "generations.jsonl").unlink(),
        lambda d: (d / "summary.md").unlink(),
    ],
    ids=["no-run-json", "truncated-run-json", "unknown-status", "truncated-metrics", "no-generations", "no-summary"],
)
def test_incomplete_run_is_redone(tmp_path: Path, damage) -> None:
    run_dir = make_run(tmp_path, "r1")
    damage(run_dir)
    assert not run_is_complete(run_dir)
    assert find_completed_run(tmp_path, "tofu", "tiny", "ga", "abc") is None


def test_newest_complete_run_wins(tmp_path: Path) -> None:
    old, new = make_run(tmp_path, "old"), make_run(tmp_path, "new")
    os.utime(old / "run.json", ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(new / "run.json", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert find_completed_run(tmp_path, "tofu", "tiny", "ga", "abc") == old


def test_metric_rows_name_the_bad_field(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    good = MetricRow("tofu", "tiny", "ga", "forget", "prob", 1, True).to_dict()
    path.write_text(json.dumps(good) + "\n")
    assert read_metric_rows(path)[0].value == 1.0
    path.write_text(json.dumps(good) + "\n" + json.dumps({k: v for k, v in good.items() if k != "metric"}) + "\n")
    with pytest.raises(ValueError, match=r"record 2: missing field 'metric'"):
        read_metric_rows(path)
    path.write_text(json.dumps({**good, "value": "0.5"}) + "\n")
    with pytest.raises(ValueError, match=r"record 1: field 'value'"):
        read_metric_rows(path)


@pytest.mark.parametrize(("launcher", "target", "field", "expected"), [
    ("local", "hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs", 2),
    ("slurm", "hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "gpus_per_node", 1),
])
def test_launcher_configs_extend_the_plugins(launcher: str, target: str, field: str, expected: int) -> None:
    pytest.importorskip(f"hydra_plugins.{target.split('.')[0]}")
    from hydra import compose, initialize_config_dir

    from unlearn_bench.config import register_configs

    register_configs()  # the primary config's schemas, as cli.py registers them
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
        overridden = compose("config", overrides=[f"hydra/launcher={launcher}", f"hydra.launcher.{field}=3"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == f"hydra_plugins.{target}"
    assert cfg.hydra.launcher[field] == expected
    assert overridden.hydra.launcher[field] == 3  # user overrides still apply on top of our defaults


@pytest.mark.slow
def test_local_launcher_runs_a_multirun(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    shutil.copytree(CONF / "hydra", tmp_path / "conf" / "hydra")
    (tmp_path / "conf" / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "app.py").write_text(
        "import hydra, pathlib\n"
        "from hydra.core.hydra_config import HydraConfig\n"
        "@hydra.main(config_path='conf', config_name='config', version_base='1.3')\n"
        "def main(cfg):\n"
        "    pathlib.Path(HydraConfig.get().runtime.output_dir, f'seed{cfg.seed}.done').write_text('')\n"
        "main()\n"
    )
    subprocess.run(
        [sys.executable, "app.py", "-m", "hydra/launcher=local", "seed=1,2,3", "hydra.sweep.dir=sweep"],
        cwd=tmp_path, check=True, capture_output=True, timeout=120,
    )
    assert sorted(p.name for p in (tmp_path / "sweep").rglob("*.done")) == ["seed1.done", "seed2.done", "seed3.done"]
