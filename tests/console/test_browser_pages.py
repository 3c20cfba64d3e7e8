"""The record pages in a real headless chromium, as the regulator and as the two banks, after
the headline workflow on an in-process cluster: the exposure page shows the refused double
financing's declaration with its pledge and what is owed, a bank sees another bank's terms
only as sealed, search finds the records, the audit page is the regulator's; a screenshot of
each page."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import trio

from node.cli.demo import EXPORTER, headline_steps
from node.client import AsyncClient
from node.console.rpc import RpcNodeApi, viewer_of
from node.keys import generate_key
from tests.console.browser import Browser
from tests.console.harness import console, serve_rpc_of
from tests.rpc.harness import rpc_cluster
from tests.waiting import wait_until

WAIT_S = 15.0


def text_of(browser: Browser, selector: str) -> str:
    found = browser.wait_for(lambda d: d.find_elements("css selector", selector), WAIT_S,
                             selector)
    return str(found[0].text)


def page(browser: Browser, url: str, shot: str) -> Callable[[], str]:
    def load() -> str:
        browser.driver.get(url)
        text = text_of(browser, "main")
        browser.screenshot(shot)
        return text

    return load


async def every_node_at(rc: Any, height: int) -> None:
    """Wait until every node applied `height`: a node answers `committed` once *it* applied
    a block; the consoles here read the regulator's and ICBC's nodes (read your writes)."""
    await wait_until(lambda: all(n.chain.height >= height for n in rc.c.nodes.values()),
                     WAIT_S, what=f"every node at height {height}")


async def test_record_pages_in_a_real_browser(tmp_path: pathlib.Path, browser: Browser) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncExitStack() as stack:
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), generate_key())
        async with AsyncClient(rc.url) as client:
            for step in steps[:13]:  # up to the refused double financing
                await client.submit(step.tx, wait=True)
        await every_node_at(rc, rc.node.chain.height)  # the consoles read other nodes
        regulator_rpc, _ = await serve_rpc_of(rc, "regulator.safe-qd")
        icbc_rpc, _ = await serve_rpc_of(rc, "bank.icbc-qd")
        urls: dict[str, str] = {}
        for name, rpc in (("regulator", regulator_rpc), ("boc", rc.url), ("icbc", icbc_rpc)):
            api = RpcNodeApi(rpc)
            urls[name] = await stack.enter_async_context(console(api, await viewer_of(api)))

        async def show(name: str, path: str, shot: str) -> str:
            return await trio.to_thread.run_sync(page(browser, urls[name] + path, shot))

        with trio.fail_after(90):
            seen = await show("regulator", f"/exposure?uscc={EXPORTER}", "exposure-regulator")
            row = await trio.to_thread.run_sync(
                lambda: text_of(browser, "#decl-QD-2026-EX-0001"))
            assert "USD 600,000.00" in row  # declared, and still receivable
            assert "bank.boc-qd: USD 540,000.00" in row  # pledged by the first bank
            assert "CNY 6,390,000.00" in seen  # what the enterprise owes
            overview = await show("regulator", "/exposure", "exposure-overview")
            assert "bank.icbc-qd" in overview and "CNY 6,390,000.00" in overview
            book = await show("boc", "/exposure", "exposure-bank-book")
            assert "FIN-BOC-0001" in book and "(not to you)" not in book
            other = await show("icbc", f"/exposure?uscc={EXPORTER}", "exposure-other-bank")
            assert "FIN-BOC-0001" in other and "(not to you)" in other
            source = await trio.to_thread.run_sync(lambda: browser.driver.page_source)
            async with AsyncClient(rc.url) as client:
                fin = await client.call("financing.get", {"financing_id": "FIN-BOC-0001"})
                assert fin["financing"]["terms"][0]["ciphertext"] not in source
                for step in steps[13:]:
                    await client.submit(step.tx, wait=True)
            await every_node_at(rc, rc.node.chain.height)
            for q, shot, expect in (("QD-2026-EX-0001", "search-declaration", "Declaration"),
                                    ("FIN-BOC-0001", "search-financing", "Financing"),
                                    ("TX-2026-0001", "search-taxform", "Tax form"),
                                    (EXPORTER, "search-enterprise", "Enterprise"),
                                    (steps[12].tx.id.hex(), "search-transaction",
                                     "DOUBLE_FINANCING"),
                                    ("5", "search-block", "Block 5")):
                found = await show("regulator", f"/search?q={q}", shot)
                assert expect in found, (q, found[:300])
            missing = await show("regulator", "/search?q=QD-NONE", "search-not-found")
            assert "declaration.get" in missing
            form = await show("regulator", "/taxforms?form=TX-2026-0001", "taxforms")
            assert "USD 20,000.00" in form and "PAY-0001" in form
            audit = await show("regulator", "/audit", "audit-regulator")
            assert "fx.publish" in audit
            refused = await show("boc", "/audit", "audit-bank-refused")
            assert "Not authorised" in refused
        rc.c.nursery.cancel_scope.cancel()
    shots = sorted(p.name for p in browser.folder.glob("*.png"))
    assert len(shots) == 14 and all(
        p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in browser.folder.glob("*.png"))
