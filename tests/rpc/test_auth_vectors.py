"""docs/vectors/client-auth.json is what tests/rpc/auth_vectors.py generates, and the node's
verifier (node.rpc.auth) gives every case its expected result (ADR 0033)."""

from __future__ import annotations

import pathlib
from typing import Any

import orjson
import pytest

from node.rpc import auth
from protocol import crypto
from tests.rpc import auth_vectors

VECTORS = pathlib.Path(__file__).parents[2] / "docs" / "vectors" / "client-auth.json"
DOC = orjson.loads(VECTORS.read_bytes())


def test_the_committed_vectors_are_the_generated_ones() -> None:
    assert VECTORS.read_bytes() == auth_vectors.dumps(), (
        "docs/vectors/client-auth.json is stale: "
        ".venv/bin/python -m tests.rpc.auth_vectors > docs/vectors/client-auth.json")
    assert DOC["window_ms"] == auth.TOKEN_WINDOW_MS
    assert crypto.PrivateKey(bytes.fromhex(DOC["key"]["seed"])).public_key.hex() == (
        DOC["key"]["public_key"])


def node() -> auth.ClientAuth:
    return auth.ClientAuth({DOC["client"]: bytes.fromhex(DOC["key"]["public_key"])},
                           lambda: int(DOC["node_clock_ms"]), DOC["audience"])


def message(request: dict[str, Any]) -> auth.HttpMessage:
    return auth.HttpMessage(
        request["method"], request["path"],
        {name.lower().encode(): value.encode() for name, value in request["headers"].items()},
        request["body"].encode())


@pytest.mark.parametrize("case", DOC["accepted"], ids=lambda c: c["name"])
def test_accepted_cases_are_accepted(case: dict[str, Any]) -> None:
    assert node().verify_request(message(case["request"])) == case["expect"]["client"]


@pytest.mark.parametrize("case", DOC["refused"], ids=lambda c: c["name"])
def test_refused_cases_are_refused_for_their_rule(case: dict[str, Any]) -> None:
    checker = node()
    if case.get("accepted_before"):
        assert checker.verify_request(message(case["request"])) == DOC["client"]
    with pytest.raises(auth.AuthError) as refused:
        checker.verify_request(message(case["request"]))
    assert refused.value.rule == case["expect"]["rule"], refused.value.reason
    assert refused.value.reason


def test_the_documented_signature_base_is_what_the_node_verifies() -> None:
    """Each accepted case's signature verifies over its documented base with the documented
    key, so an integrator can compare bases byte for byte."""
    public_key = bytes.fromhex(DOC["key"]["public_key"])
    for case in DOC["accepted"]:
        sig_header = case["request"]["headers"]["Signature"]
        signature = auth._signature(sig_header.encode(), sig_header.split("=", 1)[0])
        assert crypto.verify(public_key, case["signature_base"].encode(), signature)
        assert not crypto.verify(public_key, case["signature_base"].encode() + b"\n",
                                 signature)
