"""The OpenRPC document of the API, built from the registered methods, and the dispatcher
that serves every method plus `rpc.discover` (that document).

docs/openrpc.json keeps a copy in the repository (regenerate with
`python -m node.rpc.openrpc > docs/openrpc.json`; a test checks both agree). Schemas come from
the dataclasses (`node.rpc.schema.COMPONENTS`), descriptions from each method's access level
and error codes, examples from a live node's answers in a deterministic scenario
(node/rpc/openrpc_examples.json, recorded by tests/rpc/test_openrpc_examples.py); ADR 0034.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Final, cast

import orjson

from node.config import RpcSettings
from node.rpc import errors as E
from node.rpc import jsonrpc, schema
from node.rpc.jsonrpc import (
    ACCESS_MEMBER,
    ACCESS_PROOF,
    ACCESS_PUBLIC,
    CallContext,
    Dispatcher,
    Method,
)
from node.rpc.methods import Api, register

OPENRPC_VERSION: Final = "1.2.6"
API_VERSION: Final = "1.0.0"
DISCOVER: Final = "rpc.discover"
# Recorded answers of a live node (tests/rpc/test_openrpc_examples.py records and checks them).
EXAMPLES_FILE: Final = pathlib.Path(__file__).with_name("openrpc_examples.json")

# Who may call a method (jsonrpc.ACCESS_*, ADR 0024), said in its description.
ACCESS_TEXT: Final = {
    ACCESS_PUBLIC: "Who may call: anyone (x-access public).",
    ACCESS_MEMBER: "Who may call: a consortium member's client (x-access member): a request "
    "signed with a client key (ADR 0033), or one from a loopback connection; a node may "
    "open member reads to anyone ([rpc] anonymous_reads, ADR 0024).",
    ACCESS_PROOF: "Who may call: a caller proving in the request who reads (x-access proof, "
    "ADR 0024): a signed read request in `auth`, or a client whose name is the `reader`; the "
    "ledger then decides what that reader may see (refused: -32030 with data.code).",
}
WRITE_TEXT: Final = ("A write method: it needs a signed request (RFC 9421 HTTP Message "
                     "Signatures, ADR 0033) whenever the node requires client authentication; "
                     "without one it answers -32001.")
# What to do with a rejected receipt (tx.submit's reject_as_error answers it as an error).
REJECTED_TEXT: Final = ("The transaction is committed and changed nothing: read data.code "
                        "(protocol/ledger/codes.py), correct the cause and submit a new "
                        "transaction with a new nonce.")
INVALID_PARAMS_TEXT: Final = ("-32602 (Invalid params): a parameter is missing, unknown or out "
                              "of its bounds and the message names it; fix the request, "
                              "nothing was done.")


def errors_of(m: Method) -> tuple[int, ...]:
    """The method's application errors, with -32001 where the dispatcher can refuse the
    caller (a write without a credential; a member read where reads need one)."""
    refusable = m.write or m.access == ACCESS_MEMBER
    return m.errors + ((E.UNAUTHORIZED,) if refusable and E.UNAUTHORIZED not in m.errors
                       else ())


def description(m: Method) -> str:
    """What the method does, who may call it, and what to do with each of its errors."""
    parts = [m.summary, ACCESS_TEXT[m.access]]
    if m.write:
        parts.append(WRITE_TEXT)
    errors = [INVALID_PARAMS_TEXT] if m.param_specs else []
    errors += [f"{code} ({E.ERROR_DOCS[code][0]}): {E.ERROR_DOCS[code][1]}."
               for code in errors_of(m)]
    if errors:
        parts.append("Errors: " + " ".join(errors))
    if any(code in m.errors for code, _, _ in E.REJECTION_FAMILIES):
        parts.append(REJECTED_TEXT)
    return " ".join(parts)


def load_examples() -> dict[str, list[dict[str, Any]]]:
    """method -> [{name, params, result}] as recorded (none when the file is absent)."""
    if not EXAMPLES_FILE.exists():
        return {}
    loaded: dict[str, list[dict[str, Any]]] = orjson.loads(EXAMPLES_FILE.read_bytes())
    return loaded


def _pairing(example: dict[str, Any]) -> dict[str, Any]:
    return {"name": example["name"],
            **({"description": example["description"]} if example.get("description") else {}),
            "params": [{"name": k, "value": v} for k, v in example["params"].items()],
            "result": {"name": "result", "value": example["result"]}}


def _error(code: int) -> dict[str, Any]:
    message, text = E.ERROR_DOCS[code]
    return {"code": code, "message": message, "data": {"description": text}}


def _param_description(m: Method, p: jsonrpc.Param) -> str:
    text = p.description or schema.PARAM_DOCS.get(p.name)
    if not text:
        raise ValueError(f"{m.name}: parameter {p.name} has no description (give its Param "
                         "one, or add it to node.rpc.schema.PARAM_DOCS)")
    return text


def _method(m: Method, examples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name,
        "summary": m.summary,
        "description": description(m),
        "paramStructure": "either",
        "params": [{"name": p.name, "required": p.required, "schema": p.schema,
                    "description": _param_description(m, p)}
                   for p in m.param_specs],
        "result": {"name": "result", "schema": m.result or {}},
    }
    if (event := schema.notification(m.name)) is not None:
        # what the subscription then sends (OpenRPC has no notation for notifications)
        out["x-notification"] = event
    if m.write:
        out["x-requires-client-credential"] = True
    # public: anyone; member: a client credential or loopback (unless [rpc] anonymous_reads);
    # proof: the request proves who reads (ADR 0024)
    out["x-access"] = m.access
    if errors_of(m):
        # inline (a reader sees the codes), the same objects as components.errors
        out["errors"] = [_error(c) for c in errors_of(m)]
    if examples:
        out["examples"] = [_pairing(e) for e in examples]
    return out


def document(dispatcher: Dispatcher) -> dict[str, Any]:
    examples = load_examples()
    methods = [_method(m, examples.get(m.name, []))
               for m in sorted(dispatcher.methods.values(), key=lambda m: m.name)]
    standard = [(jsonrpc.PARSE_ERROR, "Parse error"),
                (jsonrpc.INVALID_REQUEST, "Invalid Request"),
                (jsonrpc.METHOD_NOT_FOUND, "Method not found"),
                (jsonrpc.INVALID_PARAMS, "Invalid params"),
                (jsonrpc.INTERNAL_ERROR, "Internal error")]
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "Crossbill node JSON-RPC API", "version": API_VERSION,
                 "description": "JSON-RPC 2.0 over HTTP POST / and WebSocket GET /ws "
                 "(subscriptions). Write methods need a signed request (RFC 9421 HTTP Message "
                 "Signatures, docs/adr/0033); confidential reads a proof of who reads "
                 "(docs/adr/0024). Start with docs/integrating.md; the API is described in "
                 "docs/adr/0008-json-rpc-api.md, its limits in docs/adr/0020. Every schema "
                 "is derived from the protocol's dataclasses and every example is a live "
                 "node's answer (docs/adr/0034)."},
        "methods": methods,
        "components": {"schemas": dict(sorted(schema.COMPONENTS.schemas.items())),
                       "errors": {
            str(code): {"code": code, "message": msg} for code, msg in standard} | {
            str(code): _error(code) for code in sorted(E.ERROR_DOCS)}},
    }


def discover_method() -> tuple[str, dict[str, Any]]:
    return DISCOVER, {"type": "object", "required": ["openrpc", "info", "methods"],
                      "description": "an OpenRPC document (docs/openrpc-meta-schema.json)"}


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
