"""The stage cache across processes: one build per entry, the second process waits and reuses it."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

# One process asking for entry {"k": 1}: its build announces itself, waits `hold` s, then writes who built it.
BUILDER = """
import json, logging, sys, time, pathlib
from unlearn_bench.store.cache import cached_stage
logging.basicConfig(level=logging.INFO, format="%(message)s")
cache, name, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
def build(out):
    pathlib.Path(cache, name + ".building").write_text("")
    time.sleep(hold)
    (out / "who").write_text(name)
path, hit = cached_stage(cache, "finetune", {"k": 1}, build)
print(json.dumps({"who": (path / "who").read_text(), "hit": hit}))
"""


def test_second_process_waits_for_the_entry_and_reuses_it(tmp_path: Path) -> None:
    def start(name: str, hold: float) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", BUILDER, str(tmp_path), name, str(hold)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start("first", 2.0)
    deadline = time.time() + 30
    while not (tmp_path / "first.building").exists():
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.02)
    second = start("second", 0.0)
    out_second, log_second = second.communicate(timeout=60)
    out_first, _ = first.communicate(timeout=60)
    assert json.loads(out_first) == {"who": "first", "hit": False}
    assert json.loads(out_second) == {"who": "first", "hit": True}
    assert not (tmp_path / "second.building").exists()  # the second process never built
    assert "another process is building this entry: waiting for it" in log_second
    assert "built by another process while this one waited" in log_second
    entries = sorted(p.name for p in (tmp_path / "finetune").iterdir())
    assert len(entries) == 1 and not entries[0].startswith(".tmp-")  # one entry, no temp dir left
