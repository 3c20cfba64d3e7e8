"""A real full disk on one orderer of a multi-process devnet (issue 22, docs/adr/0031).

The orderer's data_dir is a small tmpfs (mounted before the node first starts). Under load,
a filler file takes every byte left on it: the node's next LevelDB write fails with ENOSPC, so
it stops ordering and applying, /readyz fails with the storage check naming the error, and the
other orderers keep committing. The filler is deleted: the node's probe finds the disk
writable, reopens its store, and catches up to the same tip and state root as everyone else,
with every acknowledged transaction. Needs root (mount), as CI runs; it fails, never skips,
without it. Prints the time to detect and the time to resume.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from node.cli import devnet
from node.client.transport import RpcError
from node.rpc.errors import STORAGE_UNAVAILABLE_CODE
from tests.e2e.harness import Load, running_devnet
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow

VICTIM = "bank.abc-qd"  # an orderer
TMPFS_BYTES = 24 * 1024 * 1024
FILL_CHUNK_BYTES = 1024 * 1024


def _readyz(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _fill(path: pathlib.Path) -> int:
    """Write `path` until the filesystem has no byte left (ENOSPC); the bytes written."""
    written = 0
    chunk = FILL_CHUNK_BYTES
    with open(path, "wb", buffering=0) as f:
        while chunk >= 1:
            try:
                written += f.write(b"\xff" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    return written


def test_an_orderer_on_a_full_disk_stops_and_resumes_once_space_is_freed(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/e2e/test_disk_full.py mounts a tmpfs: run it as root (CI does)",
                    pytrace=False)
    mounted: list[pathlib.Path] = []
    start_node = devnet.start_node

    def start_on_tmpfs(config: pathlib.Path, log_path: pathlib.Path) -> Any:
        if config.parent.name == VICTIM and not mounted:
            data = config.parent / "data"
            data.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700",
                            "tmpfs", str(data)], check=True, capture_output=True)
            mounted.append(data)
        return start_node(config, log_path)

    monkeypatch.setattr(devnet, "start_node", start_on_tmpfs)
    started = time.monotonic()
    try:
        with running_devnet(tmp_path / "net") as dn:
            up_s = time.monotonic() - started
            assert mounted, f"{VICTIM} was not started on a tmpfs"
            data = mounted[0]
            readyz = dn.node(VICTIM)["metrics_url"].replace("/metrics", "/readyz")
            others = [n for n in dn.names() if n.startswith("bank.") and n != VICTIM]
            with Load(dn, ["customs.qd", others[0], others[1]]) as load:
                load.wait_acknowledged(10)
                filled_at = time.monotonic()
                filler = data / "filler"
                _fill(filler)

                def unwritable() -> dict[str, Any] | None:
                    code, body = _readyz(readyz)
                    return body if code == 503 and "storage_writable" in body["failed"] else None

                body = wait_until_sync(unwritable, 20, poll_s=0.1, retry_on=(OSError,),
                                       what=f"{VICTIM}'s /readyz failing on storage")
                detect_s = time.monotonic() - filled_at
                assert "No space left on device" in body["failed"]["storage_writable"], body
                status = dn.status(VICTIM)
                assert status["orderer"] is False and "No space left" in status["storage_error"]
                stopped = status["height"]
                # the others keep committing without it
                before = len(load.acknowledged)
                load.wait_acknowledged(before + 10, timeout_s=20)
                assert dn.status(others[0])["height"] > stopped
                with dn.client_ctx(VICTIM) as c:  # reads still served, writes refused
                    assert c.status()["height"] >= stopped
                    with pytest.raises(RpcError) as refused:
                        c.submit(load.make_tx(), wait=False)
                    assert refused.value.code == STORAGE_UNAVAILABLE_CODE, refused.value
                    assert "another node" in refused.value.message
                filler.unlink()
                freed_at = time.monotonic()
                wait_until_sync(lambda: _readyz(readyz)[0] == 200, 20, poll_s=0.1,
                                retry_on=(OSError,), what=f"{VICTIM} ready again")
                resume_s = time.monotonic() - freed_at
                load.wait_acknowledged(len(load.acknowledged) + 5, timeout_s=20)
            height = dn.wait_agree(min_height=stopped + 1, timeout_s=30)
            dn.assert_all_have(load.acknowledged)
            assert dn.status(VICTIM)["storage_error"] is None
            log = pathlib.Path(dn.node(VICTIM)["log"]).read_text()
            assert "storage writable again" in log
            errors = [line for line in log.splitlines() if "storage: cannot write" in line]
            assert len(errors) == 1 and "No space left on device" in errors[0], errors
            print(f"\n{errors[0]}")
            print(f"disk full: detected in {detect_s:.2f} s (filler written to /readyz 503), "
                  f"ready {resume_s:.2f} s after the filler was deleted; stopped at height "
                  f"{stopped}, all nodes agree at {height}; {len(load.acknowledged)} "
                  f"acknowledged transactions, {load.failures} failed submissions; devnet up "
                  f"{up_s:.1f} s, the test after it {time.monotonic() - started - up_s:.1f} s")
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
