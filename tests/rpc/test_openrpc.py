"""The OpenRPC document in docs/ and the implemented methods agree both ways; it is valid
OpenRPC (the meta-schema shipped in docs/), its schemas come from the dataclasses down to
every field, every method is described and has examples that its own schemas accept; every
ledger reason code has an error-code family."""

from __future__ import annotations

import copy
import functools
import pathlib
from typing import Any

import jsonschema
import orjson
import pytest
import referencing
import referencing.jsonschema
from jsonschema_specifications import REGISTRY as SPECIFICATIONS

from node.rpc import errors as E
from node.rpc import openrpc, subs
from node.rpc.openrpc import standalone_dispatcher
from protocol import txtypes
from protocol.ledger import codes

DOC = pathlib.Path(__file__).parents[2] / "docs" / "openrpc.json"
META_SCHEMA = DOC.with_name("openrpc-meta-schema.json")
# The meta-schema's JSON Schema dialect (its $ref to https://meta.json-schema.tools) is
# JSON Schema draft-07's meta-schema, which jsonschema ships: no network in tests.
JSON_SCHEMA_TOOLS = "https://meta.json-schema.tools"


@functools.cache
def stored() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(DOC.read_bytes())
    return doc


@functools.cache
def generated() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(openrpc.dumps(openrpc.document(standalone_dispatcher())))
    return doc


def meta_validator() -> jsonschema.Draft7Validator:
    draft7 = SPECIFICATIONS.contents("http://json-schema.org/draft-07/schema")
    registry = SPECIFICATIONS.with_resource(JSON_SCHEMA_TOOLS, referencing.Resource.from_contents(
        draft7, default_specification=referencing.jsonschema.DRAFT7))
    return jsonschema.Draft7Validator(orjson.loads(META_SCHEMA.read_bytes()), registry=registry)


def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """A validator of `schema`, whose $refs name the document's components."""
    root = {"allOf": [schema], "components": generated()["components"]}
    return jsonschema.Draft7Validator(
        root, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def result_validator(method: str) -> jsonschema.Draft7Validator:
    (m,) = [m for m in generated()["methods"] if m["name"] == method]
    return validator(m["result"]["schema"])


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


def test_the_document_is_valid_openrpc() -> None:
    errors = list(meta_validator().iter_errors(stored()))
    assert not errors, [f"{e.json_path}: {e.message}"[:300] for e in errors[:5]]
    broken = copy.deepcopy(stored())
    broken["methods"][0]["params"].append({"name": "x", "schema": {"type": 5}})
    assert list(meta_validator().iter_errors(broken)), "the meta-schema checks schemas"


def test_every_method_is_described_with_errors_and_examples() -> None:
    for m in stored()["methods"]:
        assert m["summary"] and m["x-access"] in m["description"], m["name"]
        assert all(p["description"] for p in m["params"]), m["name"]
        for code in (e["code"] for e in m.get("errors", [])):
            assert E.ERROR_DOCS[code][1] in m["description"], (m["name"], code)
        if m["x-access"] == "member" or m.get("x-requires-client-credential"):
            assert E.UNAUTHORIZED in [e["code"] for e in m["errors"]], m["name"]
        assert m["examples"], f"{m['name']} has no example"
        assert m["result"]["schema"] != {"type": "object"}, f"{m['name']}: bare object"


def test_every_example_fits_its_method() -> None:
    for m in stored()["methods"]:
        params = {p["name"]: p for p in m["params"]}
        for example in m["examples"]:
            given = {p["name"]: p["value"] for p in example["params"]}
            assert set(given) <= set(params), (m["name"], example["name"])
            assert {n for n, p in params.items() if p["required"]} <= set(given)
            for name, value in given.items():
                errors = list(validator(params[name]["schema"]).iter_errors(value))
                assert not errors, (m["name"], example["name"], name, errors[0].message)
            errors = list(validator(m["result"]["schema"]).iter_errors(
                example["result"]["value"]))
            assert not errors, (m["name"], example["name"], errors[0].json_path,
                                errors[0].message[:300])


def test_each_transaction_type_has_its_payload_component() -> None:
    schemas = stored()["components"]["schemas"]
    branches = schemas["Tx"]["oneOf"]
    by_type = {b["properties"]["type"]["const"]: b["properties"]["payload"]["$ref"]
               for b in branches}
    assert set(by_type) == set(txtypes.REGISTRY)
    for tx_type, cls in txtypes.REGISTRY.items():
        component = schemas[cls.__name__]
        assert by_type[tx_type] == f"#/components/schemas/{cls.__name__}"
        assert component["x-tx-type"] == tx_type
        assert set(component["required"]) == {f for f in cls.__dataclass_fields__}


def _submitted(example_tx: dict[str, Any], **changes: Any) -> list[Any]:
    (m,) = [m for m in stored()["methods"] if m["name"] == "tx.submit"]
    (tx_param,) = [p for p in m["params"] if p["name"] == "tx"]
    return list(validator(tx_param["schema"]).iter_errors({**example_tx, **changes}))


def test_the_tx_schema_picks_the_payload_by_type() -> None:
    (m,) = [m for m in stored()["methods"] if m["name"] == "tx.submit"]
    tx = m["examples"][0]["params"][0]["value"]
    assert tx["type"] == "financing.open" and not _submitted(tx)
    assert _submitted(tx, type="financing.disburse"), "a payload of another type"
    assert _submitted(tx, payload={**tx["payload"], "principal": 0}), "below the bound"
    assert _submitted(tx, payload={**tx["payload"], "uscc": "not-a-uscc"}), "a bad format"
    assert _submitted(tx, payload={**tx["payload"], "extra": 1}), "an unknown field"
    assert _submitted(tx, nonce="ABCD"), "bytes are lowercase hex"


@pytest.mark.parametrize("name", ["Financing", "Declaration", "Receipt", "Block"])
def test_records_are_described_down_to_every_field(name: str) -> None:
    component = stored()["components"]["schemas"][name]
    assert component["additionalProperties"] is False
    for field, schema in component["properties"].items():
        assert schema.get("type") or schema.get("$ref") or schema.get("oneOf"), (name, field)
        if schema.get("type") == "string":
            assert "maxLength" in schema or "pattern" in schema, (name, field)
        if schema.get("type") == "integer":
            assert "minimum" in schema and "maximum" in schema, (name, field)


HUB_TOPICS = {"sub.blocks": subs.TOPIC_BLOCKS, "sub.tx": subs.TOPIC_TX,
              "sub.record": subs.TOPIC_RECORD, "sub.watch": subs.TOPIC_WATCH,
              "sub.party": subs.TOPIC_PARTY}


def test_every_subscription_documents_its_notifications() -> None:
    """Each sub.* method but sub.cancel says what its sub.event notifications carry; the
    schemas are valid JSON Schema (the live test checks real events against them)."""
    for m in generated()["methods"]:
        if not m["name"].startswith("sub.") or m["name"] == "sub.cancel":
            assert "x-notification" not in m, m["name"]
            continue
        event = m["x-notification"]
        assert event["method"] == "sub.event"
        jsonschema.Draft7Validator.check_schema(event["params"])
        topic = event["params"]["properties"]["topic"]["const"]
        assert topic == HUB_TOPICS[m["name"]], (m["name"], topic)
