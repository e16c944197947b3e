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


HELP_GROUPS = ("method", "model", "bench", "experiment")


def help_text(overrides: list[str]) -> str:
    """`--help`: the groups a run composes, their options, and the config `overrides` compose to. Hydra's own help
    composes once per config group (115 compositions, about 3 s here); this composes once. `--hydra-help` still
    prints Hydra's."""
    from importlib.resources import files

    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    conf = files("unlearn_bench.conf")
    groups = "\n".join(f"  {g}: " + ", ".join(sorted(f.name[:-5] for f in (conf / g).iterdir() if f.name.endswith(".yaml")))
                       for g in HELP_GROUPS)
    with initialize_config_module(config_module="unlearn_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return (f"unlearn-bench: fine-tune, unlearn, evaluate and diagnose one method x one model x one benchmark.\n\n"
            f"  unlearn-bench method=npo bench=tofu          one run (group=option, field=value)\n"
            f"  unlearn-bench -m method=ga,npo,simnpo        a sweep\n"
            f"  unlearn-bench --cfg job method=npo           the composed config, without running\n\n"
            f"== Configuration groups ==\n{groups}\n\n"
            f"== Config (override anything: foo.bar=value) ==\n{OmegaConf.to_yaml(cfg)}\n"
            f"Hydra's options (launchers, sweepers, logging): unlearn-bench --hydra-help\n")


def entry() -> None:
    """The console script: overrides naming unknown fields fail listing the valid ones, then Hydra runs."""
    from unlearn_bench.pipeline.validation import override_field_errors

    args = sys.argv[1:]
    if errors := override_field_errors(args, {"method": "npo", "bench": "fictitious", "model": "tiny"}):
        sys.exit("unknown config field:\n  " + "\n  ".join(errors))
    if "--help" in args or "-h" in args:
        print(help_text([a for a in args if not a.startswith("-")]), end="")
        return
    mark_sweep_main()
    main()


if __name__ == "__main__":  # `accelerate launch -m unlearn_bench.cli ...`
    entry()
