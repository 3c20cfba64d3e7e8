"""docs/walkthrough.md (written by tests/rpc/walkthrough.py from a real run) stays true: every
request in it is a valid call of docs/openrpc.json, and every response is the method's result
(or one of its documented errors), checked with the document's own JSON schemas."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import jsonschema
import orjson

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "walkthrough.md"
OPENRPC = ROOT / "docs" / "openrpc.json"
BLOCK = re.compile(r"```json\n(.*?)\n```", re.S)


def _pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    blocks = [orjson.loads(b) for b in BLOCK.findall(DOC.read_text())]
    assert len(blocks) % 2 == 0, "every request is followed by its response"
    return list(zip(blocks[0::2], blocks[1::2], strict=True))


def _validator(schema: dict[str, Any], document: dict[str, Any]) -> jsonschema.Validator:
    """A validator of `schema` whose `#/components/...` references resolve in `document`."""
    return jsonschema.Draft7Validator({**schema, "components": document.get("components", {})})


def test_every_request_and_response_matches_the_openrpc_document() -> None:
    document = orjson.loads(OPENRPC.read_bytes())
    methods = {m["name"]: m for m in document["methods"]}
    pairs = _pairs()
    submits = [req for req, _ in pairs if req["method"] == "tx.submit"]
    assert len(submits) >= 15, "the whole headline workflow is in the document"
    for request, response in pairs:
        method = methods[request["method"]]
        assert response["id"] == request["id"] and response["jsonrpc"] == "2.0"
        params = {p["name"]: p for p in method["params"]}
        assert set(request["params"]) <= set(params), request
        for name, value in request["params"].items():
            _validator(params[name]["schema"], document).validate(value)
        for name in params:
            assert not params[name].get("required") or name in request["params"]
        assert "error" not in response, f"{request['method']}: {response}"
        _validator(method["result"]["schema"], document).validate(response["result"])


def test_the_refusals_of_the_workflow_are_shown() -> None:
    codes = [resp["result"].get("receipt", {}).get("code") for req, resp in _pairs()
             if req["method"] == "tx.submit"]
    assert {"DOUBLE_FINANCING", "RECEIVABLE_COLLECTED", "FORM_EXCEEDED"} <= set(codes)
    assert codes.count("OK") >= 15
