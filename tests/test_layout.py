"""The import structure of node/ and protocol/ (issue 14), read from the source with `ast`, so
that imports inside functions and under `if TYPE_CHECKING:` count as much as the others:

1. no import cycle among the modules of node/ and protocol/;
2. nothing outside node/cli imports node.cli: the tools import the daemon, never the reverse;
3. protocol/ imports nothing from node/;
4. outside node/cli, no module imports a node/ or protocol/ module inside a function (a
   deferred import is for an optional third-party dependency; the CLI defers its imports to
   keep `crossbill --help` fast);
5. the client library (node/client) imports nothing of the RPC server (node.rpc).

A failure names the importing file and line of every offending import.
"""

from __future__ import annotations

import ast
import collections
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("node", "protocol")
CLI = "node.cli"


@dataclass(frozen=True)
class Import:
    importer: str          # dotted module name
    target: str            # the module of node/ or protocol/ it loads
    path: str              # the importer's file, relative to the repository
    line: int
    deferred: bool         # inside a function body
    type_checking: bool    # under `if TYPE_CHECKING:`

    def where(self) -> str:
        kind = " (deferred)" if self.deferred else " (TYPE_CHECKING)" if self.type_checking \
            else ""
        return f"{self.path}:{self.line} {self.importer} -> {self.target}{kind}"


def module_files(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    out: dict[str, pathlib.Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _resolve(name: str, known: Iterable[str]) -> str | None:
    """The module of ours that importing `name` loads (its longest known prefix), if any."""
    known = set(known)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def scan_source(module: str, source: str, known: Iterable[str], *, is_package: bool = False,
                path: str = "") -> list[Import]:
    """Every import of one of `known` in `source` (the text of `module`)."""
    known = set(known) | {module}
    tree = ast.parse(source, path or module)
    found: list[Import] = []

    def add(name: str, node: ast.AST, deferred: bool, type_checking: bool) -> None:
        target = _resolve(name, known)
        if target is not None and target != module:
            found.append(Import(module, target, path or module, getattr(node, "lineno", 0),
                                deferred, type_checking))

    def base_of(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        return f"{package}.{node.module}" if node.module else package

    def visit(node: ast.AST, deferred: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, deferred, type_checking)
        elif isinstance(node, ast.ImportFrom):
            base = base_of(node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                # `from pkg import mod` loads pkg.mod; `from mod import name` loads mod
                add(submodule if submodule in known else base, node, deferred, type_checking)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                    or (isinstance(node.func, ast.Attribute)
                        and node.func.attr == "import_module")):
            add(node.args[0].value, node, deferred, type_checking)
        for child in ast.iter_child_nodes(node):
            visit(child,
                  deferred or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.Lambda)),
                  type_checking or (isinstance(node, ast.If) and _is_type_checking(node.test)
                                    and child in node.body))

    visit(tree, False, False)
    return found


def scan(root: pathlib.Path = ROOT) -> list[Import]:
    files = module_files(root)
    out: list[Import] = []
    for module, path in files.items():
        out += scan_source(module, path.read_text(encoding="utf-8"), files,
                           is_package=path.name == "__init__.py",
                           path=str(path.relative_to(root)))
    return out


IMPORTS = scan()


def find_cycles(imports: Iterable[Import]) -> list[tuple[list[str], list[Import]]]:
    """Per strongly connected group of modules: its members, and one cycle through them (the
    imports that close it)."""
    edges: dict[str, dict[str, Import]] = collections.defaultdict(dict)
    for imp in imports:
        edges[imp.importer].setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges.get(v, {}):
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    cycles = []
    for group in groups:
        start = min(group)
        # shortest way back to `start` within the group (breadth first)
        previous: dict[str, Import] = {}
        queue = collections.deque([start])
        while queue:
            v = queue.popleft()
            for w, imp in sorted(edges.get(v, {}).items()):
                if w in group and w not in previous:
                    previous[w] = imp
                    queue.append(w)
        path: list[Import] = []
        v = start
        while True:
            imp = previous[v]
            path.append(imp)
            v = imp.importer
            if v == start:
                break
        cycles.append((sorted(group), path[::-1]))
    return cycles


def _report(imports: Iterable[Import]) -> str:
    return "\n".join(imp.where() for imp in imports)


# ---------------------------------------------------------------------- the scanner itself


def test_the_scan_sees_every_kind_of_import() -> None:
    known = {"node", "node.a", "node.b", "node.pkg", "node.pkg.c", "protocol", "protocol.x"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "import node.a\n"
        "from node.pkg import c\n"
        "from . import c\n"
        "from ..b import thing\n"
        "from protocol.x import thing\n"
        "import os, trio\n"
        "if TYPE_CHECKING:\n"
        "    from node.b import B\n"
        "def f():\n"
        "    import node.pkg.c.sub\n"
        "    from protocol import x\n"
        "class K:\n"
        "    def g(self):\n"
        "        importlib.import_module('node.b')\n"
    )
    found = scan_source("node.pkg.m", source, known)
    assert [(i.target, i.line, i.deferred, i.type_checking) for i in found] == [
        ("node.a", 2, False, False), ("node.pkg.c", 3, False, False),
        ("node.pkg.c", 4, False, False), ("node.b", 5, False, False),
        ("protocol.x", 6, False, False), ("node.b", 9, False, True),
        ("node.pkg.c", 11, True, False), ("protocol.x", 12, True, False),
        ("node.b", 15, True, False)]


def test_the_scan_reads_the_repository() -> None:
    edges = {(i.importer, i.target) for i in IMPORTS}
    assert ("node.service", "node.replica.chain") in edges
    assert ("node.replica.chain", "protocol.validation") in edges
    assert any(i.importer.startswith(CLI) and i.deferred for i in IMPORTS)


def test_find_cycles_reports_the_path() -> None:
    def imp(a: str, b: str) -> Import:
        return Import(a, b, a, 1, False, False)

    cycles = find_cycles([imp("m.a", "m.b"), imp("m.b", "m.c"), imp("m.c", "m.a"),
                          imp("m.c", "m.d")])
    assert [(group, [(i.importer, i.target) for i in c]) for group, c in cycles] == [
        (["m.a", "m.b", "m.c"], [("m.a", "m.b"), ("m.b", "m.c"), ("m.c", "m.a")])]


# ---------------------------------------------------------------------- the rules


def test_no_import_cycle() -> None:
    cycles = find_cycles(IMPORTS)
    assert not cycles, "import cycle(s), deferred and TYPE_CHECKING imports included:\n" + \
        "\n\n".join(f"{len(group)} modules: {', '.join(group)}\none cycle:\n{_report(c)}"
                     for group, c in cycles)


def test_only_the_cli_imports_the_cli() -> None:
    bad = [i for i in IMPORTS if _within(i.target, CLI) and not _within(i.importer, CLI)]
    assert not bad, "the daemon and libraries must not import node.cli:\n" + _report(bad)


def test_protocol_imports_nothing_from_node() -> None:
    bad = [i for i in IMPORTS if _within(i.importer, "protocol") and _within(i.target, "node")]
    assert not bad, "protocol/ must not import node/:\n" + _report(bad)


def test_no_deferred_imports_of_our_modules_outside_the_cli() -> None:
    bad = [i for i in IMPORTS if i.deferred and not _within(i.importer, CLI)]
    assert not bad, ("import node/ and protocol/ modules at the top of the module (deferring "
                     "is for optional third-party dependencies):\n" + _report(bad))


def test_the_client_library_does_not_import_the_rpc_server() -> None:
    bad = [i for i in IMPORTS if _within(i.importer, "node.client")
           and _within(i.target, "node.rpc")]
    assert not bad, "node/client must stand alone (shared formats: node.credentials):\n" + \
        _report(bad)
