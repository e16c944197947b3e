"""Logs that read well in a file (SLURM logs, `> run.log`), not only on a terminal.

- `stage(name)`: one line when a stage starts and one when it ends, with its duration;
- `Progress`: a line every `every_s` seconds when tqdm's bar is off (output not a terminal);
- `counted_truncations()`: lm-eval's per-request truncation warnings become one counted line per evaluation, and
  its warnings about the in-memory model we hand it are dropped;
- `quiet_noise()`: git/`datasets` chatter below warning level is dropped, and with output not on a terminal no
  library draws a progress bar (`quiet_bars`; lm-eval's, which it turns on explicitly: `evaluation.lm_eval`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Iterator

log = logging.getLogger("unlearn_bench")

PROGRESS_EVERY_S = 30.0


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    start = time.monotonic()
    log.info("stage %s: start", name)
    try:
        yield
    except BaseException:
        log.info("stage %s: stopped by an error after %.1f s", name, time.monotonic() - start)
        raise
    log.info("stage %s: done in %.1f s", name, time.monotonic() - start)


def bar_is_off() -> bool:
    """tqdm's `disable=None` turns the bar off when stderr is not a terminal."""
    return not sys.stderr.isatty()


class Progress:
    """Periodic 'desc: step i/n (x%), elapsed, eta' lines, for runs whose tqdm bar is off."""

    def __init__(self, desc: str, total: int, every_s: float = PROGRESS_EVERY_S, enabled: bool | None = None) -> None:
        self.desc, self.total, self.every_s = desc, total, every_s
        self.enabled = bar_is_off() if enabled is None else enabled
        self.start = self.last = time.monotonic()

    def update(self, done: int, **values: float) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < self.every_s and done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        extra = "".join(f", {k} {v:.4g}" for k, v in values.items())
        log.info("%s: step %d/%d (%.0f%%), %.0f s elapsed, eta %.0f s%s", self.desc, done, self.total,
                 100 * done / max(self.total, 1), elapsed, eta, extra)


class CountingFilter(logging.Filter):
    """Drops records whose message contains `needle` and counts them, so a caller can log the count once."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle, self.count = needle, 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.needle in record.getMessage().lower():
            self.count += 1
            return False
        return True


@contextlib.contextmanager
def dropped(needle: str, *logger_names: str) -> Iterator[CountingFilter]:
    """Inside this block, records of the named loggers whose message contains `needle` are dropped and counted.
    A logger's filters see only the records logged to it, not its children's: name the emitting modules."""
    counter = CountingFilter(needle)
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addFilter(counter)
    try:
        yield counter
    finally:
        for logger in loggers:
            logger.removeFilter(counter)


@contextlib.contextmanager
def counted_truncations(what: str) -> Iterator[CountingFilter]:
    """lm-eval warns once per request whose context is cut to the model's length (1,311 lines for MMLU on a
    short-context model); inside this block they are counted and reported in one line at the end. Its advice on
    passing `--metadata` to a task with a `custom_dataset` (two lines per offline task, 57 for MMLU) is dropped:
    the offline tasks get theirs from `evaluation.lm_eval.offline_tasks`. So are its two warnings per evaluation
    that the model is an object rather than a name, which is how `evaluate_tasks` means to call it."""
    with dropped("custom kwargs can be passed to `--metadata`", "lm_eval.api.task"), \
            dropped("model kwarg is not of type `str`", "lm_eval.models.huggingface"), \
            dropped("passed an already-initialized model", "lm_eval.models.huggingface"), \
            dropped("truncat", "lm_eval.models.huggingface", "lm_eval.api.model") as counter:
        try:
            yield counter
        finally:
            if counter.count:
                log.warning("%s: %d lm-eval request(s) truncated to the model's max length", what, counter.count)


# The libraries' own switches, read when each is imported (so they also reach the processes this one starts).
BAR_SWITCHES = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def quiet_bars() -> None:
    """With output not on a terminal, no progress bars: in a file each redraw is a line ("Loading weights",
    "Writing model shards", datasets' and the hub's downloads, tqdm's default), and `Progress` logs instead.
    Libraries imported already are switched off through their own calls."""
    if not bar_is_off():
        return
    for name in BAR_SWITCHES:
        os.environ.setdefault(name, "1")
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


def quiet_noise() -> None:
    """Chatter that buries the lines that matter: git lookups and HTTP requests of lm-eval/datasets/hub, and
    progress bars in log files."""
    for name in ("git", "git.cmd", "urllib3", "httpx", "filelock", "fsspec", "datasets"):
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_bars()
