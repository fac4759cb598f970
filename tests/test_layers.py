"""The package's folders are its layers (docs/architecture.md), and imports go downward
only: `core` imports nothing of the others, `config` and `system` only `core`, `runtime`
any of them, the command line anything. No import cycle at run time, no module much over
300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "wg_endpointd"
ALLOWED = {
    "core": {"core"},
    "config": {"core", "config"},
    "system": {"core", "system"},
    "runtime": {"core", "config", "system", "runtime"},
}
MAX_LINES = 320  # "about 300"


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path, runtime_only: bool = False) -> set[str]:
    """The package modules `path` imports (absolute dotted names); `runtime_only` leaves
    out imports under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith(root.name):
                continue
            found.add(mod)
            for alias in node.names:  # `from . import x` names modules
                found.add(f"{mod}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(root.name)}
    known = {module_name(p, root) for p in root.rglob("*.py")}
    return {m for m in found if m in known}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def wrong_way(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        here = layer(module_name(path, root))
        if here is None:
            continue  # the command line and the package root may import anything
        for target in sorted(imports(path, root) - {root.name}):  # the root: its version
            there = layer(target)
            if there is None or there not in ALLOWED[here]:
                bad.append(f"{module_name(path, root)} ({here}) imports {target}")
    return bad


def cycles(root: Path) -> list[list[str]]:
    graph = {module_name(p, root): imports(p, root, runtime_only=True)
             for p in root.rglob("*.py")}
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt == node or nxt.startswith(node + "."):
                continue  # a package naming its own modules
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_imports_go_downward_only():
    assert wrong_way(PKG) == []


def test_no_import_cycle_at_run_time():
    assert cycles(PKG) == []


def test_every_module_sits_in_a_layer_or_on_top():
    loose = [p.name for p in PKG.glob("*.py")]
    assert sorted(loose) == ["__init__.py", "__main__.py", "cli.py"]
    assert {p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__"} \
        == set(ALLOWED)


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path: Path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def fake_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "wg_endpointd"
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return root


def test_the_check_catches_an_upward_import_and_a_cycle(tmp_path):
    root = fake_tree(tmp_path, {
        "__init__.py": "", "cli.py": "from .runtime import loop\n",
        "core/__init__.py": "", "core/rules.py": "from ..system import io\n",
        "system/__init__.py": "", "system/io.py": "from ..core.rules import x\n",
        "runtime/__init__.py": "", "runtime/loop.py": "from ..config import reader\n",
        "config/__init__.py": "", "config/reader.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from ..runtime import loop\n"),
    })
    assert wrong_way(root) == [
        "wg_endpointd.config.reader (config) imports wg_endpointd.runtime",
        "wg_endpointd.config.reader (config) imports wg_endpointd.runtime.loop",
        "wg_endpointd.core.rules (core) imports wg_endpointd.system",
        "wg_endpointd.core.rules (core) imports wg_endpointd.system.io",
    ]
    assert cycles(root) == [["wg_endpointd.core.rules", "wg_endpointd.system.io",
                             "wg_endpointd.core.rules"]]
