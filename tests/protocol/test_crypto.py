"""Hashes, signatures, key files and RFC 6962 Merkle trees."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec, crypto, limits
from protocol.errors import CryptoError, KeyFileError
from tests.protocol.helpers import key

FAST_LOG_N = limits.KEYFILE_SCRYPT_LOG_N_MIN

# ------------------------------------------------------------------------- hashing


def test_domains_separate_hashes_of_the_same_bytes() -> None:
    data = b"same bytes"
    hashes = {crypto.hash_domain(d, data) for d in (
        crypto.DOMAIN_TX_ID, crypto.DOMAIN_BLOCK, crypto.DOMAIN_RECEIPT, crypto.DOMAIN_GENESIS,
        crypto.DOMAIN_STATE, crypto.DOMAIN_KEY_ID)}
    assert len(hashes) == 6
    assert crypto.hash_domain(b"x", data) == hashlib.sha256(b"crossbill/x\x00" + data).digest()


def test_domain_tags_cannot_contain_nul() -> None:
    with pytest.raises(ValueError):
        crypto.hash_domain(b"a\x00b", b"")


# ------------------------------------------------------------------------- signatures


def test_sign_and_verify() -> None:
    k = key("signer")
    sig = k.sign(b"message")
    assert crypto.verify(k.public_key, b"message", sig)
    assert not crypto.verify(k.public_key, b"messagf", sig)
    assert not crypto.verify(key("other").public_key, b"message", sig)
    assert not crypto.verify(k.public_key, b"message", sig[:-1])
    assert not crypto.verify(b"\x00" * 31, b"message", sig)


@settings(max_examples=64, deadline=None)
@given(st.integers(0, 63), st.integers(0, 7))
def test_any_bit_flip_of_a_signature_fails(pos: int, bit: int) -> None:
    k = key("signer")
    sig = bytearray(k.sign(b"payload"))
    sig[pos] ^= 1 << bit
    assert not crypto.verify(k.public_key, b"payload", bytes(sig))


def test_malformed_keys_raise_crypto_error() -> None:
    with pytest.raises(CryptoError):
        crypto.PrivateKey(b"short")
    with pytest.raises(CryptoError):
        crypto.check_public_key(b"\x01" * 5)


def test_private_key_repr_hides_the_secret() -> None:
    k = key("secret")
    assert k.seed.hex() not in repr(k)
    assert k.key_id.hex() in repr(k)


# ------------------------------------------------------------------------- key files


def _seal(passphrase: str = "correct horse", log_n: int = FAST_LOG_N) -> bytes:
    return crypto.seal_key(key("bank"), passphrase, salt=b"s" * 16, nonce=b"n" * 12,
                           scrypt_log_n=log_n)


def test_key_file_round_trip() -> None:
    data = _seal()
    opened = crypto.open_key(data, "correct horse")
    assert opened.public_key == key("bank").public_key
    assert key("bank").seed.hex() not in data.decode()


def test_key_file_wrong_passphrase() -> None:
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        crypto.open_key(_seal(), "battery staple")


@pytest.mark.parametrize("field", ["public_key", "salt", "nonce", "ciphertext", "tag",
                                   "scrypt_r"])
def test_key_file_tampering_is_detected(field: str) -> None:
    raw = orjson.loads(_seal())
    if field == "scrypt_r":
        raw[field] = 9
    else:
        value = bytearray.fromhex(raw[field])
        value[0] ^= 1
        raw[field] = value.hex()
    with pytest.raises(KeyFileError):
        crypto.open_key(codec.dumps_canonical(raw), "correct horse")


def test_weak_key_files_are_refused() -> None:
    raw = orjson.loads(_seal())
    raw["scrypt_log_n"] = limits.KEYFILE_SCRYPT_LOG_N_MIN - 1
    with pytest.raises(KeyFileError, match="outside the accepted"):
        crypto.open_key(codec.dumps_canonical(raw), "correct horse")
    with pytest.raises(KeyFileError, match="scrypt_log_n must lie"):
        _seal(log_n=limits.KEYFILE_SCRYPT_LOG_N_MIN - 1)


@pytest.mark.parametrize("data", [b"", b"{}", b"not json", b"x" * 10_000])
def test_garbage_key_files(data: bytes) -> None:
    with pytest.raises(KeyFileError, match="not a Crossbill key file"):
        crypto.open_key(data, "pw")


def test_empty_passphrase_refused() -> None:
    with pytest.raises(KeyFileError, match="must not be empty"):
        _seal(passphrase="")


# ------------------------------------------------------------------------- Merkle trees


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle Tree Hash, written as the recursion in the RFC."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _leaves(n: int) -> list[bytes]:
    return [bytes([i % 256, i // 256]) * 3 for i in range(n)]


@pytest.mark.parametrize("n", list(range(0, 34)) + [100, 257])
def test_merkle_root_matches_rfc_6962_recursion(n: int) -> None:
    assert crypto.merkle_root(_leaves(n)) == _mth(_leaves(n))


def test_merkle_known_vector() -> None:
    # RFC 6962 leaf and node prefixes: the empty tree and a one-leaf tree.
    assert crypto.merkle_root([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert crypto.merkle_root([b""]).hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_every_inclusion_proof_verifies(n: int) -> None:
    leaves = _leaves(n)
    root = crypto.merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = crypto.merkle_proof(leaves, i)
        assert crypto.merkle_verify(leaf, i, n, proof, root)


@pytest.mark.parametrize("n", [2, 5, 8, 13])
def test_tampered_proofs_fail(n: int) -> None:
    leaves = _leaves(n)
    root = crypto.merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = list(crypto.merkle_proof(leaves, i))
        assert not crypto.merkle_verify(leaf + b"x", i, n, proof, root)
        assert not crypto.merkle_verify(leaf, (i + 1) % n, n, proof, root)
        assert not crypto.merkle_verify(leaf, i, 2 * n + 1, proof, root)  # deeper tree
        assert not crypto.merkle_verify(leaf, i, n, proof, b"\x00" * 32)
        assert not crypto.merkle_verify(leaf, i, n, proof + [b"\x00" * 32], root)
        if proof:
            assert not crypto.merkle_verify(leaf, i, n, proof[:-1], root)
            for j in range(len(proof)):
                bad = list(proof)
                bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
                assert not crypto.merkle_verify(leaf, i, n, bad, root)


def test_merkle_proof_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        crypto.merkle_proof(_leaves(3), 3)
    assert not crypto.merkle_verify(b"x", 5, 3, [], crypto.merkle_root(_leaves(3)))
