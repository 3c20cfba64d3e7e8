"""benchmarks/signatures.py and benchmarks/decoding.py run and print their tables (issue
19). Benchmarks print figures; these tests check shape and sanity, never speed."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _quick(script: str) -> str:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                          capture_output=True, text=True, timeout=60, check=True).stdout


def _figure(line: str, unit: str) -> float:
    found = re.search(r"([\d,.]+) us " + re.escape(unit), line)
    assert found, line
    return float(found.group(1).replace(",", ""))


def test_signatures_quick_prints_the_table() -> None:
    out = _quick("signatures.py")
    lines = out.splitlines()
    for name in ("PyNaCl (protocol.crypto.verify, cached key), n=1",
                 "pyca/cryptography Ed25519PublicKey.verify, n=20", "thread pool of 1",
                 "thread pool of 2", "process pool of 2", "trio.to_thread.run_sync, 1 per hop",
                 "trio.to_thread.run_sync, 100 per hop"):
        line = next((x for x in lines if name in x), None)
        assert line is not None, f"{name!r} missing from:\n{out}"
        unit = "CPU/hop" if "hop" in name else "CPU/sig"
        assert _figure(line, unit) > 0, line
    assert "sig/s wall" in out and "two threads' finish times, first/second: PyNaCl" in out


def test_decoding_quick_prints_the_table() -> None:
    out = _quick("decoding.py")
    lines = out.splitlines()
    for case in ("per tx (Tx):", "per block of 20 txs:", "per block of 40 txs:"):
        at = lines.index(case)
        rows = lines[at + 1:at + 4]
        assert "codec (this tree)" in rows[0] and "orjson.loads only" in rows[1], out
        for line in rows:
            assert _figure(line, "CPU") > 0, line
    if "msgspec not installed" not in out:
        assert "msgspec + to our dataclasses" in out
