"""Hashes, Ed25519 keys and signatures, encrypted key files and RFC 6962 Merkle trees.

Pure: the caller supplies every random value (seeds, salts, nonces) and does the file I/O, so
this module stays deterministic and testable. Verification uses libsodium through PyNaCl
(about 16,000 verifications/s, see docs/building-blocks.md); pycryptodome is used only for the
key-file KDF and cipher, off the hot path.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Final

from Crypto.Cipher import AES
from Crypto.Protocol.KDF import scrypt
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.signing import SigningKey, VerifyKey

from protocol import codec, limits
from protocol.codec import bound
from protocol.errors import CryptoError, DecodeError, KeyFileError

# ------------------------------------------------------------------------------- hashing

# Domain tags: every hash names what it is a hash of, so no two kinds of object can collide.
DOMAIN_TX_ID: Final = b"tx-id"
DOMAIN_TX_SIGN: Final = b"tx-sign"
DOMAIN_BLOCK: Final = b"block-header"
DOMAIN_BLOCK_SIGN: Final = b"block-sign"
DOMAIN_RECEIPT: Final = b"receipt"
DOMAIN_GENESIS: Final = b"genesis"
DOMAIN_KEY_ID: Final = b"key-id"
DOMAIN_STATE: Final = b"state"
DOMAIN_ENTERPRISE_KEY_PROOF: Final = b"enterprise-key-proof"
DOMAIN_SEALED_PLAIN: Final = b"sealed-plain"  # the hash of a sealed field's plain text
DOMAIN_SEALED_CONTEXT: Final = b"sealed-context"  # AES-GCM associated data

_HASH_PREFIX: Final = b"crossbill/"


def hash_domain_prefix(domain: bytes) -> bytes:
    """``b"crossbill/" + domain + b"\\x00"``: what precedes the data in a domain-separated
    hash or signed message."""
    if b"\x00" in domain:
        raise ValueError("a domain tag must not contain NUL")
    return _HASH_PREFIX + domain + b"\x00"


def hash_domain(domain: bytes, data: bytes) -> bytes:
    """SHA-256 of ``b"crossbill/" + domain + b"\\x00" + data``: domain-separated hashing."""
    return hashlib.sha256(hash_domain_prefix(domain) + data).digest()


def key_id_of(public_key: bytes) -> bytes:
    """The short identifier of a public key, as transactions and blocks name it."""
    return hash_domain(DOMAIN_KEY_ID, public_key)[: limits.KEY_ID_BYTES]


# ------------------------------------------------------------------------------- signatures


class PrivateKey:
    """An Ed25519 signing key made from a 32-byte seed (the caller supplies the randomness)."""

    __slots__ = ("_signing", "key_id", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise CryptoError("an Ed25519 seed is exactly 32 bytes")
        self._signing = SigningKey(seed)
        self.public_key: bytes = bytes(self._signing.verify_key)
        self.key_id: bytes = key_id_of(self.public_key)

    @property
    def seed(self) -> bytes:
        return bytes(self._signing)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._signing.sign(message).signature)

    def __repr__(self) -> str:  # never print key material
        return f"PrivateKey(key_id={self.key_id.hex()})"


_VERIFY_KEYS: dict[bytes, VerifyKey] = {}
_VERIFY_KEYS_MAX: Final = 4096  # bound on the cache of parsed public keys


def _verify_key(public_key: bytes) -> VerifyKey:
    vk = _VERIFY_KEYS.get(public_key)
    if vk is None:
        if len(public_key) != limits.PUBLIC_KEY_BYTES:
            raise CryptoError(f"a public key is {limits.PUBLIC_KEY_BYTES} bytes")
        if not crypto_core_ed25519_is_valid_point(public_key):
            raise CryptoError("not a valid Ed25519 public key (not a point of the curve's "
                              "main subgroup)")
        try:
            vk = VerifyKey(public_key)
        except (NaclCryptoError, ValueError, TypeError) as exc:
            raise CryptoError(f"not an Ed25519 public key: {exc}") from None
        if len(_VERIFY_KEYS) >= _VERIFY_KEYS_MAX:
            _VERIFY_KEYS.clear()
        _VERIFY_KEYS[public_key] = vk
    return vk


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    if len(signature) != limits.SIGNATURE_BYTES:
        return False
    try:
        _verify_key(public_key).verify(message, signature)
    except (BadSignatureError, CryptoError, NaclCryptoError, ValueError, TypeError):
        return False
    return True


def check_public_key(public_key: bytes) -> None:
    """Raise `CryptoError` unless `public_key` is a usable Ed25519 public key."""
    _verify_key(public_key)


# ------------------------------------------------------------------------------- key files

KEYFILE_KIND: Final = "crossbill-ed25519-key"


@dataclass(frozen=True)
class KeyFile:
    """An Ed25519 seed encrypted with AES-256-GCM under a scrypt-derived key.

    Everything but the ciphertext and tag is authenticated as associated data, so a changed
    public key or weakened KDF parameter makes decryption fail.
    """

    kind: str
    public_key: bytes = field(metadata=bound(max_len=limits.PUBLIC_KEY_BYTES,
                                             min_len=limits.PUBLIC_KEY_BYTES))
    scrypt_log_n: int
    scrypt_r: int = field(metadata=bound(min_value=1, max_value=32))
    scrypt_p: int = field(metadata=bound(min_value=1, max_value=16))
    salt: bytes = field(metadata=bound(min_len=16, max_len=64))
    nonce: bytes = field(metadata=bound(min_len=12, max_len=12))
    ciphertext: bytes = field(metadata=bound(min_len=32, max_len=32))
    tag: bytes = field(metadata=bound(min_len=16, max_len=16))

    def associated_data(self) -> bytes:
        body = codec.to_json(self)
        del body["ciphertext"], body["tag"]
        return codec.dumps_canonical(body)


def _derive(passphrase: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    secret = passphrase.encode("utf-8")
    if not secret:
        raise KeyFileError("the passphrase must not be empty")
    if len(secret) > limits.PASSPHRASE_BYTES_MAX:
        raise KeyFileError(f"the passphrase exceeds {limits.PASSPHRASE_BYTES_MAX} bytes")
    key = scrypt(secret, salt, 32, N=1 << log_n, r=r, p=p)
    assert isinstance(key, bytes)
    return key


def seal_key(
    key: PrivateKey,
    passphrase: str,
    *,
    salt: bytes,
    nonce: bytes,
    scrypt_log_n: int = limits.KEYFILE_SCRYPT_LOG_N_DEFAULT,
) -> bytes:
    """Encrypt a private key into key-file bytes. `salt` (16+ bytes) and `nonce` (12 bytes)
    must be fresh random values supplied by the caller."""
    if not limits.KEYFILE_SCRYPT_LOG_N_MIN <= scrypt_log_n <= limits.KEYFILE_SCRYPT_LOG_N_MAX:
        raise KeyFileError(
            f"scrypt_log_n must lie in {limits.KEYFILE_SCRYPT_LOG_N_MIN}.."
            f"{limits.KEYFILE_SCRYPT_LOG_N_MAX}")
    header = KeyFile(KEYFILE_KIND, key.public_key, scrypt_log_n, 8, 1, salt, nonce,
                     b"\x00" * 32, b"\x00" * 16)
    cipher = AES.new(_derive(passphrase, salt, scrypt_log_n, 8, 1), AES.MODE_GCM, nonce=nonce)
    cipher.update(header.associated_data())
    ciphertext, tag = cipher.encrypt_and_digest(key.seed)
    return codec.encode(dataclasses.replace(header, ciphertext=ciphertext, tag=tag))


def open_key(data: bytes, passphrase: str) -> PrivateKey:
    """Decrypt key-file bytes; `KeyFileError` says whether the file or the passphrase is bad."""
    try:
        kf = codec.decode(KeyFile, data, max_bytes=limits.KEYFILE_BYTES_MAX)
    except DecodeError as exc:
        raise KeyFileError(f"not a Crossbill key file: {exc}") from None
    if kf.kind != KEYFILE_KIND:
        raise KeyFileError(f"not a Crossbill key file: kind is {kf.kind!r}")
    if not limits.KEYFILE_SCRYPT_LOG_N_MIN <= kf.scrypt_log_n <= limits.KEYFILE_SCRYPT_LOG_N_MAX:
        raise KeyFileError(
            f"key file scrypt_log_n={kf.scrypt_log_n} is outside the accepted "
            f"{limits.KEYFILE_SCRYPT_LOG_N_MIN}..{limits.KEYFILE_SCRYPT_LOG_N_MAX}")
    cipher = AES.new(_derive(passphrase, kf.salt, kf.scrypt_log_n, kf.scrypt_r, kf.scrypt_p),
                     AES.MODE_GCM, nonce=kf.nonce)
    cipher.update(kf.associated_data())
    try:
        seed = cipher.decrypt_and_verify(kf.ciphertext, kf.tag)
    except ValueError:
        raise KeyFileError("wrong passphrase, or the key file was altered") from None
    key = PrivateKey(seed)
    if key.public_key != kf.public_key:
        raise KeyFileError("the key file's public key does not match its private key")
    return key


# ------------------------------------------------------------------------------- Merkle tree
# RFC 6962 section 2.1: leaves hashed with a 0x00 prefix, interior nodes with 0x01.

_EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


def merkle_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _root_of_hashes(hashes: list[bytes]) -> bytes:
    # Iterative form of RFC 6962's recursion: pairing left to right level by level and
    # carrying an odd last node up unchanged builds the same tree.
    level = hashes
    while len(level) > 1:
        nxt = [merkle_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(leaves: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Merkle Tree Hash of the leaves (RFC 6962 MTH); the empty tree hashes to SHA-256("")."""
    if not leaves:
        return _EMPTY_ROOT
    return _root_of_hashes([merkle_leaf(d) for d in leaves])


def merkle_proof(leaves: list[bytes] | tuple[bytes, ...], index: int) -> tuple[bytes, ...]:
    """The audit path of leaf `index` (RFC 6962 PATH), nearest sibling first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} outside a tree of {len(leaves)} leaves")
    hashes = [merkle_leaf(d) for d in leaves]
    path: list[bytes] = []

    def walk(lo: int, hi: int, m: int) -> None:
        n = hi - lo
        if n == 1:
            return
        k = _split(n)
        if m < k:
            walk(lo, lo + k, m)
            path.append(_root_of_hashes(hashes[lo + k:hi]))
        else:
            walk(lo + k, hi, m - k)
            path.append(_root_of_hashes(hashes[lo:lo + k]))

    walk(0, len(hashes), index)
    return tuple(path)


def merkle_verify(leaf: bytes, index: int, size: int, proof: tuple[bytes, ...] | list[bytes],
                  root: bytes) -> bool:
    """Check an inclusion proof (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = merkle_leaf(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = merkle_node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = merkle_node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
