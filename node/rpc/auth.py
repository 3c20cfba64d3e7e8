"""Checking client credentials of the JSON-RPC API, and signed read requests.

Client tokens (write methods; see ADR 0008). Each client has an Ed25519 key whose public key
is listed in the node's configuration (`[rpc] clients = {name = "hex"}`) and signs every
request (`node.credentials`: the header and the signed message). The node accepts a token
when the client is listed, the token names this node as its audience (ADR 0020), the
signature verifies, the timestamp lies within `TOKEN_WINDOW_MS` of its clock, and the
(client, nonce) pair was not seen in the window (replay protection, bounded per client so
that one client cannot crowd out another's entries).

Signed reads (credit files, the audit list). The reading institution signs
`node.credentials.read_message(...)` with a key the ledger lists for it; the node checks the
key against the current state, the time window and replays the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from node.credentials import AUTH_SCHEME, read_message, token_message
from protocol import crypto, limits

TOKEN_WINDOW_MS: Final = 30_000
READ_WINDOW_MS: Final = 60_000
# Nonces remembered per client (or reader) within the window: a client that signs more
# requests than this in the window is refused until its oldest leave it; others are not.
REPLAY_ENTRIES_PER_CLIENT_MAX: Final = 50_000
# Clients (or readers) with live entries; every one was authenticated by a signature first.
REPLAY_CLIENTS_MAX: Final = 2_000
NONCE_HEX_CHARS_MIN: Final = 16
NONCE_HEX_CHARS_MAX: Final = 64
AUTH_HEADER_BYTES_MAX: Final = 512

_HEADER: Final = re.compile(
    r"Crossbill-Ed25519 client=(?P<client>[A-Za-z0-9._-]{1,64}),"
    r"aud=(?P<aud>[A-Za-z0-9._-]{1,64}),ts=(?P<ts>\d{1,15}),"
    r"nonce=(?P<nonce>[0-9a-f]{16,64}),sig=(?P<sig>[0-9a-f]{128})")


class AuthError(Exception):
    """A credential that is missing, malformed, unknown, expired, replayed or forged."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplayCache:
    """Seen nonces per client (`who`) until they leave the validity window.

    Bounded per client (`entries_per_who_max`) and in clients (`whos_max`): a client that
    fills its own share is refused ("retry later") without touching anyone else's entries, so
    a replay of another client's token is still caught. Entries are never forgotten early.
    """

    def __init__(self, window_ms: int,
                 entries_per_who_max: int = REPLAY_ENTRIES_PER_CLIENT_MAX,
                 whos_max: int = REPLAY_CLIENTS_MAX) -> None:
        self.window_ms = window_ms
        self.entries_per_who_max = entries_per_who_max
        self.whos_max = whos_max
        self._seen: dict[str, dict[str, int]] = {}

    def __len__(self) -> int:
        return sum(len(nonces) for nonces in self._seen.values())

    def check_and_add(self, who: str, nonce: str, ts_ms: int, now_ms: int) -> None:
        nonces = self._seen.get(who)
        if nonces is not None and nonce in nonces:
            raise AuthError("replayed credential: this nonce was already used")
        if nonces is None:
            if len(self._seen) >= self.whos_max:
                self._seen = {w: n for w, n in self._seen.items()
                              if self._purge(n, now_ms)}
                if len(self._seen) >= self.whos_max:
                    raise AuthError("too many clients with credentials in the validity "
                                    "window: retry later")
            nonces = self._seen[who] = {}
        elif len(nonces) >= self.entries_per_who_max:
            self._purge(nonces, now_ms)
            if len(nonces) >= self.entries_per_who_max:
                raise AuthError(f"too many credentials from {who} in the validity window "
                                f"(limit {self.entries_per_who_max}): retry later")
        nonces[nonce] = ts_ms + self.window_ms

    @staticmethod
    def _purge(nonces: dict[str, int], now_ms: int) -> int:
        """Forget expired entries of one client in place; how many are left."""
        for nonce in [n for n, expires in nonces.items() if expires < now_ms]:
            del nonces[nonce]
        return len(nonces)


class ClientAuth:
    """Checks client tokens against the configured client keys."""

    def __init__(self, clients: dict[str, bytes], clock_ms: Callable[[], int],
                 audience: str) -> None:
        self.clients = dict(clients)
        self.clock_ms = clock_ms
        self.audience = audience  # this node's institution id
        self.replays = ReplayCache(2 * TOKEN_WINDOW_MS)

    def verify(self, header: bytes, http_method: str, path: str, body: bytes) -> str:
        """The client name, or `AuthError`."""
        if len(header) > AUTH_HEADER_BYTES_MAX:
            raise AuthError("Authorization header too long")
        m = _HEADER.fullmatch(header.decode("ascii", "replace"))
        if m is None:
            raise AuthError(f"malformed Authorization header: expected '{AUTH_SCHEME} "
                            "client=NAME,aud=NODE,ts=MS,nonce=HEX,sig=HEX'")
        client, ts_ms, nonce = m["client"], int(m["ts"]), m["nonce"]
        public_key = self.clients.get(client)
        if public_key is None:
            raise AuthError(f"unknown client {client!r}")
        if m["aud"] != self.audience:
            raise AuthError(f"token made for node {m['aud']!r}, not for this node "
                            f"({self.audience!r})")
        now = self.clock_ms()
        if abs(now - ts_ms) > TOKEN_WINDOW_MS:
            raise AuthError(f"token timestamp {ts_ms} is more than {TOKEN_WINDOW_MS} ms from "
                            f"the node's clock ({now})")
        message = token_message(http_method, path, client, self.audience, ts_ms, nonce, body)
        if not crypto.verify(public_key, message, bytes.fromhex(m["sig"])):
            raise AuthError(f"bad token signature for client {client!r}")
        self.replays.check_and_add(client, nonce, ts_ms, now)
        return client


# ---------------------------------------------------------------------- signed reads


@dataclass(frozen=True)
class ReadProof:
    reader: str
    key_id: bytes
    ts_ms: int
    signature: bytes


def parse_read_proof(value: Any) -> ReadProof:
    if not isinstance(value, dict) or set(value) != {"reader", "key_id", "ts_ms", "signature"}:
        raise AuthError("auth must be {reader, key_id, ts_ms, signature}")
    reader, key_id, ts_ms, sig = (value["reader"], value["key_id"], value["ts_ms"],
                                  value["signature"])
    if not isinstance(reader, str) or not 0 < len(reader) <= 64:
        raise AuthError("auth.reader must be an institution id or a USCC")
    if type(ts_ms) is not int or ts_ms < 0:
        raise AuthError("auth.ts_ms must be a non-negative integer")
    try:
        key_raw = bytes.fromhex(key_id) if isinstance(key_id, str) else b""
        sig_raw = bytes.fromhex(sig) if isinstance(sig, str) else b""
    except ValueError:
        raise AuthError("auth.key_id and auth.signature must be hex") from None
    if len(key_raw) != limits.KEY_ID_BYTES or len(sig_raw) != limits.SIGNATURE_BYTES:
        raise AuthError(f"auth.key_id must be {limits.KEY_ID_BYTES} bytes and auth.signature "
                        f"{limits.SIGNATURE_BYTES} bytes, in hex")
    return ReadProof(reader, key_raw, ts_ms, sig_raw)


def verify_read(proof: ReadProof, *, public_key: bytes | None, chain_id: str, method: str,
                params: dict[str, Any], now_ms: int, replays: ReplayCache) -> None:
    if public_key is None:
        raise AuthError(f"{proof.reader} has no active key {proof.key_id.hex()} on the ledger")
    if abs(now_ms - proof.ts_ms) > READ_WINDOW_MS:
        raise AuthError(f"read request timestamp {proof.ts_ms} is more than {READ_WINDOW_MS} "
                        f"ms from the node's clock ({now_ms})")
    message = read_message(chain_id, method, params, proof.reader, proof.key_id, proof.ts_ms)
    if not crypto.verify(public_key, message, proof.signature):
        raise AuthError(f"bad read-request signature for {proof.reader}")
    replays.check_and_add(proof.reader, proof.signature.hex(), proof.ts_ms, now_ms)
