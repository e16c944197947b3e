"""conf/ ships inside the wheel as unlearn_bench.conf, and every package directory is listed."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "unlearn_bench").rglob("__init__.py")}
    assert found - {"unlearn_bench.conf"} <= listed
    assert "unlearn_bench.conf" in listed


@pytest.mark.slow
def test_non_editable_install_finds_its_configs(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(wheel_dir.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"unlearn_bench/conf/config.yaml", "unlearn_bench/conf/method/npo.yaml", "unlearn_bench/conf/model/tiny.yaml"} <= names
    # Install the wheel alone into a fresh venv that borrows this environment's dependencies.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, capture_output=True)
    out = subprocess.run([str(venv / "bin" / "unlearn-bench"), "--cfg", "job", "method=ga"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert "name: ga" in out and "name: fictitious" in out
    origin = subprocess.run([str(venv / "bin" / "python"), "-c", "import unlearn_bench; print(unlearn_bench.__file__)"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(venv) in origin
