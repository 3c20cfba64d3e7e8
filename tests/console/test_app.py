"""The console over HTTP against a live in-process node (tests/rpc/harness.py): the network
page, error pages that say what went wrong (404, 400, 403, 503, 500), and calls that carry
the console's own credentials, so it shows nothing the node would not let them read."""

from __future__ import annotations

import logging
import pathlib
import re
from collections.abc import Mapping

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from node.client import Credential
from node.console.app import NETWORK_BLOCKS_MAX, commit_everywhere
from node.console.common import NodeApi, Page, Viewer, query_text
from node.console.rpc import RpcNodeApi, viewer_of
from node.keys import generate_key
from tests.console.harness import commit_blocks, console, serve_rpc_of
from tests.rpc.harness import RPC_NODE, rpc_cluster
from tests.rpc.test_client_signatures import serving
from tests.waiting import wait_until

BANK = Viewer(RPC_NODE, "bank")


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as http:
        return await http.get(url)


async def record_page(query: Mapping[str, str], node: NodeApi, viewer: Viewer) -> Page:
    """A test page: a declaration by number, as H2's search page reads records."""
    number = query_text(query, "declaration_no", required=True)
    found = await node.call("declaration.get", {"declaration_no": number})
    return Page("error_body.html", "Declaration", {"error": {"status": 200, "title": "found",
                                                               "message": str(found)}})


async def broken_page(query: Mapping[str, str], node: NodeApi, viewer: Viewer) -> Page:
    raise RuntimeError("a bug in a page")


TEST_PAGES = {"/record": record_page, "/broken": broken_page}


async def test_the_network_page_shows_the_nodes_institutions_and_last_blocks(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc:
        await commit_blocks(rc, 2)
        icbc_url, _ = await serve_rpc_of(rc, "bank.icbc-qd")
        api = RpcNodeApi(rc.url)
        viewer = await viewer_of(api)
        assert viewer == BANK
        peers = {"bank.icbc-qd": RpcNodeApi(icbc_url), "tax.qd": RpcNodeApi(
            "http://127.0.0.1:9/", timeout_s=2)}
        tip = rc.node.chain.height
        await wait_until(lambda: rc.c.nodes["bank.icbc-qd"].chain.height >= tip, 10,
                         what="ICBC's node at the tip")
        async with console(api, viewer, peers=peers) as url:
            home = await get(url + "/")
            assert (home.status_code, home.headers["location"]) == (303, "/network")
            page = await get(url + "/network")
        rc.c.nursery.cancel_scope.cancel()
    assert page.status_code == 200
    html = page.text
    assert 'id="viewer">bank.boc-qd <span class="role">bank</span>' in html
    assert 'data-node="bank.boc-qd"><td>bank.boc-qd (connected)' in html
    assert '<tr class="up" data-node="bank.icbc-qd">' in html
    assert '<tr class="down" data-node="tax.qd">' in html and "127.0.0.1:9" in html
    for name in ("SAFE Qingdao Branch", "Qingdao Customs", "ICBC Qingdao"):
        assert name in html
    height = rc.node.chain.height
    assert height >= 2
    rows = [h for h in range(height, 0, -1)][:NETWORK_BLOCKS_MAX]
    for h in rows:
        assert f'<tr data-height="{h}">' in html
    # both reachable nodes applied the tip: its time to commit everywhere is shown
    assert re.search(rf'<tr data-height="{tip}">.*?<td class="commit">\d+ ms \(2 nodes\)</td>',
                     html), html[html.find('id="blocks"'):][:1500]
    assert '<script src="/static/network.js">' in html


def test_time_to_commit_everywhere_waits_for_every_reachable_node() -> None:
    rows = [{"down": False, "applied": {5: 1_250, 6: 2_000}},
            {"down": False, "applied": {5: 1_400}},
            {"down": True}]
    assert commit_everywhere(5, 1_000, rows) == {"applied_by": 2, "reachable": 2,
                                                 "commit_ms": 400}
    assert commit_everywhere(6, 1_900, rows) == {"applied_by": 1, "reachable": 2,
                                                 "commit_ms": None}
    assert commit_everywhere(4, 900, rows)["commit_ms"] is None  # no longer listed


async def test_unknown_routes_and_bad_queries_are_error_pages(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        async with console(RpcNodeApi(rc.url), BANK, pages=TEST_PAGES) as url:
            unknown = await get(url + "/no/such/page")
            missing = await get(url + "/record")
            too_long = await get(url + "/record?declaration_no=" + "x" * 300)
            not_found = await get(url + "/record?declaration_no=QD-NONE")
            with caplog.at_level(logging.ERROR, logger="crossbill.console"):
                broken = await get(url + "/broken")
            css = await get(url + "/static/console.css")
        rc.c.nursery.cancel_scope.cancel()
    assert unknown.status_code == 404
    assert "the console has no page at /no/such/page" in unknown.text
    assert (missing.status_code, "give declaration_no" in missing.text) == (400, True)
    assert too_long.status_code == 400 and "at most 256 printable characters" in too_long.text
    assert not_found.status_code == 404 and "QD-NONE" in not_found.text
    assert broken.status_code == 500 and "Console error" in broken.text
    assert any("/broken failed" in r.getMessage() for r in caplog.records)
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


async def test_a_node_down_is_a_503_page_naming_it() -> None:
    dead = "http://127.0.0.1:9/"
    async with console(RpcNodeApi(dead, timeout_s=2), BANK) as url:
        page = await get(url + "/network")
    assert page.status_code == 503
    assert "Node down" in page.text and "the node at http://127.0.0.1:9/ does not answer" in (
        page.text)


async def test_the_console_calls_with_its_credentials_and_shows_refusals(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        key, url, server = await serving(rc, "backoffice")  # requires client credentials
        signed = RpcNodeApi(url, Credential("backoffice", key))
        with trio.fail_after(30):
            viewer = await viewer_of(signed)
            async with console(signed, viewer, pages=TEST_PAGES) as base:
                ok = await get(base + "/network")
                record = await get(base + "/record?declaration_no=QD-NONE")
            wrong = RpcNodeApi(url, Credential("backoffice", generate_key()))
            async with console(wrong, viewer, pages=TEST_PAGES) as base:
                wrong_network = await get(base + "/network")
                wrong_record = await get(base + "/record?declaration_no=QD-NONE")
        rc.c.nursery.cancel_scope.cancel()
    assert ok.status_code == 200 and 'id="institutions"' in ok.text
    assert record.status_code == 404  # past the credential check: the node looked
    for page in (wrong_network, wrong_record):
        assert page.status_code == 403, page.text
        assert "Not authorised" in page.text
        assert 'id="institutions"' not in page.text and "ICBC Qingdao" not in page.text
    accepted = dict(server.snapshot().credentials).get(("rfc9421", "accepted"), 0)
    assert accepted >= 4  # every call of the signed console carried its signature


async def snapshot_when_admitted(live: str) -> str:
    while True:
        try:
            async with open_websocket_url(live) as ws:
                return str(await ws.get_message())
        except ConnectionClosed:
            await trio.sleep(0.05)


async def test_live_pages_are_pushed_snapshots_and_bounded(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        async with console(RpcNodeApi(rc.url), BANK, live_interval_s=0.1,
                           live_sockets_max=1) as url:
            live = url.replace("http://", "ws://") + "/live"
            with trio.fail_after(20):
                async with open_websocket_url(live) as first:
                    snapshot = await first.get_message()
                    async with open_websocket_url(live) as second:
                        with pytest.raises(ConnectionClosed) as closed:
                            await second.get_message()
                    await first.get_message()  # the first one still gets its snapshots
                # its place is freed once the console saw it close (under the deadline)
                assert 'id="nodes"' in await snapshot_when_admitted(live)
        rc.c.nursery.cancel_scope.cancel()
    assert 'id="nodes"' in snapshot and 'data-node="bank.boc-qd"' in snapshot
    assert "<html" not in snapshot  # the page's body only, which network.js swaps in
    assert closed.value.reason is not None
    assert (closed.value.reason.code, "at most 1 live pages" in str(closed.value.reason.reason)
            ) == (1013, True)


async def test_other_hosts_and_origins_are_refused(tmp_path: pathlib.Path) -> None:
    """DNS rebinding: a request naming another Host gets no page; a live socket opened by a
    page of another origin is closed; the console's own pages work."""
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        async with console(RpcNodeApi(rc.url), BANK, live_interval_s=0.1) as url:
            async with httpx.AsyncClient(timeout=20) as http:
                rebound = await http.get(url + "/network", headers={"host": "evil.example"})
            assert rebound.status_code == 400 and "bank.boc-qd" not in rebound.text
            assert (await get(url + "/network")).status_code == 200
            live = url.replace("http://", "ws://") + "/live"
            with trio.fail_after(20):
                async with open_websocket_url(
                        live, extra_headers=[("Origin", "http://evil.example")]) as ws:
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.get_message()
                own = "http://" + url.split("://", 1)[1]
                async with open_websocket_url(live, extra_headers=[("Origin", own)]) as ws:
                    assert 'id="nodes"' in await ws.get_message()
        rc.c.nursery.cancel_scope.cancel()
    assert closed.value.reason is not None and closed.value.reason.code == 1008
