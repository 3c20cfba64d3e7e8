"""The plain-JavaScript client (examples/js/) computes what the Python implementation does:
canonical encodings and their refusals, every headline transaction's signing bytes, id and
signature, the enterprise key proof, key files and PEM keys the devnet writes, and RFC 9421
request signatures that a stock verifier (http-message-signatures) accepts. One `node` process
runs every case (about half a second)."""

from __future__ import annotations

import base64
import hashlib
import pathlib
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, algorithms
from http_message_signatures.exceptions import InvalidSignature
from http_message_signatures.resolvers import MappingKeyResolver

from node.cli.demo import build_consortium, headline_steps
from node.cli.netgen import DEVNET_CLIENT, generate_network, pkcs8_pem
from node.config import load_config
from node.files import create_private_file
from node.keys import write_key_file
from protocol import codec, crypto, limits, txtypes
from tests.js.nodejs import drive

NOW_MS = 1_790_000_000_000


def _key(i: int) -> crypto.PrivateKey:
    return crypto.PrivateKey(hashlib.sha256(b"js-client-test-%d" % i).digest())


def _nonces() -> Any:
    counter = iter(range(1, 1000))
    return lambda: hashlib.sha256(b"nonce-%d" % next(counter)).digest()[:16]


def test_every_headline_transaction_signs_and_hashes_as_in_python() -> None:
    config, keys = build_consortium("js-test-chain", NOW_MS)
    enterprise = _key(99)
    steps = headline_steps(config, keys, NOW_MS, enterprise, nonce=_nonces())
    signer_key = {**keys, "91370200MA3C8Y5R2K": enterprise}
    cases = [{"op": "tx", "seed": signer_key[s.tx.signer].seed.hex(),
              "chain_id": s.tx.chain_id, "signer": s.tx.signer, "type": s.tx.type,
              "payload": codec.to_json(s.tx.payload), "expires_at_ms": s.tx.expires_at_ms,
              "nonce": s.tx.nonce.hex()} for s in steps]
    results = drive(cases)
    assert {"enterprise.register", "declaration.register", "financing.apply",
            "financing.open", "credit.record"} <= {s.tx.type for s in steps}
    for step, got in zip(steps, results, strict=True):
        assert "error" not in got, (step.title, got)
        assert got["result"]["sign_bytes"] == step.tx.sign_bytes.hex(), step.title
        assert got["result"]["id"] == step.tx.id.hex(), step.title
        assert got["result"]["tx"] == codec.to_json(step.tx), step.title


def test_canonical_encoding_and_its_refusals() -> None:
    tricky = {"b": "quote \" backslash \\ slash / é ü 😀", "a": [True, False, None, 0, -1],
              "\uffff": 1, "\U0001d11e": 2, "é": {"z": [], "y": {}}, "A": "",
              "max": limits.INT_MAX, "min": limits.INT_MIN}
    as_js = {**tricky, "max": {"$bigint": str(limits.INT_MAX)},
             "min": {"$bigint": str(limits.INT_MIN)}}
    refused = [1.5, [0, {"x": 2.5}], -0.0, 2**53, "bell \x07", "del \x7f", "lone \ud800",
               {"$bigint": str(limits.INT_MAX + 1)}, {"k": {"$bigint": str(limits.INT_MIN - 1)}}]
    results = drive([{"op": "canonical", "value": as_js}]
                    + [{"op": "canonical", "value": v} for v in refused])
    assert results[0] == {"result": codec.dumps_canonical(tricky).hex()}
    for value, got in zip(refused, results[1:], strict=True):
        assert "error" in got, (value, got)


def test_key_proof_matches_python() -> None:
    enterprise = _key(7)
    [proof] = drive([{"op": "key_proof", "seed": enterprise.seed.hex(), "chain_id": "c1",
                      "uscc": "91370200MA3C8Y5R2K", "bank": "bank.boc-qd"}])
    assert proof["result"] == txtypes.sign_enterprise_key_proof(
        enterprise, "c1", "91370200MA3C8Y5R2K", "bank.boc-qd").hex()


def test_key_files_and_pem_keys_the_devnet_writes(tmp_path: pathlib.Path) -> None:
    key = _key(3)
    write_key_file(tmp_path / "institution.key", key, "correct horse",
                   scrypt_log_n=limits.KEYFILE_SCRYPT_LOG_N_MIN)
    create_private_file(tmp_path / "client.pem", pkcs8_pem(key))
    opened, wrong, pem = drive([
        {"op": "key_file", "path": str(tmp_path / "institution.key"),
         "passphrase": "correct horse"},
        {"op": "key_file", "path": str(tmp_path / "institution.key"), "passphrase": "wrong"},
        {"op": "pem", "path": str(tmp_path / "client.pem"), "message": "hello"},
    ])
    assert opened["result"] == {"public_key": key.public_key.hex(), "key_id": key.key_id.hex()}
    assert "error" in wrong
    assert pem["result"] == {"public_key": key.public_key.hex(),
                             "signature": key.sign(b"hello").hex()}


def test_the_devnet_gives_each_node_a_client_key_that_javascript_reads(
        tmp_path: pathlib.Path) -> None:
    _, nodes = generate_network(tmp_path / "net", base_port=7100, tls=False)
    results = drive([{"op": "pem", "path": str(n.client_key_file), "message": "m"}
                     for n in nodes])
    for n, got in zip(nodes, results, strict=True):
        assert n.client_key_file is not None
        assert n.client_key_file.stat().st_mode & 0o777 == 0o600
        listed = load_config(n.config).rpc.clients
        assert list(listed) == [DEVNET_CLIENT]
        assert got["result"]["public_key"] == listed[DEVNET_CLIENT].hex()
        assert crypto.verify(listed[DEVNET_CLIENT], b"m",
                             bytes.fromhex(got["result"]["signature"]))


def test_request_signatures_verify_with_a_stock_rfc_9421_library() -> None:
    key = _key(5)
    body = b'{"jsonrpc":"2.0","id":1,"method":"tx.submit","params":{}}'
    created = 1_790_000_000
    (got,) = drive([{"op": "sign_request", "seed": key.seed.hex(), "client": "backoffice",
                     "audience": "bank.boc-qd", "method": "POST", "path": "/",
                     "body": body.hex(), "created": created, "nonce": "0123456789abcdef"}])
    headers = got["result"]
    assert headers["Content-Digest"] == (
        f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:")
    request = requests.Request("POST", "https://127.0.0.1:7201/", data=body,
                               headers={"Content-Type": "application/json", **headers}).prepare()
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={"backoffice": Ed25519PublicKey.from_public_bytes(key.public_key)},
            private_keys={}))
    (result,) = verifier.verify(request, max_age=None, expect_tag="crossbill-rpc/bank.boc-qd",
                                require_components=("@method", "@path", "content-digest"),
                                body=body)
    assert result.parameters["keyid"] == "backoffice"
    assert result.parameters["created"] == created
    tampered = requests.Request("POST", "https://127.0.0.1:7201/", data=body + b" ",
                                headers={"Content-Type": "application/json",
                                         **headers}).prepare()
    with pytest.raises(InvalidSignature, match="Content-Digest"):
        verifier.verify(tampered, max_age=None, expect_tag="crossbill-rpc/bank.boc-qd",
                        body=body + b" ")
