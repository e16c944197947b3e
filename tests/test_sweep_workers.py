"""A sweep killed with SIGKILL takes its joblib workers with it: the job running stops, the job that begins after the
kill does not run, and no process of the sweep is left after 10 s (runtime/workers.py)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[1] / "conf"

# What cli.main does first in a sweep's job, then a job that writes a result after a few seconds. Job 2 begins only
# once the main process is dead, as a job does whose worker was still importing torch when the sweep was killed.
APP = """
import os, pathlib, sys, time
import hydra
from hydra.core.hydra_config import HydraConfig
from unlearn_bench.runtime.workers import exit_with_sweep, mark_sweep_main

@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    out = pathlib.Path(cfg.out)
    if cfg.seed == 2:
        while not (out / "killed").exists():
            time.sleep(0.05)
    exit_with_sweep(HydraConfig.get().launcher._target_)
    (out / f"started{cfg.seed}").write_text(str(os.getpid()))
    time.sleep(4)
    (out / f"result{cfg.seed}").write_text("")

if __name__ == "__main__":
    mark_sweep_main()
    main()
"""


def descendants(pid: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), set()).add(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_sweep_leaves_no_worker_and_no_result(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    shutil.copytree(CONF / "hydra", tmp_path / "conf" / "hydra")
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(f"seed: 0\nout: {out}\n")
    (tmp_path / "app.py").write_text(APP)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    sweep = subprocess.Popen([sys.executable, "app.py", "-m", "hydra/launcher=local", "seed=1,2", "hydra.sweep.dir=sweep"],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes: set[int] = set()
    try:
        deadline = time.time() + 60
        while not (out / "started1").is_file():
            assert sweep.poll() is None and time.time() < deadline, "job 1 did not start"
            time.sleep(0.05)
        processes = descendants(sweep.pid)
        assert processes, "the sweep's workers were not found"
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        (out / "killed").write_text("")
        deadline = time.time() + 10
        while any(alive(p) for p in processes) and time.time() < deadline:
            time.sleep(0.1)
        left = sorted(p for p in processes if alive(p))
        assert not left, f"still alive 10 s after the kill: {left}"
        assert not list(out.glob("result*")), "a worker wrote a result after the sweep was killed"
        assert not (out / "started2").exists(), "a job began after the sweep was killed"
    finally:
        for pid in processes | descendants(sweep.pid) | {sweep.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
