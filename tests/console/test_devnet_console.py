"""The devnet's console (node/cli/devnet.py, a process of node processes: `serial` in
tests/conftest.py): the regulator's console shows every node, turns a killed node "down" and
stops with the devnet."""

from __future__ import annotations

import pathlib
import urllib.request

from node.cli import devnet
from tests.e2e.harness import running_devnet
from tests.waiting import wait_until_sync


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def test_the_devnet_runs_the_regulators_console(tmp_path: pathlib.Path) -> None:
    with running_devnet(tmp_path / "net", console=True) as net:
        console = net.desc["console"]
        html = fetch(console["url"])
        assert 'id="viewer">regulator.safe-qd <span class="role">regulator</span>' in html
        for name in net.names():
            assert f'<tr class="up" data-node="{name}">' in html
        net.kill9("tax.qd")
        wait_until_sync(lambda: '<tr class="down" data-node="tax.qd">' in fetch(console["url"]),
                        15, what="the killed node shown down")
    assert not devnet.pid_alive(console["pid"])
