"""docs/vectors/client-auth.json is what tests/rpc/auth_vectors.py generates, and the node's
verifier (node.rpc.auth) gives every case its expected result (ADR 0033)."""

from __future__ import annotations

import pathlib
from typing import Any

import http_sf
import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import (
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

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


@pytest.mark.parametrize("case", DOC["accepted"], ids=lambda c: c["name"])
def test_a_stock_rfc9421_verifier_accepts_the_accepted_cases(case: dict[str, Any]) -> None:
    """The vectors are RFC 9421 as another implementation reads it (http-message-signatures),
    not only as this node does."""
    request = case["request"]
    headers = {"Host": "rpc.boc-qd.example:8545", **request["headers"]}
    message = httpx.Request(request["method"], f"http://{headers['Host']}{request['path']}",
                            headers=headers, content=request["body"].encode())
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519,
                                   key_resolver=MappingKeyResolver(private_keys={}, public_keys={
                                       DOC["client"]: ed25519.Ed25519PublicKey.from_public_bytes(
                                           bytes.fromhex(DOC["key"]["public_key"]))}))
    tag = f"crossbill-rpc/{DOC['audience']}"
    [result] = verifier.verify(message, max_age=None, expect_tag=tag,
                               require_components=("@method", "@path", "content-digest"),
                               body=request["body"].encode())
    assert result.parameters["keyid"] == DOC["client"]
    tampered = httpx.Request(request["method"], f"http://{headers['Host']}/x",
                             headers=headers, content=request["body"].encode())
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered, max_age=None, expect_tag=tag)


@pytest.mark.parametrize("raw", [
    b'x=("@method" "@path" "content-digest");created=1;keyid="k";nonce="00ff";tag="t"',
    b'x=( "@method"   "a\\\\b" "q\\"t" );keyid="k\\"\\\\";created=-5',
    b'x=("@method");created=1;flag;ratio=1.50;tok=abc;bin=:AAA=:',  # not the usual types
    b'x=();created=1'])
def test_the_signature_params_line_is_the_rfc8941_serialization(raw: bytes) -> None:
    (items, params), = http_sf.parse(raw, tltype="dictionary").values()  # type: ignore[union-attr]
    assert auth._serialize("x", items, params) == http_sf.ser({"x": (items, params)})[2:]
