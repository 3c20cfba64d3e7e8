"""The OpenRPC document of the API, built from the registered methods.

`rpc.discover` serves it; docs/openrpc.json keeps a copy in the repository (regenerate with
`python -m node.rpc.openrpc > docs/openrpc.json`; a test checks both agree).
"""

from __future__ import annotations

import sys
from typing import Any, Final

import orjson

from node.rpc import errors as E
from node.rpc import jsonrpc
from node.rpc.jsonrpc import Dispatcher, Method

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


def main() -> None:
    from node.rpc.server import standalone_dispatcher

    sys.stdout.buffer.write(dumps(document(standalone_dispatcher())))


if __name__ == "__main__":
    main()
