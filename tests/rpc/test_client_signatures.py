"""Client request signatures (RFC 9421, ADR 0033) on a live node: a stock RFC 9421 library
and the project's client library are accepted, over HTTP and for the WebSocket upgrade; the
deprecated token still is; refusals name their rule."""

from __future__ import annotations

import datetime
import pathlib

import httpx
import orjson
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from trio_websocket import ConnectionRejected, open_websocket

from node.client import AsyncClient, Credential, RpcError
from node.config import RpcSettings
from node.keys import generate_key
from node.rpc import errors as E
from tests.rpc.harness import RPC_NODE, post, rpc_cluster
from tests.rpc.test_http import token

SUBMIT = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tx.submit",
                       "params": {"tx": {}}})


def stock_signed(url: str, seed: bytes, components: tuple[str, ...],
                 audience: str = RPC_NODE) -> httpx.Request:
    """A request signed by the stock `http-message-signatures` library, as an integrator
    would: its own label, its own order of parameters, tag and nonce set."""
    request = httpx.Request("POST", url, content=SUBMIT,
                            headers={"content-type": "application/json"})
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={
            "integrator": ed25519.Ed25519PrivateKey.from_private_bytes(seed)}))
    signer.sign(request, key_id="integrator", created=datetime.datetime.now(datetime.UTC),
                nonce=generate_key().public_key.hex()[:32], tag=f"crossbill-rpc/{audience}",
                covered_component_ids=components, body=SUBMIT)
    return request


async def test_a_stock_rfc9421_library_is_accepted(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        key = generate_key()
        url = await rc.serve_extra(RpcSettings(require_client_auth=True,
                                               clients={"integrator": key.public_key}))
        server = rc.extra[url]
        async with httpx.AsyncClient(timeout=20) as http:
            for components in (("@method", "@path", "content-digest"),
                               # the library's defaults (content-digest comes with the body)
                               # and the @path the node requires
                               ("@method", "@authority", "@target-uri", "@path")):
                request = stock_signed(url, key.seed, components)
                assert "pyhms=" in request.headers["signature-input"]
                assert 'tag="crossbill-rpc/' in request.headers["signature-input"]
                reply = await http.send(request)
                assert reply.status_code == 200, reply.text
                assert reply.json()["error"]["code"] == -32602  # past the credential
            # the library's defaults alone lack @path: refused, and told why
            reply = await http.send(stock_signed(url, key.seed, (
                "@method", "@authority", "@target-uri")))
            assert reply.status_code == 401
            assert reply.json()["error"]["data"]["rule"] == "missing-component"
            assert "@path" in reply.json()["error"]["data"]["reason"]
            reply = await http.send(stock_signed(url, key.seed, (
                "@method", "@path"), audience="bank.icbc-qd"))
            assert reply.json()["error"]["data"]["rule"] == "wrong-audience"
        assert server.snapshot().credentials == (
            (("rfc9421", "accepted"), 2), (("rfc9421", "missing-component"), 1),
            (("rfc9421", "wrong-audience"), 1))


async def test_the_client_library_signs_requests_and_websocket_upgrades(
        tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path, wait_leader=False) as rc:
        key = generate_key()
        url = await rc.serve_extra(RpcSettings(require_client_auth=True,
                                               clients={"backoffice": key.public_key}))
        server = rc.extra[url]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        with trio.fail_after(30):
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket(host, int(port), "/ws", use_ssl=False):
                    pass
            assert rejected.value.status_code == 401  # the upgrade needs a credential here
            async with AsyncClient(url, credential=Credential("backoffice", key)) as client:
                for _ in range(2):  # each request signed anew: no replay
                    with pytest.raises(RpcError) as err:
                        await client.call("tx.submit", {"tx": {}})
                    assert err.value.code == -32602  # past the credential check
                async with client.subscribe("sub.blocks") as events:
                    assert events is not None  # the upgrade was accepted, signed
            # the deprecated token is still accepted, and counted apart
            reply = await post(url, SUBMIT, headers={"authorization": token(
                key, "backoffice", SUBMIT)})
            assert reply.json()["error"]["code"] == -32602
            # a signature and a token: the signature is the one checked
            headers = Credential("backoffice", key, RPC_NODE)("POST", "/", b"other", "")
            reply = await post(url, SUBMIT, headers={**headers, "authorization": token(
                key, "backoffice", SUBMIT)})
            assert reply.status_code == 401
            assert reply.json()["error"]["code"] == E.UNAUTHORIZED
            assert reply.json()["error"]["data"]["rule"] == "digest-mismatch"
        assert dict(server.snapshot().credentials) == {
            ("rfc9421", "accepted"): 3, ("rfc9421", "digest-mismatch"): 1,
            ("token", "accepted"): 1}
