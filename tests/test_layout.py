"""The package's layout keeps its promises: no import cycle, only the CLI and the pipeline import the pipeline,
and importing the CLI or composing a config loads none of the heavy libraries (so `--help` answers at once)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "unlearn_bench"
HEAVY = ("torch", "transformers", "peft", "lm_eval", "sklearn", "pandas", "nltk", "accelerate", "datasets", "scipy",
         "matplotlib")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere (module level or inside a function); `from a import b`
    counts `a.b` where that is a module, else `a`. Imports under `if TYPE_CHECKING:` run only for type checkers."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for child in node.body for n in ast.walk(child)}
    this = module_name(path)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
                package = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in out if m in known and m != this}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(path, set(mods)) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walker_sees_imports_inside_functions(tmp_path):
    # the test below can only pass honestly if function-level imports are edges too
    graph = import_graph()
    assert "unlearn_bench.pipeline.runner" in graph["unlearn_bench.cli"]  # imported inside main()
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_only_the_cli_and_the_pipeline_import_the_pipeline():
    offenders = {(src, dst) for src, dsts in import_graph().items() for dst in dsts
                 if dst.startswith("unlearn_bench.pipeline")
                 and not (src == "unlearn_bench.cli" or src.startswith("unlearn_bench.pipeline"))}
    assert offenders == set()


def test_the_root_holds_folders_plus_the_cli_and_the_config():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "cli.py", "config.py"]


def test_cli_and_config_composition_import_no_heavy_library():
    code = (
        "import sys, json\n"
        "import unlearn_bench.cli\n"
        "from hydra import compose, initialize_config_module\n"
        "with initialize_config_module(config_module='unlearn_bench.conf', version_base='1.3'):\n"
        "    compose(config_name='config', overrides=['method=npo'])\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "hydra" in loaded  # the probe did compose a config
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
