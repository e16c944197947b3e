"""Modules imported on first use, so that a method's file keeps its loss beside its hyperparameters while
composing a config (which reads only the hyperparameters) imports no torch: `--help` and config errors then
answer in about a second. `torch.x` inside a function imports torch then, and costs a dict lookup after."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module `name` and imports it on the first attribute access (not at import time, so it is
    not in `sys.modules` until a function uses it)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")
