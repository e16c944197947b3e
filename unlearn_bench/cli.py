"""`unlearn-bench`: compose the config, call `run(cfg)`, print the summary. Nothing else lives here."""
from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from unlearn_bench.config import register_configs
from unlearn_bench.runtime.errors import exit_on_input_error
from unlearn_bench.runtime.launch import worker_argv
from unlearn_bench.runtime.workers import exit_with_sweep, mark_sweep_main

log = logging.getLogger("unlearn_bench")
register_configs()
sys.argv = worker_argv(sys.argv)


@hydra.main(version_base="1.3", config_path="pkg://unlearn_bench.conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:  # a killed sweep takes its workers down, also before a job's imports
        exit_with_sweep(str(hydra_cfg.launcher.get("_target_", "")))
    from unlearn_bench.store import provenance
    from unlearn_bench.store.fingerprints import data_fingerprint
    from unlearn_bench.pipeline.runner import run, run_dir_for, run_path
    from unlearn_bench.store.run_output import RunRecord, write_failed

    started = provenance.now()
    try:
        record = run(cfg)
    except Exception as e:  # in a sweep, one failed run must not stop the others
        if hydra_cfg.mode != RunMode.MULTIRUN:
            exit_on_input_error(e)  # a config or data error as one line, exit status 2
            raise
        log.exception("run failed: %s", e)
        try:  # nor may recording the failure (an unwritable results folder, a bad model.name)
            fingerprint = data_fingerprint(cfg)
            run_dir, run_id = run_dir_for(cfg, fingerprint)
            write_failed(run_dir, cfg, RunRecord("failed", run_id, run_id, f"{type(e).__name__}: {e}"),
                         provenance.collect(started, None, fingerprint))
        except Exception as write_error:
            log.error("could not record the failed run: %s: %s", type(write_error).__name__, write_error)
        return
    # The folder run() chose (named by the config hash it matched), without fingerprinting the data again.
    summary = run_path(cfg, record.config_hash) / "summary.md"
    print(f"\n{cfg.method.name} on {cfg.bench.name} with {cfg.model.name}: {record.status} "
          f"({record.seconds:.0f} s) -> {summary.parent}\n")
    if summary.is_file():
        print(summary.read_text())


def entry() -> None:
    """The console script: overrides naming unknown fields fail listing the valid ones, then Hydra runs."""
    from unlearn_bench.pipeline.validation import override_field_errors

    if errors := override_field_errors(sys.argv[1:], {"method": "npo", "bench": "fictitious", "model": "tiny"}):
        sys.exit("unknown config field:\n  " + "\n  ".join(errors))
    mark_sweep_main()
    main()


if __name__ == "__main__":  # `accelerate launch -m unlearn_bench.cli ...`
    entry()
