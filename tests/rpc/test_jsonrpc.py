"""JSON-RPC 2.0 conformance of the dispatcher, transport-free: every error path, batches,
notifications, positional params and the credential check of write methods."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from node.rpc.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    UNAUTHORIZED,
    CallContext,
    Dispatcher,
    Param,
    RpcError,
)

CALLS: list[Any] = []


def dispatcher(batch_max: int = 5) -> Dispatcher:
    d = Dispatcher(batch_max)

    async def echo(params: dict[str, Any], ctx: CallContext) -> Any:
        CALLS.append(params)
        return params

    async def boom(params: dict[str, Any], ctx: CallContext) -> Any:
        raise RuntimeError("secret internal detail")

    async def app_error(params: dict[str, Any], ctx: CallContext) -> Any:
        raise RpcError(-32020, "no such thing", {"code": "NOT_FOUND"})

    d.add("t.echo", echo, (Param("a", {}, True), Param("b", {})), summary="", result={})
    d.add("t.boom", boom, summary="", result={})
    d.add("t.app", app_error, summary="", result={})
    d.add("t.write", echo, (Param("a", {}),), summary="", result={}, write=True)
    return d


async def handle(body: Any, ctx: CallContext | None = None, batch_max: int = 5) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    out = await dispatcher(batch_max).handle(raw, ctx)
    return None if out is None else orjson.loads(out)


def req(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    r: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        r["params"] = params
    return r


def code(reply: dict[str, Any]) -> int:
    return int(reply["error"]["code"])


@pytest.mark.parametrize("body", [b"{", b"", b"\xff\xfe", b'{"jsonrpc": "2.0",}', b"[1,"])
async def test_parse_error_has_null_id(body: bytes) -> None:
    reply = await handle(body)
    assert code(reply) == PARSE_ERROR and reply["id"] is None and reply["jsonrpc"] == "2.0"


@pytest.mark.parametrize("request_, expected_id", [
    (1, None), ("x", None), (None, None), ({"method": "t.echo", "id": 3}, 3),
    ({"jsonrpc": "1.0", "method": "t.echo", "id": 3}, 3),
    ({"jsonrpc": "2.0", "method": 7, "id": 3}, 3),
    ({"jsonrpc": "2.0", "id": 3}, 3),
    ({"jsonrpc": "2.0", "method": "t.echo", "id": [1]}, None),
    ({"jsonrpc": "2.0", "method": "t.echo", "id": {}}, None),
    ({"jsonrpc": "2.0", "method": "t.echo", "id": True}, None),
    ({"jsonrpc": "2.0", "method": "t.echo", "params": "a", "id": 4}, 4),
    ({"jsonrpc": "2.0", "method": "t.echo", "params": None, "id": 4}, 4),
    ({"jsonrpc": "2.0", "method": "t.echo", "extra": 1, "id": 5}, 5),
])
async def test_invalid_request(request_: Any, expected_id: Any) -> None:
    reply = await handle(request_)
    assert code(reply) == INVALID_REQUEST
    assert reply["id"] == expected_id


async def test_method_not_found_and_params() -> None:
    assert code(await handle(req("nope"))) == METHOD_NOT_FOUND
    assert code(await handle(req("t.echo", {}))) == INVALID_PARAMS           # missing
    assert code(await handle(req("t.echo", {"a": 1, "z": 2}))) == INVALID_PARAMS  # unknown
    assert code(await handle(req("t.echo", [1, 2, 3]))) == INVALID_PARAMS     # too many
    assert (await handle(req("t.echo", [1, 2])))["result"] == {"a": 1, "b": 2}  # by position
    assert (await handle(req("t.echo", {"a": 1}, id="s")))["id"] == "s"
    assert (await handle(req("t.echo", {"a": 1}, id=None)))["id"] is None


async def test_internal_error_hides_details_and_app_errors_carry_data() -> None:
    reply = await handle(req("t.boom"))
    assert code(reply) == INTERNAL_ERROR and "secret" not in orjson.dumps(reply).decode()
    reply = await handle(req("t.app"))
    assert reply["error"] == {"code": -32020, "message": "no such thing",
                              "data": {"code": "NOT_FOUND"}}


async def test_notifications_get_no_reply_even_on_error() -> None:
    CALLS.clear()
    for method in ("t.echo", "t.boom", "nope", "t.app"):
        assert await handle({"jsonrpc": "2.0", "method": method, "params": {"a": 9}}) is None
    assert CALLS == [{"a": 9}]  # the notification was executed


async def test_batch_mixing_good_bad_and_notifications() -> None:
    batch = [req("t.echo", {"a": 1}, id=1), {"jsonrpc": "2.0", "method": "t.echo",
                                              "params": {"a": 2}},
             req("nope", id=2), 42, req("t.echo", {}, id=3), {"foo": "bar"},
             req("t.boom", id=4)]
    replies = await handle(batch, batch_max=10)
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    assert len(replies) == 6  # one per request that is not a valid notification
    assert by_id[1]["result"] == {"a": 1}
    assert code(by_id[2]) == METHOD_NOT_FOUND
    assert code(by_id[3]) == INVALID_PARAMS
    assert code(by_id[4]) == INTERNAL_ERROR
    assert sorted(code(r) for r in replies if r["id"] is None) == [INVALID_REQUEST] * 2


async def test_batch_edges() -> None:
    reply = await handle([])
    assert isinstance(reply, dict) and code(reply) == INVALID_REQUEST
    reply = await handle([1, 2, 3])
    assert [code(r) for r in reply] == [INVALID_REQUEST] * 3
    assert await handle([{"jsonrpc": "2.0", "method": "t.echo", "params": {"a": 1}}]) is None
    reply = await handle([req("t.echo", {"a": 1}, id=i) for i in range(6)], batch_max=5)
    assert isinstance(reply, dict) and code(reply) == INVALID_REQUEST
    assert "limit is 5" in reply["error"]["message"]


async def test_write_methods_need_a_credential_when_required() -> None:
    open_ctx = CallContext(auth_required=False)
    assert (await handle(req("t.write", {"a": 1}), open_ctx))["result"] == {"a": 1}
    closed = await handle(req("t.write", {"a": 1}), CallContext(auth_required=True))
    assert code(closed) == UNAUTHORIZED and closed["error"]["data"]["reason"]
    client = CallContext(auth_required=True, client="backoffice")
    assert (await handle(req("t.write", {"a": 1}), client))["result"] == {"a": 1}
    reads = await handle(req("t.echo", {"a": 1}), CallContext(auth_required=True))
    assert reads["result"] == {"a": 1}  # reads need no credential
