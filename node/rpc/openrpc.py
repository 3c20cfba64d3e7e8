"""The OpenRPC document of the API, built from the registered methods, and the dispatcher
that serves every method plus `rpc.discover` (that document).

docs/openrpc.json keeps a copy in the repository (regenerate with
`python -m node.rpc.openrpc > docs/openrpc.json`; a test checks both agree).
"""

from __future__ import annotations

import sys
from typing import Any, Final, cast

import orjson

from node.config import RpcSettings
from node.rpc import errors as E
from node.rpc import jsonrpc
from node.rpc.jsonrpc import ACCESS_PUBLIC, CallContext, Dispatcher, Method
from node.rpc.methods import Api, register

OPENRPC_VERSION: Final = "1.2.6"
API_VERSION: Final = "1.0.0"
DISCOVER: Final = "rpc.discover"


def _method(m: Method) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name,
        "summary": m.summary,
        "paramStructure": "either",
        "params": [{"name": p.name, "required": p.required, "schema": p.schema,
                    **({"description": p.description} if p.description else {})}
                   for p in m.param_specs],
        "result": {"name": "result", "schema": m.result or {}},
    }
    if m.write:
        out["x-requires-client-credential"] = True
    # public: anyone; member: a client credential or loopback (unless [rpc] anonymous_reads);
    # proof: the request proves who reads (ADR 0024)
    out["x-access"] = m.access
    if m.errors:
        out["errors"] = [{"code": c, "message": E.ERROR_DOCS[c][0]} for c in m.errors]
    return out


def document(dispatcher: Dispatcher) -> dict[str, Any]:
    methods = [_method(m) for m in sorted(dispatcher.methods.values(), key=lambda m: m.name)]
    standard = [(jsonrpc.PARSE_ERROR, "Parse error"),
                (jsonrpc.INVALID_REQUEST, "Invalid Request"),
                (jsonrpc.METHOD_NOT_FOUND, "Method not found"),
                (jsonrpc.INVALID_PARAMS, "Invalid params"),
                (jsonrpc.INTERNAL_ERROR, "Internal error")]
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "Crossbill node JSON-RPC API", "version": API_VERSION,
                 "description": "JSON-RPC 2.0 over HTTP POST / and WebSocket GET /ws. See "
                 "docs/adr/0008-json-rpc-api.md for credentials, limits and errors."},
        "methods": methods,
        "components": {"errors": {
            str(code): {"code": code, "message": msg} for code, msg in standard} | {
            str(code): {"code": code, "message": msg, "data": {"description": text}}
            for code, (msg, text) in sorted(E.ERROR_DOCS.items())}},
    }


def discover_method() -> tuple[str, dict[str, Any]]:
    return DISCOVER, {"type": "object", "required": ["openrpc", "info", "methods"]}


def dumps(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def build_dispatcher(api: Api, batch_requests_max: int) -> Dispatcher:
    """Every method of `api`, and `rpc.discover`."""
    dispatcher = Dispatcher(batch_requests_max)
    register(dispatcher, api)
    name, result = discover_method()
    doc: dict[str, Any] = {}

    async def discover(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        if not doc:
            doc.update(document(dispatcher))
        return doc

    dispatcher.add(name, discover, summary="This API's OpenRPC document.", result=result,
                   access=ACCESS_PUBLIC)
    return dispatcher


def standalone_dispatcher() -> Dispatcher:
    """The dispatcher without a node (for the OpenRPC document): handlers are never called."""
    api = Api(intake=cast(Any, None), status=dict, hub=cast(Any, None), config=cast(Any, None))
    return build_dispatcher(api, RpcSettings().batch_requests_max)


def main() -> None:
    sys.stdout.buffer.write(dumps(document(standalone_dispatcher())))


if __name__ == "__main__":
    main()
