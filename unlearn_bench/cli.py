"""`unlearn-bench`: compose the config, call `run(cfg)`, print the summary. Nothing else lives here."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from unlearn_bench.config import register_configs
from unlearn_bench.launch import worker_argv

log = logging.getLogger("unlearn_bench")
register_configs()
sys.argv = worker_argv(sys.argv)


@hydra.main(version_base="1.3", config_path="pkg://unlearn_bench.conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from unlearn_bench.runner import run, run_dir_for
    from unlearn_bench.run_output import RunRecord, write_failed

    try:
        record = run(cfg)
    except Exception as e:  # in a sweep, one failed run must not stop the others
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.exception("run failed: %s", e)
        run_dir, run_id = run_dir_for(cfg)
        write_failed(run_dir, cfg, RunRecord("failed", run_id, run_id, f"{type(e).__name__}: {e}"))
        return
    summary = Path(run_dir_for(cfg)[0]) / "summary.md"
    print(f"\n{cfg.method.name} on {cfg.bench.name} with {cfg.model.name}: {record.status} "
          f"({record.seconds:.0f} s) -> {summary.parent}\n")
    if summary.is_file():
        print(summary.read_text())


if __name__ == "__main__":  # `accelerate launch -m unlearn_bench.cli ...`
    main()
