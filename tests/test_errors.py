"""Bad input ends in one line naming the field, file or record: our own checks' errors, the seed's bounds, and a
hub dataset out of reach (which names the offline way, bench.data_dir, within seconds)."""
from __future__ import annotations

import json
import time

import pytest

from unlearn_bench.benchmarks.tofu.data import load_tofu_split
from unlearn_bench.data.records import DataError, require_field
from unlearn_bench.pipeline import validation


def caught(raise_it) -> BaseException:
    try:
        raise_it()
    except Exception as e:
        return e
    raise AssertionError("nothing raised")


def test_our_input_errors_exit_2_in_one_line(capsys, monkeypatch) -> None:
    from unlearn_bench.runtime.errors import exit_on_input_error

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    ours = caught(lambda: require_field({"question": "q"}, "answer", str, "forget01.json", 3))
    with pytest.raises(SystemExit) as exit_info:
        exit_on_input_error(ours)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: forget01.json: record 3: missing field 'answer'\n"
    exit_on_input_error(caught(lambda: json.loads("{")))  # a library's ValueError keeps its traceback
    exit_on_input_error(caught(lambda: [][0]))           # and so does a bug
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    exit_on_input_error(ours)                             # the traceback, as asked
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_range_fails_naming_seed(compose_cfg, smoke_overrides, seed: int) -> None:
    with pytest.raises(validation.ConfigError, match=rf"seed={seed}: must be an integer with 0 <= seed < 2\*\*32"):
        validation.check_fields(compose_cfg(smoke_overrides + [f"seed={seed}"]))
    validation.check_fields(compose_cfg(smoke_overrides + [f"seed={2**32 - 1}"]))


def test_offline_hub_dataset_names_bench_data_dir(monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # and not in the Hugging Face cache
    start = time.monotonic()
    with pytest.raises(DataError, match=r"locuslab/TOFU \(full/train\): cannot be loaded.*set bench.data_dir to a local copy"):
        load_tofu_split("full", None)
    assert time.monotonic() - start < 10


def test_unreachable_hub_fails_fast_naming_bench_data_dir(monkeypatch) -> None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: pytest.fail("no download when the hub is out of reach"))
    start = time.monotonic()
    with pytest.raises(DataError, match=r"cannot be reached .*set bench.data_dir to a local copy.*HF_DATASETS_OFFLINE=1"):
        load_tofu_split("full", None)
    assert time.monotonic() - start < 10
