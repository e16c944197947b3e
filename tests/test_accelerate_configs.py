"""conf/accelerate/*.yaml are valid accelerate configs and launch the CLI (`--cfg job`, one CPU process)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[1] / "conf" / "accelerate"
EXPECTED = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero3": "DEEPSPEED"}


def test_every_engine_has_a_config():
    assert {p.stem for p in CONF.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses_as_accelerate_reads_it(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(CONF / f"{name}.yaml"))  # unknown fields raise
    assert cfg.distributed_type.value == EXPECTED[name] and cfg.num_processes > 1
    if name == "fsdp":
        assert cfg.fsdp_config["fsdp_version"] == 2
    if name == "deepspeed_zero3":
        ds = json.loads((CONF.parents[1] / cfg.deepspeed_config["deepspeed_config_file"]).read_text())
        assert ds["zero_optimization"]["stage"] == 3 and ds["bf16"]["enabled"]


def test_launch_composes_the_run_config():
    """One launch: with --cpu accelerate starts every config's process the same way (each parses above)."""
    name = "deepspeed_zero3"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONF / f"{name}.yaml"), "--cpu",
           "--num_processes", "1", "-m", "unlearn_bench.cli", "experiment=smoke", "--cfg", "job"]
    proc = subprocess.run(cmd, cwd=CONF.parents[1], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "method:" in proc.stdout and "name: npo" in proc.stdout
