"""Running Node.js for the tests of examples/js/ (the plain-JavaScript client)."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
from typing import Any, Final

import pytest

ROOT: Final = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE: Final = ROOT / "examples" / "js"
DRIVER: Final = pathlib.Path(__file__).with_name("driver.mjs")
NODE_MAJOR_MIN: Final = 18  # global fetch, Ed25519 and X25519 in node:crypto
DRIVER_TIMEOUT_S: Final = 60.0


def node_binary() -> str:
    """The `node` command; a test fails (never skips) without it: ./dev test installs Debian's
    nodejs."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js) is not installed: the JavaScript client's tests need it "
                    "(`./dev test` installs Debian's nodejs; or apt-get install nodejs)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True,
                             timeout=DRIVER_TIMEOUT_S).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR_MIN:
        pytest.fail(f"node {version} is too old: the JavaScript client needs Node.js "
                    f"{NODE_MAJOR_MIN} or newer")
    return node


def drive(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each case run by tests/js/driver.mjs: [{"result": ...} or {"error": message}]."""
    done = subprocess.run([node_binary(), str(DRIVER)], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(results) == len(cases)
    return results
