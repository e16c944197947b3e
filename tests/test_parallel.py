"""Two processes through `accelerate launch` (gloo on CPU) against one process at the same effective batch: the
same optimizer steps and losses, the same metrics, one copy of every file, nothing written by rank 1."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

MULTIPROC = Path(__file__).parent / "multiproc"
# Effective batches of 32 (fine-tuning) and 8 (unlearning) as 16 x 2 and 4 x 2: one process accumulates 2
# micro-batches per step, each of two processes 1.
OVERRIDES = ["experiment=smoke", "cpu=true", "model.finetune.epochs=1", "model.finetune.batch_size=16",
             "model.finetune.grad_accum=2", "method.batch_size=4", "method.grad_accum=2",
             "bench.eval_max_examples=16", "bench.retain_eval_examples=16"]


def _run(root: Path, processes: int) -> Path:
    root.mkdir()
    launcher = [sys.executable, "-m", "unlearn_bench.cli"] if processes == 1 else [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533",
        "-m", "unlearn_bench.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join([str(MULTIPROC), os.environ.get("PYTHONPATH", "")]),
           "AUDIT_RANK": "1", "AUDIT_OUT": str(root.parent / f"rank1-writes-{processes}.json")}
    overrides = OVERRIDES + [f"paths.cache_dir={root / 'cache'}", f"paths.results_dir={root / 'results'}",
                             f"hydra.run.dir={root / 'hydra'}"]
    proc = subprocess.run(launcher + overrides, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _files(root: Path) -> dict[str, int]:
    """Files per cache stage / result folder, counted by name (entry names are hashes)."""
    counts: dict[str, int] = {}
    for path in (root / "cache").rglob("*"):
        if path.is_file():
            stage = path.relative_to(root / "cache").parts[0]
            counts[f"cache/{stage}/{path.name}"] = counts.get(f"cache/{stage}/{path.name}", 0) + 1
    for path in (root / "results").rglob("*"):
        if path.is_file():
            counts[str(path.relative_to(root))] = counts.get(str(path.relative_to(root)), 0) + 1
    return counts


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    one = _run(tmp_path / "one", 1)
    two = _run(tmp_path / "two", 2)

    [run_one] = list((one / "results").glob("*/*/*/*"))
    [run_two] = list((two / "results").glob("*/*/*/*"))
    assert run_one.name == run_two.name  # the same config, whatever the process count
    hist_one, hist_two = _jsonl(run_one / "train_history.jsonl"), _jsonl(run_two / "train_history.jsonl")
    assert [h["step"] for h in hist_one] == [h["step"] for h in hist_two] == [1, 2, 3, 4]
    for a, b in zip(hist_one, hist_two):
        assert set(a) == set(b)
        assert all(abs(a[k] - b[k]) <= 1e-4 for k in a), (a, b)

    def metrics(run: Path) -> dict:
        # cost rows are wall-clock timings: they differ between any two runs
        return {(r["method"], r["split"], r["metric"]): r["value"] for r in _jsonl(run / "metrics.jsonl")
                if r["split"] != "cost"}

    m_one, m_two = metrics(run_one), metrics(run_two)
    assert m_one.keys() == m_two.keys() and len(m_one) > 20
    assert all(m_one[k] == m_two[k] or abs(m_one[k] - m_two[k]) <= 1e-4 for k in m_one), \
        {k: (m_one[k], m_two[k]) for k in m_one if m_one[k] != m_two[k]}

    files_one, files_two = _files(one), _files(two)
    assert files_one == files_two
    assert files_two["cache/finetune/cache_key.json"] == 2 and files_two["cache/eval/eval.json"] == 2  # target, retain
    assert not list(two.rglob(".tmp*"))
    written = json.loads((tmp_path / "rank1-writes-2.json").read_text())
    assert [w for w in written if w[1].startswith(str(two))] == []
    assert log_lines(two / "hydra") == 1  # one Hydra log, the main process's


def log_lines(hydra_dir: Path) -> int:
    return len(list(hydra_dir.rglob("*.log")))



def _scenarios():
    spec = importlib.util.spec_from_file_location("scenarios", MULTIPROC / "scenarios.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nan_and_own_gradients_across_two_processes(tmp_path):
    """Two gloo processes: a NaN loss on rank 1 only stops both after the same step as diverged (no hang), and
    NGDiff's hand-computed gradients are summed across them, ending at the one-process run's weights."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29534"}
    procs = [subprocess.Popen([sys.executable, str(MULTIPROC / "scenarios.py"), str(tmp_path)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    assert [json.loads((tmp_path / f"nan-{r}.json").read_text()) for r in range(2)] == [[2, "diverged", 1]] * 2

    from unlearn_bench.runtime.device import make_accelerator

    single = _scenarios().ngdiff_weights(make_accelerator(cpu=True))
    for r in range(2):
        two = torch.load(tmp_path / f"ngdiff-{r}.pt")
        assert torch.allclose(two, single, atol=1e-6), (two - single).abs().max()
