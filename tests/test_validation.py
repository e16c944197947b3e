"""Checks that fail a run at start (names, folders, fields, method fit, input files) and the helpers behind
run integrity: data fingerprints, stale temp cleanup, the collapsed-model check, file-friendly logs."""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from unlearn_bench.pipeline import validation
from unlearn_bench.store import cache, fingerprints
from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
from unlearn_bench.benchmarks.tofu.config import TofuConfig
from unlearn_bench.config import UtilityEvalConfig
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA, DataError, read_json_records
from unlearn_bench.pipeline.health import collapse_reason
from unlearn_bench.runtime.logs import CountingFilter, Progress, counted_truncations, stage
from unlearn_bench.methods.registry import method_class
from unlearn_bench.pipeline.runner import preflight, run, run_dir_for, run_id_for


@pytest.fixture
def tofu_copy(shared_data: Path, tmp_path: Path) -> Path:
    """A writable copy of the real TOFU records (to fix, break or remove files in)."""
    return Path(shutil.copytree(shared_data / "tofu", tmp_path / "tofu"))


@pytest.mark.parametrize("name", ["../x", "../../x", "/abs/path", "a/b", "..", ""])
def test_path_component_names_fail_at_start(compose_cfg, smoke_overrides, tmp_path, name) -> None:
    cfg = compose_cfg(smoke_overrides + [f"model.name='{name}'"])
    with pytest.raises(validation.ConfigError, match="model.name"):
        run(cfg)
    assert not (tmp_path / "cache" / "finetune").exists()  # failed before any training
    assert not (tmp_path / "x").exists()


def test_unwritable_results_folder_fails_before_training(compose_cfg, smoke_overrides, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cfg = compose_cfg(smoke_overrides + [f"paths.results_dir={blocker / 'results'}"])
    with pytest.raises(validation.ConfigError, match="paths.results_dir.*not writable"):
        run(cfg)
    assert not (tmp_path / "cache" / "finetune").exists()


def test_a_sweep_goes_on_when_a_failure_cannot_be_recorded(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    exe = Path(sys.executable).with_name("unlearn-bench")
    out = subprocess.run([str(exe), "-m", "method=ga,npo", "experiment=smoke", f"paths.cache_dir={tmp_path / 'cache'}",
                          f"paths.results_dir={blocker / 'results'}", f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert (out.stdout + out.stderr).count("could not record the failed run") == 2  # both jobs ran, neither trained
    assert not (tmp_path / "cache" / "finetune").exists()


def test_unknown_field_added_with_plus_fails_listing_valid_fields(compose_cfg, smoke_overrides) -> None:
    cfg = compose_cfg(smoke_overrides + ["+model.nlayers=2", "+method.betta=1"])
    with pytest.raises(validation.ConfigError) as err:
        validation.check_fields(cfg)
    text = str(err.value)
    assert "model.nlayers" in text and "num_layers" in text and "hidden_size" in text
    assert "method.betta" in text and "beta" in text
    validation.check_fields(compose_cfg(smoke_overrides))  # the shipped config itself is clean


def test_command_line_typos_list_the_valid_fields() -> None:
    defaults = {"method": "npo", "bench": "fictitious", "model": "tiny"}
    errors = validation.override_field_errors(["model.nlayers=2", "+method.betta=1", "-m", "method=ga,npo",
                                               "model.finetune.lr=1", "method.lr=1", "--cfg", "job"], defaults)
    assert len(errors) == 3
    assert errors[0].startswith("+method.betta=1: method (ga) has no field 'betta'") and "beta" not in errors[0]
    assert errors[1].startswith("+method.betta=1: method (npo) has no field 'betta'; valid fields:") and "beta," in errors[1]
    assert "model (tiny) has no field 'nlayers'" in errors[2] and "num_layers" in errors[2]
    assert validation.override_field_errors(["model.finetune.lrr=1"], defaults) == [
        "model.finetune.lrr=1: model.finetune (tiny) has no field 'lrr'; valid fields: batch_size, epochs, grad_accum, "
        "group_by_length, lr, max_grad_norm, max_steps, scheduler, warmup_ratio, weight_decay"]


def test_wrong_answers_on_rwku_fails_before_training(compose_cfg, smoke_overrides, tmp_path) -> None:
    cfg = compose_cfg(smoke_overrides + ["bench=rwku", "method=wrong_answers"])
    with pytest.raises(ValueError, match="wrong_answers.*perturbed"):
        run(cfg)
    assert not (tmp_path / "cache" / "finetune").exists()


def test_refusal_file_needed_only_by_refusal_methods(tofu_copy: Path) -> None:
    (tofu_copy / "idontknow.jsonl").unlink()
    data = TofuBenchmark(TofuConfig(data_dir=str(tofu_copy), forget_split="forget01")).data()
    assert data.refusals == []
    validation.check_method_fits(method_class("npo")(), "npo", data)
    with pytest.raises(ValueError, match="idk.*refusal.*idontknow.jsonl"):
        validation.check_method_fits(method_class("idk")(), "idk", data)


def test_missing_evaluation_file_fails_at_check(tofu_copy: Path) -> None:
    (tofu_copy / "holdout01.json").unlink()
    b = TofuBenchmark(TofuConfig(data_dir=str(tofu_copy), forget_split="forget01"))
    with pytest.raises(DataError, match="holdout01"):
        validation.check_bench_inputs(b, UtilityEvalConfig())
    # data() reads it too (training alternates must avoid every scored answer, the MIA holdout's included)
    with pytest.raises(DataError, match="holdout01"):
        b.data()


def test_non_utf8_byte_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "forget.jsonl"
    path.write_bytes(b'{"question": "a", "answer": "b"}\n{"question": "c", "answer": "d"}\n{"question": "\xff"}\n')
    with pytest.raises(DataError, match=r"forget.jsonl: line 3: not UTF-8 \(byte 0xff"):
        read_json_records(path)


def test_fixing_a_data_file_changes_the_fingerprint_and_run_id(compose_cfg, tofu_copy, tmp_path, monkeypatch) -> None:
    cfg = compose_cfg(["bench=tofu", f"bench.data_dir={tofu_copy}", f"paths.cache_dir={tmp_path / 'cache'}"])
    before = fingerprints.data_fingerprint(cfg)
    assert str(tofu_copy / "full.json") in before["files"] and before["digest"]
    run_before = run_id_for(cfg)
    # Unchanged files are not read again: the index in the cache folder answers by path, size and mtime.
    hashed = []
    monkeypatch.setattr(fingerprints, "_sha256", lambda p: hashed.append(p) or "x")
    assert fingerprints.data_fingerprint(cfg) == before and hashed == []
    monkeypatch.undo()
    path = tofu_copy / "forget01.json"
    path.write_text(path.read_text().replace("Basil", "Basilio", 1))  # a record fixed in place
    after = fingerprints.data_fingerprint(cfg)
    assert after["files"][str(path)] != before["files"][str(path)]
    assert after["digest"] != before["digest"] and run_id_for(cfg) != run_before
    # A hub-data run has no local files: its run id does not depend on any fingerprint.
    assert fingerprints.data_fingerprint(compose_cfg(["bench=tofu"])) == {"files": {}, "digest": None}


def test_stale_temp_entries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stage_dir = tmp_path / "finetune"
    stale = stage_dir / f".tmp-0123abcd-{dead.pid}@{host}-x1y2"
    mine = stage_dir / f".tmp-0123abcd-{os.getpid()}@{host}-a3b4"
    foreign_new = stage_dir / f".tmp-0123abcd-1@other-host-c5d6"
    foreign_old = stage_dir / ".tmp-0123abcd-e7f8"  # old format, no owner
    for d in (stale, mine, foreign_new, foreign_old):
        (d / "sub").mkdir(parents=True)
    old = time.time() - cache.FOREIGN_TEMP_MAX_AGE_S - 60
    os.utime(foreign_old, (old, old))
    assert sorted(cache.clean_stale_temps(tmp_path)) == sorted([stale, foreign_old])
    assert mine.is_dir() and foreign_new.is_dir() and not stale.exists()


def test_cache_temp_dir_names_its_owner(tmp_path: Path) -> None:
    seen = []
    cache.cached_stage(tmp_path, "eval", {"k": 1}, lambda out: seen.append(out.name))
    assert cache._TEMP_NAME.match(seen[0])["pid"] == str(os.getpid())
    assert not cache.is_stale_temp(tmp_path / "eval" / seen[0])  # its owner (this process) is alive


def test_collapsed_and_nonfinite_models_are_caught(tiny_lm) -> None:
    model, tokenizer = tiny_lm
    probes = [QA("what is item 3?", "item 3 is a tree.")] * 4
    fmt = PromptFormat("plain")
    assert collapse_reason(model, tokenizer, fmt, 64, probes) is None  # random init is not uniform
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        saved = head.clone()
        head.zero_()  # every logit 0: probability 1/vocab everywhere
        assert "collapsed output distribution" in collapse_reason(model, tokenizer, fmt, 64, probes)
        head.copy_(saved)
        head[0, 0] = float("nan")
        assert "non-finite weights" in collapse_reason(model, tokenizer, fmt, 64, probes)
        head.copy_(saved)


def test_stage_lines_and_progress_for_log_files(caplog) -> None:
    caplog.set_level(logging.INFO)
    with stage("finetune:target"):
        progress = Progress("finetune:target", 4, every_s=0.0, enabled=True)
        for step in range(1, 5):
            progress.update(step, loss=1.0 / step)
    text = caplog.text
    assert "stage finetune:target: start" in text and "stage finetune:target: done in" in text
    assert text.count("finetune:target: step") == 4 and "step 4/4 (100%)" in text
    caplog.clear()
    quiet = Progress("x", 4, every_s=3600.0, enabled=True)
    quiet.update(1)
    quiet.update(4)  # the last step always logs
    assert caplog.text.count("x: step") == 1


def test_lm_eval_truncation_warnings_become_one_counted_line(caplog) -> None:
    caplog.set_level(logging.WARNING)
    emitter = logging.getLogger("lm_eval.models.huggingface")
    with counted_truncations("lm-eval mmlu"):
        for _ in range(5):
            emitter.warning("Combined length of context (600) and continuation (1) exceeds model's maximum length "
                            "(512). Truncating 89 tokens from the left.")
        emitter.warning("something else")
        # lm-eval's advice to CLI users, logged for every task with a custom_dataset (our offline tasks)
        logging.getLogger("lm_eval.api.task").warning(
            "offline_mmlu_virology: Custom kwargs can be passed to `--metadata` in console (as json string) or to the "
            "TaskManager.\nFor example --metadata='{\"max_seq_lengths\":[4096, 8192]}'. For details see task Readme.")
    assert "Truncating" not in caplog.text and "something else" in caplog.text and "--metadata" not in caplog.text
    assert "lm-eval mmlu: 5 lm-eval request(s) truncated" in caplog.text
    assert CountingFilter("x").filter(logging.makeLogRecord({"msg": "y"}))


def test_sweep_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    child = ("import time; from unlearn_bench.runtime.workers import exit_with_parent; exit_with_parent(0.1); "
             f"open({str(pid_file)!r}, 'w').write(str(__import__('os').getpid())); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)"])
    deadline = time.time() + 60
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.time() < deadline, "child did not start"
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    parent.kill()
    parent.wait()

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
        except (FileNotFoundError, IndexError):
            return False

    deadline = time.time() + 20
    while alive(child_pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(child_pid)


def test_preflight_returns_the_fingerprint_and_cleans(compose_cfg, smoke_overrides, tmp_path) -> None:
    cfg = compose_cfg(smoke_overrides)
    assert preflight(cfg) == {"files": {}, "digest": None}
    assert run_dir_for(cfg)[0].parent == tmp_path / "results" / "fictitious" / "tiny" / "npo"
