"""Generates docs/vectors/client-auth.json: RFC 9421 request signatures as a client must send
them (ADR 0033), and requests the node refuses, each with the rule it fails.

    .venv/bin/python -m tests.rpc.auth_vectors > docs/vectors/client-auth.json

The signature bases of the accepted cases come from `node.credentials` (what the Python
client sends); the other cases build theirs here, by RFC 9421 section 2.5, independently of
the node's verifier (`node.rpc.auth`), which tests/rpc/test_auth_vectors.py runs on them.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

import orjson

from node import credentials
from protocol import crypto

SEED: Final = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
OTHER_SEED: Final = bytes.fromhex(
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
CLIENT: Final = "backoffice"
AUDIENCE: Final = "bank.boc-qd"
OTHER_AUDIENCE: Final = "bank.icbc-qd"
CREATED_S: Final = 1_767_225_600            # 2026-01-01T00:00:00Z
NODE_CLOCK_MS: Final = CREATED_S * 1000 + 2_000
NONCE: Final = "6b1f0d3c9a2e4f5871c0de93ab47e261"
BODY: Final = (b'{"jsonrpc":"2.0","id":1,"method":"tx.submit","params":{"tx":{"type":"declare",'
               b'"payload":{}},"wait":true,"timeout_ms":10000}}')
STOCK_PARAMS_ORDER: Final = ("created", "keyid", "alg", "nonce", "tag")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _digest(body: bytes) -> str:
    return f"sha-256=:{_b64(hashlib.sha256(body).digest())}:"


def _params(components: tuple[str, ...], params: list[tuple[str, int | str]]) -> str:
    inner = " ".join(f'"{c}"' for c in components)
    return f"({inner})" + "".join(
        f";{k}={v}" if isinstance(v, int) else f';{k}="{v}"' for k, v in params)


def _base(method: str, path: str, headers: dict[str, str], components: tuple[str, ...],
          params: str) -> str:
    values = {"@method": method, "@path": path,
              "@authority": headers.get("Host", "").lower(),
              **{name.lower(): value for name, value in headers.items()}}
    lines = [f'"{c}": {values[c]}' for c in components]
    return "\n".join([*lines, f'"@signature-params": {params}'])


def signed(method: str = "POST", path: str = "/", body: bytes = BODY, *,
           seed: bytes = SEED, keyid: str = CLIENT, audience: str = AUDIENCE,
           created: int = CREATED_S, nonce: str = NONCE, extra: list[tuple[str, int | str]]
           | None = None, drop: tuple[str, ...] = (), alg: str = "ed25519",
           components: tuple[str, ...] = credentials.REQUIRED_COMPONENTS,
           order: tuple[str, ...] = ("created", "keyid", "nonce", "tag", "alg"),
           headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One signed request: its headers, the signature base and the parameters."""
    values: dict[str, int | str] = {"created": created, "keyid": keyid, "nonce": nonce,
                                    "tag": credentials.SIGNATURE_TAG_PREFIX + audience,
                                    "alg": alg}
    plist = [(k, values[k]) for k in order if k not in drop] + (extra or [])
    params = _params(components, plist)
    all_headers = {**(headers or {}), "Content-Digest": _digest(body)}
    base = _base(method, path, all_headers, components, params)
    sig = crypto.PrivateKey(seed).sign(base.encode())
    return {"method": method, "path": path, "body": body.decode(),
            "headers": {**all_headers, "Signature-Input": f"crossbill={params}",
                        "Signature": f"crossbill=:{_b64(sig)}:"},
            "signature_base": base}


def _refused(name: str, why: str, request: dict[str, Any], rule: str,
             **more: Any) -> dict[str, Any]:
    return {"name": name, "why": why, **more, "request": request,
            "expect": {"accepted": False, "rule": rule}}


def accepted() -> list[dict[str, Any]]:
    key = crypto.PrivateKey(SEED)
    out = []
    for name, method, path, body, nonce in (
            ("tx.submit over HTTP", "POST", "/", BODY, NONCE),
            ("WebSocket upgrade (empty body)", "GET", "/ws", b"",
             "0f4e2a7b19c35d68e0a1b2c3d4e5f607")):
        headers = credentials.signature_headers(key, CLIENT, method, path, body, CREATED_S,
                                                nonce, AUDIENCE)
        params = headers["Signature-Input"].split("=", 1)[1]
        out.append({
            "name": name,
            "inputs": {"client": CLIENT, "audience": AUDIENCE, "created": CREATED_S,
                       "nonce": nonce, "method": method, "path": path,
                       "body": body.decode()},
            "request": {"method": method, "path": path, "body": body.decode(),
                        "headers": headers},
            "signature_base": credentials.signature_base(
                method, path, headers["Content-Digest"], params).decode(),
            "expect": {"accepted": True, "client": CLIENT}})
    stock = signed(components=("@method", "@authority", "@path", "content-digest"),
                   order=STOCK_PARAMS_ORDER, nonce="a3c5e7f90b1d2f4a",
                   headers={"Host": "rpc.boc-qd.example:8545"})
    out.append({"name": "another order of parameters and one more component (@authority), "
                        "as a stock RFC 9421 library may sign",
                "request": {k: stock[k] for k in ("method", "path", "body", "headers")},
                "signature_base": stock["signature_base"],
                "expect": {"accepted": True, "client": CLIENT}})
    return out


def refused() -> list[dict[str, Any]]:
    valid = signed()
    changed = b'{"jsonrpc":"2.0","id":1,"method":"tx.submit","params":{"tx":{}}}'
    after_signing = {**valid, "body": changed.decode(),
                     "headers": {**valid["headers"], "Content-Digest": _digest(changed)}}
    two = signed(nonce="1111222233334444")
    two["headers"]["Signature-Input"] += ", " + valid["headers"]["Signature-Input"].replace(
        "crossbill=", "second=")
    two["headers"]["Signature"] += ", " + valid["headers"]["Signature"].replace(
        "crossbill=", "second=")
    no_digest = signed()
    del no_digest["headers"]["Content-Digest"]
    short_sig = signed()
    short_sig["headers"]["Signature"] = "crossbill=:" + _b64(b"\x00" * 32) + ":"
    return [
        _refused("expired: created too old", "created is 31 s before the node's clock",
                 signed(created=CREATED_S - 29), "expired"),
        _refused("expired: created in the future", "created is 31 s after the node's clock",
                 signed(created=CREATED_S + 33), "expired"),
        _refused("expired: expires has passed", "expires (1 s after created) is before the "
                 "node's clock", signed(extra=[("expires", CREATED_S + 1)]), "expired"),
        _refused("replayed nonce", "the same request again: the node accepted it once and "
                 "refuses it while its nonce is remembered", valid, "replayed",
                 accepted_before=True),
        _refused("wrong body (digest mismatch)", "the body is not the one the Content-Digest "
                 "was made for", {**valid, "body": changed.decode()}, "digest-mismatch"),
        _refused("body changed after signing", "Content-Digest was recomputed for the new "
                 "body, but the signature covers the old digest", after_signing,
                 "bad-signature"),
        _refused("wrong audience", "signed for another node (tag crossbill-rpc/"
                 f"{OTHER_AUDIENCE})", signed(audience=OTHER_AUDIENCE), "wrong-audience"),
        _refused("unknown client", "keyid is not listed in the node's [rpc] clients",
                 signed(keyid="stranger", seed=OTHER_SEED), "unknown-client"),
        _refused("bad signature", "signed with another key than the one listed for the "
                 "client", signed(seed=OTHER_SEED), "bad-signature"),
        _refused("malformed: Signature-Input is not a Structured Field Dictionary",
                 "an unterminated inner list",
                 {**valid, "headers": {**valid["headers"],
                                       "Signature-Input": 'crossbill=("@method" "@path"'}},
                 "malformed"),
        _refused("malformed: two signatures", "the node accepts exactly one", two,
                 "malformed"),
        _refused("malformed: signature of 32 bytes", "Ed25519 signatures are 64 bytes",
                 short_sig, "malformed"),
        _refused("malformed: nonce not hex", "the nonce must be 16 to 64 lowercase hex "
                 "characters", signed(nonce="not-a-hex-nonce!"), "malformed"),
        _refused("missing component: @path not covered", "the signature must cover "
                 "@method, @path and content-digest",
                 signed(components=("@method", "content-digest")), "missing-component"),
        _refused("missing component: no Content-Digest header", "content-digest is covered "
                 "but the header is absent", no_digest, "missing-component"),
        _refused("missing parameter: no nonce", "created, keyid, nonce and tag are required",
                 signed(drop=("nonce",)), "missing-parameter"),
        _refused("algorithm", "alg, when given, must be ed25519",
                 signed(alg="rsa-pss-sha512"), "algorithm"),
    ]


def document() -> dict[str, Any]:
    key = crypto.PrivateKey(SEED)
    return {
        "description": "RFC 9421 HTTP Message Signatures on JSON-RPC requests to a Crossbill "
                       "node (docs/adr/0033-client-request-signatures-rfc-9421.md). Bodies "
                       "are UTF-8 strings of the exact bytes sent; signature bases are lines "
                       "joined by \\n with no trailing newline; each case is checked by a "
                       "node whose clock reads node_clock_ms, which lists the client with "
                       "public_key and whose institution id is audience. Generated by "
                       "tests/rpc/auth_vectors.py, checked by tests/rpc/test_auth_vectors.py.",
        "key": {"seed": SEED.hex(), "public_key": key.public_key.hex(),
                "other_seed": OTHER_SEED.hex()},
        "client": CLIENT,
        "audience": AUDIENCE,
        "node_clock_ms": NODE_CLOCK_MS,
        "window_ms": 30_000,
        "accepted": accepted(),
        "refused": refused(),
    }


def dumps() -> bytes:
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2) + b"\n"


if __name__ == "__main__":
    import sys

    sys.stdout.buffer.write(dumps())
