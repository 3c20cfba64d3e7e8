"""The signed credentials of the JSON-RPC API as both ends compute them: the client library
(`node.client`) signs with these, the node (`node.rpc.auth`) checks against them.

Request signatures (RFC 9421 HTTP Message Signatures; ADR 0033): every HTTP request that
carries a client credential (POST / with the JSON-RPC body, and the WebSocket upgrade GET /ws
with an empty body) sends three headers, which `signature_headers(...)` builds:

    Content-Digest: sha-256=:<base64 of SHA-256(body)>:
    Signature-Input: crossbill=("@method" "@path" "content-digest");created=<Unix seconds>;\
keyid="<client>";nonce="<16-64 lowercase hex>";tag="crossbill-rpc/<audience>";alg="ed25519"
    Signature: crossbill=:<base64 of the Ed25519 signature of the signature base>:

`keyid` is the client name listed in the node's `[rpc] clients`; the audience (in `tag`) is
the institution id of the node the request is for (`node.status` tells it as `institution`),
so that a request made for one node is refused by every other (ADR 0020). The signature base
(RFC 9421 section 2.5, `signature_base(...)`) is these lines joined by "\n", no trailing
newline:

    "@method": POST
    "@path": /
    "content-digest": sha-256=:...:
    "@signature-params": <the Signature-Input member's value, exactly>

docs/vectors/client-auth.json gives worked examples, and what the node refuses.

Deprecated client tokens (ADR 0008, still accepted by the node; ADR 0033 says until when):

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

import base64
import hashlib
import re
from typing import Any, Final

from protocol import codec, crypto

AUTH_SCHEME: Final = "Crossbill-Ed25519"

SIGNATURE_LABEL: Final = "crossbill"
SIGNATURE_TAG_PREFIX: Final = "crossbill-rpc/"
SIGNATURE_ALG: Final = "ed25519"
# What the node requires a request signature to cover (ADR 0033); these three, in this
# order, are what `signature_headers` covers.
REQUIRED_COMPONENTS: Final = ("@method", "@path", "content-digest")
# Client names and audiences go into quoted Structured Field strings unescaped.
_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NONCE: Final = re.compile(r"[0-9a-f]{16,64}")

_TOKEN_DOMAIN: Final = b"crossbill/rpc-token\x00"
_READ_DOMAIN: Final = b"crossbill/rpc-read\x00"


def content_digest(body: bytes) -> str:
    """The Content-Digest header value (RFC 9530) of a body: its SHA-256."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def signature_params(client: str, audience: str, created_s: int, nonce: str) -> str:
    """The Signature-Input member's value: covered components and parameters."""
    for what, value, pattern in (("client", client, _NAME), ("audience", audience, _NAME),
                                 ("nonce", nonce, _NONCE)):
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} {value!r} does not match {pattern.pattern}")
    components = " ".join(f'"{c}"' for c in REQUIRED_COMPONENTS)
    return (f'({components});created={created_s};keyid="{client}";nonce="{nonce}";'
            f'tag="{SIGNATURE_TAG_PREFIX}{audience}";alg="{SIGNATURE_ALG}"')


def signature_base(http_method: str, path: str, digest: str, params: str) -> bytes:
    """What the client signs (RFC 9421 section 2.5) when it covers `REQUIRED_COMPONENTS`."""
    return (f'"@method": {http_method}\n"@path": {path}\n"content-digest": {digest}\n'
            f'"@signature-params": {params}').encode("ascii")


def signature_headers(key: crypto.PrivateKey, client: str, http_method: str, path: str,
                      body: bytes, created_s: int, nonce: str, audience: str
                      ) -> dict[str, str]:
    """The Content-Digest, Signature-Input and Signature headers of one request to the node
    `audience`, signed by `client` at Unix time `created_s` (seconds) with a fresh `nonce`
    (16 to 64 lowercase hex characters, never reused within the node's window)."""
    digest = content_digest(body)
    params = signature_params(client, audience, created_s, nonce)
    sig = key.sign(signature_base(http_method, path, digest, params))
    return {"Content-Digest": digest,
            "Signature-Input": f"{SIGNATURE_LABEL}={params}",
            "Signature": f"{SIGNATURE_LABEL}=:{base64.b64encode(sig).decode()}:"}


def token_message(http_method: str, path: str, client: str, audience: str, ts_ms: int,
                  nonce: str, body: bytes) -> bytes:
    return _TOKEN_DOMAIN + (f"{http_method} {path}\n{client}\n{audience}\n{ts_ms}\n{nonce}\n"
                            .encode() + hashlib.sha256(body).digest())


def sign_token(key: crypto.PrivateKey, client: str, http_method: str, path: str, body: bytes,
               now_ms: int, nonce: str, audience: str) -> str:
    """The Authorization header value for one request to the node `audience` (deprecated:
    `signature_headers` replaces it)."""
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
