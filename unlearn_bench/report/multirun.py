"""The `unlearn-bench -m` command line that the search and sweep drivers (`make tune`, `make tune-strong`,
`make poison`) run as a subprocess: this environment's console script, the driver's overrides, its results folder
and a sweep folder of its own, and with `jobs` > 1 Hydra's local launcher (conf/hydra/launcher/local.yaml)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence


def multirun_command(overrides: Sequence[str], results_dir: Path, name: str, jobs: int = 1) -> list[str]:
    cli = Path(sys.executable).parent / "unlearn-bench"
    launcher = ["hydra/launcher=local", f"hydra.launcher.n_jobs={jobs}"] if jobs > 1 else []
    return [str(cli), "-m", *launcher, *overrides, f"paths.results_dir={results_dir}",
            f"hydra.sweep.dir={results_dir}/multirun/{name}"]
