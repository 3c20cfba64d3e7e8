"""The plain-JavaScript client (examples/js/) against the test vectors in docs/vectors/: every
transaction's signing bytes, id and signature (transactions.json), the canonical encoding of
every valid input and of every refused input that has a canonical form (codec.json), and the
RFC 9421 request headers (client-auth.json)."""

from __future__ import annotations

import json
from typing import Any, Final

from tests.js.nodejs import ROOT, drive

VECTORS: Final = ROOT / "docs" / "vectors"
JS_SAFE_INTEGER_MAX: Final = 2**53 - 1


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def _for_js(value: Any) -> Any:
    """`value` with the integers JavaScript's Numbers cannot hold exactly as BigInt markers."""
    if isinstance(value, dict):
        return {k: _for_js(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_js(v) for v in value]
    if type(value) is int and abs(value) > JS_SAFE_INTEGER_MAX:
        return {"$bigint": str(value)}
    return value


def _utf8_hex(text: str) -> str:
    return text.encode("utf-8").hex()


def test_every_transaction_vector() -> None:
    vectors = _load("transactions.json")["vectors"]
    results = drive([{"op": "tx", "seed": v["seed"], "chain_id": v["tx"]["chain_id"],
                      "signer": v["signer"], "type": v["type"],
                      "payload": _for_js(v["tx"]["payload"]),
                      "expires_at_ms": v["tx"]["expires_at_ms"], "nonce": v["tx"]["nonce"]}
                     for v in vectors])
    assert len(vectors) >= 40
    for v, got in zip(vectors, results, strict=True):
        assert "error" not in got, (v["type"], got)
        assert got["result"]["sign_bytes"] == _utf8_hex(v["sign_bytes"]), v["type"]
        assert got["result"]["id"] == v["tx_id"], v["type"]
        assert got["result"]["tx"] == v["tx"], v["type"]
        assert got["result"]["tx"]["signature"] == v["signature"], v["type"]


def test_every_canonical_encoding_vector() -> None:
    vectors = [v for v in _load("codec.json")["vectors"] if v["valid"] or "canonical_text" in v]
    results = drive([{"op": "canonical", "value": _for_js(json.loads(v["input_text"]))}
                     for v in vectors])
    assert sum(v["valid"] for v in vectors) >= 8 and len(vectors) >= 18
    assert any("$bigint" in json.dumps(_for_js(json.loads(v["input_text"])))
               for v in vectors)  # the int64 vector goes through BigInt
    for v, got in zip(vectors, results, strict=True):
        want = v["input_hex"] if v["valid"] else _utf8_hex(v["canonical_text"])
        assert got == {"result": want}, v["name"]


def test_every_request_signature_vector_a_client_builds() -> None:
    auth = _load("client-auth.json")
    vectors = [v for v in auth["accepted"] if "inputs" in v]
    results = drive([{"op": "sign_request", "seed": auth["key"]["seed"],
                      "client": v["inputs"]["client"], "audience": v["inputs"]["audience"],
                      "method": v["inputs"]["method"], "path": v["inputs"]["path"],
                      "body": _utf8_hex(v["inputs"]["body"]),
                      "created": v["inputs"]["created"], "nonce": v["inputs"]["nonce"]}
                     for v in vectors])
    assert {v["inputs"]["method"] for v in vectors} == {"POST", "GET"}
    for v, got in zip(vectors, results, strict=True):
        assert got == {"result": v["request"]["headers"]}, v["name"]

