"""The console's web application (ADR 0036): Starlette on anyio/trio, served by Hypercorn's
trio worker, pages rendered on the server with Jinja2 (node/console/templates/, autoescaped),
assets from node/console/static/ (no CDN).

Routes: `/` redirects to `/network`; `/network` (this module's own page, live over the
WebSocket `/live`); every page of `node.console.pages.PAGES` at its path. A `ConsoleError`
renders templates/error.html with its status; any other exception is a 500 page and a log
line; unknown routes are a 404 page. The console calls the node only through its `NodeApi`
(the institution's own credentials) and forwards nothing raw from the browser.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Protocol

import trio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from node.console.common import ConsoleError, NodeApi, Page, PageFunc, Viewer
from node.console.pages import PAGES

log = logging.getLogger("crossbill.console")

HERE: Final = pathlib.Path(__file__).parent
NETWORK_BLOCKS_MAX: Final = 10  # the last blocks the network page lists
LIVE_INTERVAL_S: Final = 3.0  # a live snapshot at least this often, block or not
LIVE_QUEUE_SNAPSHOTS_MAX: Final = 2  # pending "send a snapshot" wake-ups per WebSocket
LIVE_RESUBSCRIBE_S: Final = 2.0  # wait before re-subscribing to a node that went away
QUERY_PARAMS_MAX: Final = 16  # query parameters a page request may carry
LIVE_SOCKETS_MAX: Final = 32  # live network pages open at once (each follows the node)
LIVE_BUSY_CLOSE_CODE: Final = 1013  # WebSocket close code "try again later" (RFC 6455)
LIVE_ORIGIN_CLOSE_CODE: Final = 1008  # policy violation: a live page opened from elsewhere
# The Host names the console answers by default. The console holds an institution's
# credentials: a web page whose name is rebound to 127.0.0.1 (DNS rebinding) must not read it
# through the victim's browser (the node checks Host the same way, docs/adr/0020).
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")


class Subscribing(Protocol):
    """A NodeApi that can also follow the node's blocks (node/console/rpc.py's does)."""

    def subscribe(self, method: str, params: dict[str, Any] | None = None
                  ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[dict[str, Any]]]:
        ...


def _label(path: str) -> str:
    return path.strip("/").replace("-", " ").capitalize()


def nav() -> list[dict[str, str]]:
    return [{"path": "/network", "label": "Network"},
            *({"path": p, "label": _label(p)} for p in PAGES)]


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["ms_time"] = lambda ms: (
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(ms) / 1000)) + " UTC"
        if isinstance(ms, int) else "")
    return env


# ---------------------------------------------------------------------- the network page


async def _node_row(name: str, api: NodeApi, connected: bool) -> dict[str, Any]:
    try:
        status = await api.call("node.status")
        health = await api.call("node.health")
    except ConsoleError as exc:
        return {"name": name, "connected": connected, "down": True, "reason": exc.message}
    applied = {int(a["height"]): int(a["applied_at_ms"]) for a in status.get("applied", ())
               if isinstance(a, dict) and "height" in a and "applied_at_ms" in a}
    return {"name": name, "connected": connected, "down": False, "applied": applied,
            "institution": status.get("institution", name), "role": status.get("role", ""),
            "height": int(status.get("height", 0)), "leader": status.get("leader") or "",
            "peers": len(status.get("peers", ())), "catching_up": bool(status.get("catching_up")),
            "ready": bool(health.get("ok"))}


def commit_everywhere(height: int, timestamp_ms: int | None,
                      rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How long block `height` took from its timestamp (the proposer's clock) until the last
    reachable node applied it (each node's clock, from its node.status `applied`): the time
    to commit everywhere, once every reachable node lists it; how many did so far."""
    up = [r for r in rows if not r["down"]]
    times = [r["applied"][height] for r in up if height in r.get("applied", {})]
    done = len(times) == len(up) and bool(up) and timestamp_ms is not None
    return {"applied_by": len(times), "reachable": len(up),
            "commit_ms": max(0, max(times) - timestamp_ms) if done and timestamp_ms else None}


async def network_context(node: NodeApi, viewer: Viewer,
                          peers: Mapping[str, NodeApi]) -> dict[str, Any]:
    """The network page's content: the connected node (its failure is the page's error), the
    institutions, the reachable nodes with their lag, and the last blocks."""
    status = await node.call("node.status")
    health = await node.call("node.health")
    consortium = await node.call("consortium.get")
    institutions = sorted(
        ({"id": i.get("id", ""), "name": i.get("name", ""), "role": i.get("role", ""),
          "status": i.get("status", "")}
         for i in consortium.get("current", {}).get("institutions", ())),
        key=lambda i: (i["role"], i["id"]))
    me = str(status.get("institution", viewer.institution))
    targets: list[tuple[str, NodeApi, bool]] = [(me, node, True)]
    targets += [(name, api, False) for name, api in sorted(peers.items()) if name != me]
    rows: list[dict[str, Any]] = [{} for _ in targets]

    async def fill(i: int, name: str, api: NodeApi, connected: bool) -> None:
        rows[i] = await _node_row(name, api, connected)

    async with trio.open_nursery() as nursery:
        for i, (name, api, connected) in enumerate(targets):
            nursery.start_soon(fill, i, name, api, connected)
    top = max((r["height"] for r in rows if not r["down"]), default=0)
    for r in rows:
        if not r["down"]:
            r["lag"] = top - r["height"]
    height = int(status.get("height", 0))
    blocks = []
    for h in range(height, max(0, height - NETWORK_BLOCKS_MAX), -1):
        header = (await node.call("block.get", {"height": h}))["block"]["header"]
        blocks.append({"height": h, "tx_count": header.get("tx_count", 0),
                       "timestamp_ms": header.get("timestamp_ms"),
                       "proposer": header.get("proposer", ""),
                       **commit_everywhere(h, header.get("timestamp_ms"), rows)})
    return {"status": status, "health": health, "institutions": institutions,
            "nodes": rows, "top_height": top, "blocks": blocks,
            "chain_id": consortium.get("chain_id", "")}


# ---------------------------------------------------------------------- the application


def build_app(node: NodeApi, viewer: Viewer, *, peers: Mapping[str, NodeApi] | None = None,
              pages: Mapping[str, PageFunc] | None = None,
              live_interval_s: float = LIVE_INTERVAL_S,
              live_sockets_max: int = LIVE_SOCKETS_MAX,
              allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> Starlette:
    """The console for `viewer`, calling `node` (and reading the status of `peers`, by
    name). `pages` defaults to `node.console.pages.PAGES`. Requests whose Host is not one of
    `allowed_hosts` get 400 (DNS rebinding); a live socket opened by a page of another origin
    is closed (cross-site WebSocket hijacking)."""
    env = environment()
    menu = nav()
    peer_apis = dict(peers or {})
    page_funcs = dict(PAGES if pages is None else pages)
    live_sockets = [0]  # open /live sockets

    def render(template: str, title: str, context: Mapping[str, Any],
               status: int = 200) -> HTMLResponse:
        html = env.get_template(template).render(
            {**context, "title": title, "viewer": viewer, "nav": menu})
        return HTMLResponse(html, status_code=status)

    def error_page(exc: ConsoleError) -> HTMLResponse:
        return render("error.html", exc.title, {"error": exc}, exc.status)

    def guarded(func: Callable[[Request], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if len(request.query_params) > QUERY_PARAMS_MAX:
                    raise ConsoleError(400, "Bad query",
                                       f"at most {QUERY_PARAMS_MAX} query parameters")
                return await func(request)
            except ConsoleError as exc:
                return error_page(exc)
            except Exception:
                log.exception("console: %s %s failed", request.method, request.url.path)
                return error_page(ConsoleError(500, "Console error", "the console failed to "
                                               "render this page; its log has the details"))

        return endpoint

    def page_endpoint(func: PageFunc) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            page: Page = await func(dict(request.query_params), node, viewer)
            return render(page.template, page.title, page.context)

        return guarded(endpoint)

    async def network(request: Request) -> Response:
        context = await network_context(node, viewer, peer_apis)
        return render("network.html", "Network", context)

    async def home(request: Request) -> Response:
        return RedirectResponse("/network", status_code=303)

    async def live(ws: WebSocket) -> None:
        await ws.accept()
        origin = ws.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != ws.headers.get("host"):
            await ws.close(LIVE_ORIGIN_CLOSE_CODE, "a live page is only for the console's own "
                           "pages (Origin is not this console)")
            return
        if live_sockets[0] >= live_sockets_max:
            await ws.close(LIVE_BUSY_CLOSE_CODE, f"at most {live_sockets_max} live pages; "
                           "reload later (the page reads without live updates)")
            return
        live_sockets[0] += 1
        try:
            await _live(ws)
        finally:
            live_sockets[0] -= 1

    async def _live(ws: WebSocket) -> None:
        send, recv = trio.open_memory_channel[None](LIVE_QUEUE_SNAPSHOTS_MAX)

        def wake() -> None:
            try:
                send.send_nowait(None)
            except trio.WouldBlock:  # a snapshot is already due: it will show this block
                pass

        async def follow_blocks() -> None:
            subscribe = getattr(node, "subscribe", None)
            if subscribe is None:
                return
            while True:
                try:
                    async with subscribe("sub.blocks") as blocks:
                        async for _ in blocks:
                            wake()
                except Exception as exc:  # the node went away: the statuses say so; retry
                    log.debug("console: sub.blocks ended: %s", exc)
                wake()
                await trio.sleep(LIVE_RESUBSCRIBE_S)

        async def tick() -> None:
            while True:
                await trio.sleep(live_interval_s)
                wake()

        async def until_closed(cancel: trio.CancelScope) -> None:
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        break
            finally:
                cancel.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(until_closed, nursery.cancel_scope)
            nursery.start_soon(follow_blocks)
            nursery.start_soon(tick)
            try:
                async for _ in recv:
                    try:
                        context = await network_context(node, viewer, peer_apis)
                        html = env.get_template("network_body.html").render(
                            {**context, "viewer": viewer})
                    except ConsoleError as exc:
                        html = env.get_template("error_body.html").render({"error": exc})
                    await ws.send_text(html)
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass
            finally:
                nursery.cancel_scope.cancel()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 404:
            return error_page(ConsoleError(404, "Not found",
                                           f"the console has no page at {request.url.path}"))
        return error_page(ConsoleError(status, "Request refused",
                                       str(getattr(exc, "detail", "")) or str(status)))

    routes: list[Any] = [
        Route("/", home),
        Route("/network", guarded(network)),
        WebSocketRoute("/live", live),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    routes += [Route(path, page_endpoint(func)) for path, func in page_funcs.items()]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found},
                     middleware=[Middleware(TrustedHostMiddleware,
                                            allowed_hosts=list(allowed_hosts))])


async def serve(app: Starlette, host: str, port: int, *,
                task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `app` on host:port (port 0: any free port) with Hypercorn's trio worker;
    `task_status.started` gets the console's base URL."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = log

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(_hypercorn, hypercorn_serve, app, config)
        task_status.started(binds[0].rstrip("/"))


async def _hypercorn(hypercorn_serve: Any, app: Starlette, config: Any, *,
                     task_status: Any = trio.TASK_STATUS_IGNORED
                     ) -> None:
    await hypercorn_serve(app, config, task_status=task_status)
