"""Fail on an import cycle through the registry's loader strings.

The registry names each model's loader as ``"module:function"`` and imports it only when the model
is built, so import-linter never sees that edge: a loader importing the registry back (at module
level or inside a function) makes a cycle no other check reports. This script builds the graph of
vmatte's modules from every ``import`` statement (module level and inside functions; ``TYPE_CHECKING``
blocks excluded) plus one edge per ``"vmatte.x.y:function"`` string, and prints each cycle that
goes through such a string. Exit 0: none; 1: the cycles, one per line.

    python tools/check_loader_cycles.py [SRC]   # SRC: the folder holding vmatte/ (default: src)
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

LOADER = re.compile(r"^(vmatte(?:\.\w+)+):\w+$")


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def edges_of(path: Path, src: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """(modules ``path`` imports, modules its loader strings name)."""
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imports: set[str] = set()
    loaders: set[str] = set()

    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (m := known(alias.name)) is not None:
                    imports.add(m)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                m = known(f"{base}.{alias.name}") if f"{base}.{alias.name}" in modules else known(base)
                if m is not None:
                    imports.add(m)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = LOADER.match(node.value)
            if match and match.group(1) in modules:
                loaders.add(match.group(1))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    imports.discard(name)
    return imports, loaders


def graph(src: Path) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """module -> modules it reaches by an import or a loader string; the loader-string edges."""
    files = {module_name(p, src): p for p in sorted((src / "vmatte").rglob("*.py"))}
    modules = set(files)
    out: dict[str, set[str]] = {}
    lazy: set[tuple[str, str]] = set()
    for name, path in files.items():
        imports, loaders = edges_of(path, src, modules)
        out[name] = imports | loaders
        lazy |= {(name, m) for m in loaders}
    return out, lazy


def _path(g: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The shortest import path from ``start`` to ``goal`` (breadth first)."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = previous[node]
            return path[::-1]
        for nxt in sorted(g.get(node, ())):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def cycles(src: Path) -> list[list[str]]:
    """Each loader-string edge A -> B that B's imports lead back to A, as the cycle A -> B ... -> A."""
    g, lazy = graph(src)
    found = []
    for a, b in sorted(lazy):
        back = _path(g, b, a)
        if back is not None:
            found.append([a, *back])
    return found


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "src"
    g, lazy = graph(src)
    found = cycles(src)
    for cycle in found:
        print("import cycle through a loader string: " + " -> ".join(cycle))
    if not found:
        print(f"loader strings: {len(lazy)} edges ({', '.join(sorted({b for _, b in lazy}))}), no import cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
