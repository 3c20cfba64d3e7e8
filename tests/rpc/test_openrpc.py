"""The OpenRPC document in docs/ and the implemented methods agree both ways; every ledger
reason code has an error-code family."""

from __future__ import annotations

import pathlib

import orjson

from node.rpc import errors as E
from node.rpc import openrpc
from node.rpc.openrpc import standalone_dispatcher
from protocol.ledger import codes

DOC = pathlib.Path(__file__).parents[2] / "docs" / "openrpc.json"


def test_document_in_the_repository_matches_the_implementation() -> None:
    dispatcher = standalone_dispatcher()
    stored = orjson.loads(DOC.read_bytes())
    documented = {m["name"] for m in stored["methods"]}
    implemented = set(dispatcher.methods)
    assert documented - implemented == set(), "documented but not implemented"
    assert implemented - documented == set(), "implemented but not documented"
    for m in stored["methods"]:
        method = dispatcher.methods[m["name"]]
        assert [p["name"] for p in m["params"]] == list(method.params), m["name"]
        assert {p["name"] for p in m["params"] if p["required"]} == set(method.required)
    generated = openrpc.document(dispatcher)
    assert stored == orjson.loads(openrpc.dumps(generated)), (
        "docs/openrpc.json is stale: python -m node.rpc.openrpc > docs/openrpc.json")


def test_every_method_is_dotted_and_documented() -> None:
    for name, method in standalone_dispatcher().methods.items():
        namespace, _, verb = name.partition(".")
        assert namespace and verb and name == name.lower(), name
        assert method.summary and method.result is not None, name


def test_every_ledger_reason_code_has_one_family() -> None:
    for code in codes.ALL_TX_CODES:
        families = [f for c, f, members in E.REJECTION_FAMILIES if code in members]
        assert len(families) == 1, (code, families)
    assert all(code in E.ERROR_DOCS for code, _, _ in E.REJECTION_FAMILIES)
