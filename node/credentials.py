"""The signed credentials of the JSON-RPC API as both ends compute them: the client library
(`node.client`) signs with these, the node (`node.rpc.auth`) checks against them.

Client tokens (write methods; ADR 0008): for every HTTP request (and for the WebSocket
upgrade) the client sends

    Authorization: Crossbill-Ed25519 client=NAME,aud=NODE,ts=MS,nonce=HEX,sig=HEX

where `sig` signs `token_message(...)`: the HTTP method and path, the client name, the
audience (the institution id of the node the token is made for, which `node.status` tells as
`institution`: a token made for one node is refused by every other; ADR 0020), the timestamp,
the nonce and the SHA-256 of the body.

Signed reads (credit files, the audit list): the reading institution signs `read_message(...)`
with a key the ledger lists for it and sends the result as the `auth` parameter.

Pure functions of their arguments: the caller supplies the time and the nonce.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from protocol import codec, crypto

AUTH_SCHEME: Final = "Crossbill-Ed25519"

_TOKEN_DOMAIN: Final = b"crossbill/rpc-token\x00"
_READ_DOMAIN: Final = b"crossbill/rpc-read\x00"


def token_message(http_method: str, path: str, client: str, audience: str, ts_ms: int,
                  nonce: str, body: bytes) -> bytes:
    return _TOKEN_DOMAIN + (f"{http_method} {path}\n{client}\n{audience}\n{ts_ms}\n{nonce}\n"
                            .encode() + hashlib.sha256(body).digest())


def sign_token(key: crypto.PrivateKey, client: str, http_method: str, path: str, body: bytes,
               now_ms: int, nonce: str, audience: str) -> str:
    """The Authorization header value for one request to the node `audience`."""
    sig = key.sign(token_message(http_method, path, client, audience, now_ms, nonce, body))
    return (f"{AUTH_SCHEME} client={client},aud={audience},ts={now_ms},nonce={nonce},"
            f"sig={sig.hex()}")


def read_message(chain_id: str, method: str, params: dict[str, Any], reader: str,
                 key_id: bytes, ts_ms: int) -> bytes:
    """What a reader signs: the method and its parameters (without `auth`), canonical."""
    body = {"chain_id": chain_id, "method": method,
            "params": {k: v for k, v in params.items() if k != "auth"},
            "reader": reader, "key_id": key_id.hex(), "ts_ms": ts_ms}
    return _READ_DOMAIN + codec.dumps_canonical(body)


def sign_read(key: crypto.PrivateKey, chain_id: str, method: str, params: dict[str, Any],
              reader: str, now_ms: int) -> dict[str, Any]:
    """The `auth` parameter of a signed read request."""
    sig = key.sign(read_message(chain_id, method, params, reader, key.key_id, now_ms))
    return {"reader": reader, "key_id": key.key_id.hex(), "ts_ms": now_ms,
            "signature": sig.hex()}
