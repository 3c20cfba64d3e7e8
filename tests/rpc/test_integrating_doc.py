"""docs/integrating.md stays true: the limits it quotes are the code's, the methods it names
exist, and the files it links to are in the repository."""

from __future__ import annotations

import importlib
import pathlib
import re

from node.rpc.openrpc import standalone_dispatcher

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "integrating.md"
CONSTANT = re.compile(r"`(?P<module>(?:node|protocol)(?:\.\w+)+)\.(?P<name>[A-Z][A-Z0-9_]+)` = "
                      r"(?P<value>[0-9.]+)")
METHOD = re.compile(r"`([a-z_]+\.[a-z_]+)`")
# Institution ids the guide shows as examples (they look like method names).
INSTITUTIONS = {"bank.boc-qd", "customs.qd", "tax.qd", "regulator.safe-qd"}
LINK = re.compile(r"\]\(([^)#:]+)(?:#[^)]*)?\)")


def test_every_limit_quoted_is_the_codes() -> None:
    quoted = list(CONSTANT.finditer(GUIDE.read_text()))
    assert len(quoted) >= 15
    for m in quoted:
        actual = getattr(importlib.import_module(m["module"]), m["name"])
        assert str(actual) == m["value"], f"{m['module']}.{m['name']} is {actual}, the guide " \
            f"says {m['value']}"


def test_every_method_named_exists() -> None:
    methods = set(standalone_dispatcher().methods)
    named = {name for name in METHOD.findall(GUIDE.read_text())
             if name.split(".")[0] in {m.split(".")[0] for m in methods}}
    assert {"tx.submit", "sub.blocks", "block.get"} <= named
    assert named - methods - INSTITUTIONS == set()


def test_every_relative_link_resolves() -> None:
    links = LINK.findall(GUIDE.read_text())
    assert links
    for link in links:
        assert (GUIDE.parent / link).exists(), f"docs/integrating.md links to missing {link}"
