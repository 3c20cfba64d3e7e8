"""The network page in a real headless chromium: it shows the nodes, updates over its
WebSocket when a new block commits, and shows a stopped node as down; screenshots saved."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import trio

from node.console.rpc import RpcNodeApi, viewer_of
from tests.console.browser import Browser
from tests.console.harness import commit_blocks, console, serve_rpc_of
from tests.rpc.harness import RPC_NODE, rpc_cluster

WAIT_S = 15.0


def css(selector: str) -> Callable[[Any], Any]:
    return lambda driver: driver.find_elements("css selector", selector)


async def test_the_network_page_is_live_in_a_real_browser(
        tmp_path: pathlib.Path, browser: Browser) -> None:
    async with rpc_cluster(tmp_path) as rc:
        await commit_blocks(rc, 1)
        icbc_url, icbc_rpc = await serve_rpc_of(rc, "bank.icbc-qd")
        api = RpcNodeApi(rc.url)
        peers = {"bank.icbc-qd": RpcNodeApi(icbc_url, timeout_s=2)}
        with trio.fail_after(60):
            async with console(api, await viewer_of(api), peers=peers,
                               live_interval_s=0.5) as url:

                def opened() -> None:
                    browser.driver.get(url + "/network")
                    browser.wait_for(css(f'tr.up[data-node="{RPC_NODE}"]'), WAIT_S,
                                     "the connected node's row")
                    browser.wait_for(css('tr.up[data-node="bank.icbc-qd"]'), WAIT_S,
                                     "the peer's row")
                    browser.wait_for(css("#live.on"), WAIT_S, "the live WebSocket")
                    browser.screenshot("network")

                await trio.to_thread.run_sync(opened)
                await commit_blocks(rc, 1)
                height = rc.node.chain.height

                def updated() -> None:
                    browser.wait_for(css(f'#blocks tr[data-height="{height}"]'), WAIT_S,
                                     f"block {height} pushed over the WebSocket")
                    browser.screenshot("network-new-block")

                await trio.to_thread.run_sync(updated)
                icbc_rpc.cancel()
                rc.c.stop("bank.icbc-qd")

                def down() -> str:
                    rows = browser.wait_for(css('tr.down[data-node="bank.icbc-qd"]'), WAIT_S,
                                            "the stopped node shown as down")
                    browser.screenshot("network-node-down")
                    return str(rows[0].text)

                down_text = await trio.to_thread.run_sync(down)
                loaded_once = await trio.to_thread.run_sync(
                    lambda: browser.driver.execute_script(
                        "return performance.getEntriesByType('navigation').length"))
        rc.c.nursery.cancel_scope.cancel()
    assert "down" in down_text and icbc_url.rstrip("/") in down_text
    assert loaded_once == 1  # the updates came over the WebSocket, not by reloading
    for name in ("network", "network-new-block", "network-node-down"):
        shot = browser.folder / f"{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (browser.shared / shot.name).exists()
