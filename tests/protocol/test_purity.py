"""protocol/ is pure: importing it loads no I/O, clock or randomness, and its code imports none."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

PROTOCOL = pathlib.Path(__file__).resolve().parents[2] / "protocol"

# Never loaded, even indirectly, by importing every module of protocol/.
FORBIDDEN_AT_RUNTIME = {"trio", "plyvel", "libp2p", "prometheus_client", "asyncio", "socket",
                        "random", "secrets", "multiaddr", "trio_websocket", "hypothesis"}
# Never imported by protocol/'s own code (libraries may use the clock internally, e.g. to time
# a KDF, which does not reach our results).
FORBIDDEN_IN_SOURCE = FORBIDDEN_AT_RUNTIME | {"time", "datetime", "os", "sys", "io", "pathlib",
                                              "subprocess", "threading", "logging", "uuid",
                                              "node", "tempfile", "shutil", "signal"}


def test_importing_protocol_loads_no_io_clock_or_randomness() -> None:
    script = (
        "import importlib, pkgutil, sys, protocol\n"
        "for m in pkgutil.walk_packages(protocol.__path__, 'protocol.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=PROTOCOL.parent).stdout
    loaded = set(out.split())
    assert "protocol" in loaded
    assert loaded & FORBIDDEN_AT_RUNTIME == set()


def _imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            roots.add("__import__")
    return roots


def test_protocol_source_imports_nothing_impure() -> None:
    files = sorted(PROTOCOL.rglob("*.py"))
    assert len(files) >= 8
    offenders = {str(f.relative_to(PROTOCOL)): sorted(_imported_roots(f) & (
        FORBIDDEN_IN_SOURCE | {"__import__"})) for f in files}
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def test_protocol_source_uses_no_floats() -> None:
    for f in sorted(PROTOCOL.rglob("*.py")):
        tree = ast.parse(f.read_text(), str(f))
        floats = [n.lineno for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, float)]
        calls = [n.lineno for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "float"]
        divisions = [n.lineno for n in ast.walk(tree)
                     if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)]
        assert (floats, calls, divisions) == ([], [], []), f"floats in {f}"
