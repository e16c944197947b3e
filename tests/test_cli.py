"""The console command as a user runs it: --help, --cfg job, a sweep that trains once, failures recorded."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EXE = shutil.which("unlearn-bench") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "unlearn-bench")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_help_and_cfg_job(tmp_path):
    help_out = cli("--help", cwd=tmp_path)
    assert help_out.returncode == 0 and "method: ga, ga_kl, graddiff" in help_out.stdout
    job = cli("--cfg", "job", "method=ga", cwd=tmp_path)
    assert job.returncode == 0 and "name: ga" in job.stdout and "intent: removal" in job.stdout


def test_typo_fails_at_start_naming_the_choices(tmp_path):
    out = cli("method=npoo", cwd=tmp_path)
    assert out.returncode != 0 and "npo" in out.stderr and "Available options" in out.stderr


def test_multirun_trains_once_and_records_failures(tmp_path):
    common = ["experiment=smoke", f"paths.cache_dir={tmp_path / 'cache'}", f"paths.results_dir={tmp_path / 'results'}",
              "method.max_steps=2", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    out = cli("-m", "method=ga,graddiff", *common, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stdout + out.stderr
    assert log.count("finetune: reusing cached") == 2  # the second job reuses target and retain
    runs = list((tmp_path / "results" / "fictitious" / "tiny").glob("*/*/run.json"))
    assert len(runs) == 2 and all(json.loads(p.read_text())["status"] == "ok" for p in runs)
    assert "graddiff on fictitious" in out.stdout and "forget_quality" in out.stdout

    bad = cli("-m", "method=ga,npo", "model.path=/nonexistent/model", "model.name=missing", *common, cwd=tmp_path)
    failed = list((tmp_path / "results" / "fictitious" / "missing").glob("*/*/run.json"))
    assert len(failed) == 2, bad.stderr[-2000:]
    assert all(json.loads(p.read_text())["status"] == "failed" for p in failed)


def test_single_run_input_errors_are_one_line(tmp_path, shared_data):
    common = ["experiment=smoke", f"paths.cache_dir={tmp_path / 'cache'}", f"paths.results_dir={tmp_path / 'results'}"]
    seed = cli(*common, "seed=-1", cwd=tmp_path)
    assert seed.returncode == 2 and "Traceback" not in seed.stderr
    assert seed.stderr.strip().splitlines()[-1] == "error: seed=-1: must be an integer with 0 <= seed < 2**32 (numpy's seed range)"
    # (HYDRA_FULL_ERROR=1 keeps the traceback: tests/test_errors.py)

    data = Path(shutil.copytree(shared_data / "tofu", tmp_path / "tofu"))
    lines = (data / "forget01.json").read_text().splitlines()
    lines[2] = json.dumps({"question": json.loads(lines[2])["question"]})  # record 3 loses its answer
    (data / "forget01.json").write_text("\n".join(lines) + "\n")
    bad = cli(*common, "bench=tofu", f"bench.data_dir={data}", "bench.forget_split=forget01", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == f"error: {data / 'forget01.json'}: record 3: missing field 'answer'"
