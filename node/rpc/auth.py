"""Checking client credentials of the JSON-RPC API, and signed read requests.

Client credentials (write methods; ADR 0008, 0033). Each client has an Ed25519 key whose
public key is listed in the node's configuration (`[rpc] clients = {name = "hex"}`) and signs
every request with an RFC 9421 HTTP Message Signature (`node.credentials`: the headers and
the signature base). The node accepts a signature when it is the only one, covers at least
`@method`, `@path` and `content-digest`, names a listed client (`keyid`) and this node as its
audience (`tag`, ADR 0020), was created within `TOKEN_WINDOW_MS` of the node's clock (and has
not expired), its Content-Digest matches the body, the Ed25519 signature verifies, and the
(client, nonce) pair was not seen in the window (replay protection, bounded per client so
that one client cannot crowd out another's entries). The older `Authorization:
Crossbill-Ed25519` token is still accepted, deprecated (ADR 0033), with the same checks.
Every refusal names the rule that failed (`AuthError.rule`) and why.

Signed reads (credit files, the audit list). The reading institution signs
`node.credentials.read_message(...)` with a key the ledger lists for it; the node checks the
key against the current state, the time window and replays the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import http_sf

from node.credentials import (
    AUTH_SCHEME,
    REQUIRED_COMPONENTS,
    SIGNATURE_ALG,
    SIGNATURE_TAG_PREFIX,
    read_message,
    token_message,
)
from protocol import crypto, limits

log = logging.getLogger(__name__)

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
# RFC 9421 request signatures (ADR 0033): each header is bounded before it is parsed.
SIGNATURE_INPUT_BYTES_MAX: Final = 1024
SIGNATURE_HEADER_BYTES_MAX: Final = 256       # one label and 64 bytes in base64
CONTENT_DIGEST_BYTES_MAX: Final = 256         # sha-256 and sha-512 members at most
SIGNATURES_PER_REQUEST_MAX: Final = 1         # one label in Signature-Input and Signature
SIGNATURE_COMPONENTS_MAX: Final = 12          # covered components of that signature
SIGNATURE_LABEL_CHARS_MAX: Final = 64
SIGNATURE_PARAM_CHARS_MAX: Final = 128        # each string parameter (keyid, tag, ...)
SIGNATURE_PARAMS_MAX: Final = 8               # parameters of the signature
COMPONENT_NAME_CHARS_MAX: Final = 64
SIGNED_FIELD_BYTES_MAX: Final = 1024          # each covered header field's value
ED25519_SIGNATURE_BYTES: Final = 64
_DIGESTS: Final = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
# Derived components (RFC 9421 section 2.2) the node can rebuild; header fields are covered by
# their lower-case names, without parameters.
DERIVED_COMPONENTS: Final = ("@method", "@path", "@authority", "@scheme", "@target-uri",
                             "@request-target", "@query")

_NONCE: Final = re.compile(f"[0-9a-f]{{{NONCE_HEX_CHARS_MIN},{NONCE_HEX_CHARS_MAX}}}")
_HEADER: Final = re.compile(
    r"Crossbill-Ed25519 client=(?P<client>[A-Za-z0-9._-]{1,64}),"
    r"aud=(?P<aud>[A-Za-z0-9._-]{1,64}),ts=(?P<ts>\d{1,15}),"
    r"nonce=(?P<nonce>[0-9a-f]{16,64}),sig=(?P<sig>[0-9a-f]{128})")


class AuthError(Exception):
    """A credential that is missing, malformed, unknown, expired, replayed or forged.

    `rule` names the check that failed, one word for programs (the 401's `data.rule`):
    malformed, missing-component, unsupported-component, missing-parameter, algorithm,
    unknown-client, wrong-audience, expired, digest-mismatch, bad-signature, replayed,
    retry-later; `reason` says it for people."""

    def __init__(self, reason: str, rule: str = "refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule


@dataclass(frozen=True)
class HttpMessage:
    """What a request signature can cover: the request as the node received it."""

    method: str
    path: str
    headers: Mapping[bytes, bytes]  # lower-case names
    body: bytes = b""
    query: str = ""                 # the target's query, without "?"
    scheme: str = "http"


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
            raise AuthError("replayed credential: this nonce was already used", "replayed")
        if nonces is None:
            if len(self._seen) >= self.whos_max:
                self._seen = {w: n for w, n in self._seen.items()
                              if self._purge(n, now_ms)}
                if len(self._seen) >= self.whos_max:
                    raise AuthError("too many clients with credentials in the validity "
                                    "window: retry later", "retry-later")
            nonces = self._seen[who] = {}
        elif len(nonces) >= self.entries_per_who_max:
            self._purge(nonces, now_ms)
            if len(nonces) >= self.entries_per_who_max:
                raise AuthError(f"too many credentials from {who} in the validity window "
                                f"(limit {self.entries_per_who_max}): retry later",
                                "retry-later")
        nonces[nonce] = ts_ms + self.window_ms

    @staticmethod
    def _purge(nonces: dict[str, int], now_ms: int) -> int:
        """Forget expired entries of one client in place; how many are left."""
        for nonce in [n for n, expires in nonces.items() if expires < now_ms]:
            del nonces[nonce]
        return len(nonces)


class ClientAuth:
    """Checks client credentials against the configured client keys."""

    def __init__(self, clients: dict[str, bytes], clock_ms: Callable[[], int],
                 audience: str) -> None:
        self.clients = dict(clients)
        self.clock_ms = clock_ms
        self.audience = audience  # this node's institution id
        self.replays = ReplayCache(2 * TOKEN_WINDOW_MS)
        # (scheme, "accepted" or the rule that refused): count; a few dozen keys at most
        self.outcomes: dict[tuple[str, str], int] = {}
        self._legacy_clients: set[str] = set()  # warned about once each (listed clients)

    def verify_request(self, message: HttpMessage) -> str | None:
        """The client a request is signed by; None when it carries no credential; or
        `AuthError`. A request signature (RFC 9421) wins over an Authorization token."""
        headers = message.headers
        signed = b"signature-input" in headers or b"signature" in headers
        token = None if signed else headers.get(b"authorization")
        if not signed and token is None:
            return None
        scheme = "rfc9421" if signed else "token"
        try:
            client = (self.verify_signature(message) if token is None else
                      self.verify(token, message.method, message.path, message.body))
        except AuthError as exc:
            self._count(scheme, exc.rule)
            raise
        self._count(scheme, "accepted")
        if token is not None and client not in self._legacy_clients:
            self._legacy_clients.add(client)
            log.warning("client %s authenticates with the deprecated Authorization: %s "
                        "token; move it to RFC 9421 request signatures (ADR 0033)", client,
                        AUTH_SCHEME)
        return client

    def _count(self, scheme: str, outcome: str) -> None:
        key = (scheme, outcome)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    def verify_signature(self, message: HttpMessage) -> str:
        """The client name of an RFC 9421 request signature, or `AuthError` (ADR 0033)."""
        sig_input, sig = (message.headers.get(b"signature-input"),
                          message.headers.get(b"signature"))
        if sig_input is None or sig is None:
            raise AuthError("a request signature needs both Signature-Input and Signature "
                            "headers", "malformed")
        label, components, params = _signature_input(sig_input)
        signature = _signature(sig, label)
        missing = [c for c in REQUIRED_COMPONENTS if c not in components]
        if missing:
            raise AuthError(f"the signature must cover {', '.join(REQUIRED_COMPONENTS)}; "
                            f"missing {', '.join(missing)}", "missing-component")
        for name in ("created", "keyid", "nonce", "tag"):
            if name not in params:
                raise AuthError(f"Signature-Input has no {name!r} parameter",
                                "missing-parameter")
        if params.get("alg", SIGNATURE_ALG) != SIGNATURE_ALG:
            raise AuthError(f"unsupported alg {params['alg']!r}: only {SIGNATURE_ALG!r}",
                            "algorithm")
        client, nonce, tag = params["keyid"], params["nonce"], params["tag"]
        public_key = self.clients.get(client)
        if public_key is None:
            raise AuthError(f"unknown client {client!r} (keyid)", "unknown-client")
        if tag != SIGNATURE_TAG_PREFIX + self.audience:
            raise AuthError(f"signature made for {tag!r}, not for this node "
                            f"({SIGNATURE_TAG_PREFIX + self.audience!r})", "wrong-audience")
        if not _NONCE.fullmatch(nonce):
            raise AuthError(f"nonce must be {NONCE_HEX_CHARS_MIN} to {NONCE_HEX_CHARS_MAX} "
                            "lowercase hex characters", "malformed")
        now = self.clock_ms()
        created_ms = params["created"] * 1000
        if abs(now - created_ms) > TOKEN_WINDOW_MS:
            raise AuthError(f"signature created at {params['created']} s is more than "
                            f"{TOKEN_WINDOW_MS} ms from the node's clock ({now} ms)", "expired")
        if "expires" in params and params["expires"] * 1000 < now:
            raise AuthError(f"signature expired at {params['expires']} s (node's clock: "
                            f"{now} ms)", "expired")
        _check_digest(message.headers.get(b"content-digest"), message.body)
        base = _signature_base(message, components, params["@serialized"])
        if not crypto.verify(public_key, base, signature):
            raise AuthError(f"bad signature for client {client!r}: the signature base does "
                            "not verify with its key", "bad-signature")
        self.replays.check_and_add(client, nonce, created_ms, now)
        return str(client)

    def verify(self, header: bytes, http_method: str, path: str, body: bytes) -> str:
        """The client name of a (deprecated) Authorization token, or `AuthError`."""
        if len(header) > AUTH_HEADER_BYTES_MAX:
            raise AuthError("Authorization header too long", "malformed")
        m = _HEADER.fullmatch(header.decode("ascii", "replace"))
        if m is None:
            raise AuthError(f"malformed Authorization header: expected '{AUTH_SCHEME} "
                            "client=NAME,aud=NODE,ts=MS,nonce=HEX,sig=HEX' (deprecated) or "
                            "an RFC 9421 request signature (ADR 0033)", "malformed")
        client, ts_ms, nonce = m["client"], int(m["ts"]), m["nonce"]
        public_key = self.clients.get(client)
        if public_key is None:
            raise AuthError(f"unknown client {client!r}", "unknown-client")
        if m["aud"] != self.audience:
            raise AuthError(f"token made for node {m['aud']!r}, not for this node "
                            f"({self.audience!r})", "wrong-audience")
        now = self.clock_ms()
        if abs(now - ts_ms) > TOKEN_WINDOW_MS:
            raise AuthError(f"token timestamp {ts_ms} is more than {TOKEN_WINDOW_MS} ms from "
                            f"the node's clock ({now})", "expired")
        message = token_message(http_method, path, client, self.audience, ts_ms, nonce, body)
        if not crypto.verify(public_key, message, bytes.fromhex(m["sig"])):
            raise AuthError(f"bad token signature for client {client!r}", "bad-signature")
        self.replays.check_and_add(client, nonce, ts_ms, now)
        return client


def _dictionary(raw: bytes, name: str, bytes_max: int) -> dict[str, Any]:
    """A Structured Field Dictionary header (RFC 8941), bounded before it is parsed."""
    if len(raw) > bytes_max:
        raise AuthError(f"{name} header longer than {bytes_max} bytes", "malformed")

    def duplicate(key: str, context: str) -> None:
        raise AuthError(f"{name} repeats {key!r}", "malformed")

    try:
        parsed = http_sf.parse(raw, tltype="dictionary", on_duplicate_key=duplicate)
    except (http_sf.StructuredFieldError, ValueError) as exc:
        raise AuthError(f"{name} is not a Structured Field Dictionary: {exc}",
                        "malformed") from None
    assert isinstance(parsed, dict)
    return parsed


def _one_member(parsed: dict[str, Any], name: str) -> tuple[str, Any]:
    if len(parsed) != SIGNATURES_PER_REQUEST_MAX:
        raise AuthError(f"{name} must hold exactly {SIGNATURES_PER_REQUEST_MAX} signature, "
                        f"not {len(parsed)}", "malformed")
    label, member = next(iter(parsed.items()))
    if len(label) > SIGNATURE_LABEL_CHARS_MAX:
        raise AuthError(f"{name} label longer than {SIGNATURE_LABEL_CHARS_MAX} characters",
                        "malformed")
    return label, member


def _signature_input(raw: bytes) -> tuple[str, list[str], dict[str, Any]]:
    """(label, covered components, parameters) of the one signature; the parameters also
    hold "@serialized": the member's value as the signature base's last line shows it."""
    parsed = _dictionary(raw, "Signature-Input", SIGNATURE_INPUT_BYTES_MAX)
    label, (items, params) = _one_member(parsed, "Signature-Input")
    if not isinstance(items, list):
        raise AuthError("Signature-Input's member must be an inner list of components",
                        "malformed")
    if len(items) > SIGNATURE_COMPONENTS_MAX:
        raise AuthError(f"more than {SIGNATURE_COMPONENTS_MAX} covered components",
                        "malformed")
    components: list[str] = []
    for value, item_params in items:
        if not isinstance(value, str) or len(value) > COMPONENT_NAME_CHARS_MAX:
            raise AuthError("covered components must be strings of at most "
                            f"{COMPONENT_NAME_CHARS_MAX} characters", "malformed")
        if item_params:
            raise AuthError(f"component {value!r}: parameters ({', '.join(item_params)}) are "
                            "not supported", "unsupported-component")
        if value in components:
            raise AuthError(f"component {value!r} is covered twice", "malformed")
        if value.startswith("@") and value not in DERIVED_COMPONENTS:
            raise AuthError(f"unsupported derived component {value!r}: the node knows "
                            f"{', '.join(DERIVED_COMPONENTS)}", "unsupported-component")
        if value != value.lower() or value == "@signature-params":
            raise AuthError(f"component {value!r} is not allowed", "malformed")
        components.append(value)
    if len(params) > SIGNATURE_PARAMS_MAX:
        raise AuthError(f"more than {SIGNATURE_PARAMS_MAX} signature parameters", "malformed")
    for name, value in params.items():
        want = int if name in ("created", "expires") else str
        if name in ("created", "expires", "keyid", "nonce", "tag", "alg") and (
                type(value) is not want):
            raise AuthError(f"parameter {name!r} must be a Structured Field "
                            f"{'Integer' if want is int else 'String'}", "malformed")
        if isinstance(value, str) and len(value) > SIGNATURE_PARAM_CHARS_MAX:
            raise AuthError(f"parameter {name!r} longer than {SIGNATURE_PARAM_CHARS_MAX} "
                            "characters", "malformed")
    serialized = http_sf.ser({label: (items, params)})[len(label) + 1:]
    return label, components, {**params, "@serialized": serialized}


def _signature(raw: bytes, label: str) -> bytes:
    parsed = _dictionary(raw, "Signature", SIGNATURE_HEADER_BYTES_MAX)
    sig_label, (value, _params) = _one_member(parsed, "Signature")
    if sig_label != label:
        raise AuthError(f"Signature's label {sig_label!r} is not Signature-Input's "
                        f"({label!r})", "malformed")
    if not isinstance(value, bytes) or len(value) != ED25519_SIGNATURE_BYTES:
        raise AuthError(f"Signature must be a Byte Sequence of {ED25519_SIGNATURE_BYTES} "
                        "bytes (:base64:)", "malformed")
    return value


def _check_digest(raw: bytes | None, body: bytes) -> None:
    """The Content-Digest (RFC 9530) must match the body: every sha-256 or sha-512 member,
    and at least one of them."""
    if raw is None:
        raise AuthError("the signature covers content-digest but the request has no "
                        "Content-Digest header", "missing-component")
    parsed = _dictionary(raw, "Content-Digest", CONTENT_DIGEST_BYTES_MAX)
    known = {alg: value for alg, (value, _params) in parsed.items() if alg in _DIGESTS}
    if not known:
        raise AuthError("Content-Digest has no sha-256 (or sha-512) member", "malformed")
    for alg, value in known.items():
        if not isinstance(value, bytes):
            raise AuthError(f"Content-Digest's {alg} must be a Byte Sequence (:base64:)",
                            "malformed")
        if not hmac.compare_digest(value, _DIGESTS[alg](body).digest()):
            raise AuthError(f"Content-Digest's {alg} does not match the body "
                            f"({alg}=:{base64.b64encode(_DIGESTS[alg](body).digest()).decode()}:"
                            ")", "digest-mismatch")


def _signature_base(message: HttpMessage, components: list[str], serialized: str) -> bytes:
    lines = [f'"{c}": {_component(message, c)}' for c in components]
    lines.append(f'"@signature-params": {serialized}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise AuthError("a covered component is not ASCII", "malformed") from None


def _component(message: HttpMessage, name: str) -> str:
    """A covered component's value (RFC 9421 sections 2.1 and 2.2)."""
    authority = (message.headers.get(b"host") or b"").decode("latin-1").strip().lower()
    query = f"?{message.query}"
    match name:
        case "@method":
            return message.method
        case "@path":
            return message.path
        case "@authority":
            return authority
        case "@scheme":
            return message.scheme
        case "@target-uri":
            return f"{message.scheme}://{authority}{message.path}" + (
                query if message.query else "")
        case "@request-target":
            return message.path + (query if message.query else "")
        case "@query":
            return query
    value = message.headers.get(name.encode("latin-1"))
    if value is None:
        raise AuthError(f"the signature covers {name!r} but the request has no such header",
                        "missing-component")
    if len(value) > SIGNED_FIELD_BYTES_MAX:
        raise AuthError(f"covered header {name!r} longer than {SIGNED_FIELD_BYTES_MAX} "
                        "bytes", "malformed")
    text = value.decode("latin-1").strip()
    if "\n" in text or "\r" in text:
        raise AuthError(f"covered header {name!r} holds a line break", "malformed")
    return text


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
