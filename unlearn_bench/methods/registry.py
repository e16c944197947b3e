"""Finds every method module (one exposing `METHOD`) so that adding a method is one file + one config."""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import unlearn_bench.methods as methods_pkg


@cache
def method_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(methods_pkg.__path__):
        module = importlib.import_module(f"{methods_pkg.__name__}.{info.name}")
        cls = getattr(module, "METHOD", None)
        if cls is not None:
            found[info.name] = cls
    return dict(sorted(found.items()))


def method_class(name: str) -> type:
    classes = method_classes()
    if name not in classes:
        raise KeyError(f"unknown method '{name}'; available: {', '.join(classes)}")
    return classes[name]
