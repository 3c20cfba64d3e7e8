"""Commit certificates (protocol/replica/certificates.py, ADR 0019): a block counts as committed
for a follower only with valid signatures of a strict majority of the ordering set in force."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import codec, crypto, limits
from protocol.errors import DecodeError
from protocol.ledger.state import active_public_key
from protocol.replica import certificates as certs
from tests.replica.helpers import CHAIN_ID, REG, bank, consortium, genesis, key_of

BLOCK_HASH = crypto.hash_domain(b"test", b"block 5")
OTHER_HASH = crypto.hash_domain(b"test", b"fork 5")
H = 5


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    config = consortium(banks=5, orderers=4)
    state, _ = genesis(config)
    return config, state


def lookup(state, height: int = H) -> certs.KeyLookup:  # type: ignore[no-untyped-def]
    return lambda signer, key_id: active_public_key(state, signer, key_id, height)


def sig_of(name: str, block_hash: bytes = BLOCK_HASH, height: int = H,
           chain_id: str = CHAIN_ID) -> certs.CommitSignature:
    return certs.attest(key_of(name), name, chain_id, height, block_hash).sig


def cert_of(*names: str, block_hash: bytes = BLOCK_HASH) -> certs.CommitCertificate:
    block = certs.AttestedBlock(CHAIN_ID, H, block_hash)
    return certs.merge(block, [sig_of(n, block_hash) for n in names])


def check(cert, state, orderers, block_hash=BLOCK_HASH, height=H,  # type: ignore[no-untyped-def]
          chain_id=CHAIN_ID) -> certs.CertificateVerdict:
    return certs.check_certificate(cert, chain_id=chain_id, height=height,
                                   block_hash=block_hash, orderers=orderers,
                                   key_of=lookup(state, height))


def test_majority_is_strict() -> None:
    assert [certs.majority(n) for n in range(1, 10)] == [1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_a_majority_of_the_orderers_certifies_and_a_minority_does_not(setup) -> None:  # type: ignore[no-untyped-def]
    config, state = setup
    orderers = config.orderers  # bank.1..bank.4: 3 needed
    ok = check(cert_of(bank(1), bank(2), bank(3)), state, orderers)
    assert ok.ok and ok.signers == (bank(1), bank(2), bank(3)) and ok.needed == 3
    half = check(cert_of(bank(1), bank(2)), state, orderers)
    assert not half.ok and "2 valid orderer signatures of the 3 needed" in half.reason
    one = check(cert_of(bank(4)), state, orderers)
    assert not one.ok


def test_duplicate_signatures_count_once(setup) -> None:  # type: ignore[no-untyped-def]
    config, state = setup
    block = certs.AttestedBlock(CHAIN_ID, H, BLOCK_HASH)
    s1 = sig_of(bank(1))
    forged = certs.CommitCertificate(block, (s1, s1, s1, sig_of(bank(2))))
    assert not check(forged, state, config.orderers).ok
    # merge keeps one per signer, sorted
    merged = certs.merge(block, [s1, sig_of(bank(2))], [s1])
    assert [s.signer for s in merged.signatures] == [bank(1), bank(2)]
    # and a decoded certificate must be in that form
    with pytest.raises(DecodeError, match="one per signer"):
        certs.decode_certificate(codec.encode(forged))


def test_signatures_of_non_orderers_do_not_count(setup) -> None:  # type: ignore[no-untyped-def]
    config, state = setup
    # bank.5 is a member with a valid key but not in the ordering set; the regulator neither.
    cert = cert_of(bank(1), bank(2), bank(5), REG)
    verdict = check(cert, state, config.orderers)
    assert not verdict.ok and verdict.signers == (bank(1), bank(2))


def test_a_signature_under_a_wrong_key_or_forged_does_not_count(setup) -> None:  # type: ignore[no-untyped-def]
    config, state = setup
    block = certs.AttestedBlock(CHAIN_ID, H, BLOCK_HASH)
    impostor = crypto.PrivateKey(b"\x07" * 32)  # signs as bank.3 with a key the ledger lacks
    wrong_key = certs.attest(impostor, bank(3), CHAIN_ID, H, BLOCK_HASH).sig
    forged = dataclasses.replace(sig_of(bank(3)), signature=b"\x01" * 64)
    for bad in (wrong_key, forged):
        cert = certs.merge(block, [sig_of(bank(1)), sig_of(bank(2)), bad])
        assert not check(cert, state, config.orderers).ok


@pytest.mark.parametrize("what", ["height", "hash", "chain"])
def test_a_certificate_of_another_block_does_not_certify(setup, what: str) -> None:  # type: ignore[no-untyped-def]
    config, state = setup
    cert = cert_of(bank(1), bank(2), bank(3))
    kwargs = {"height": {"height": H + 1}, "hash": {"block_hash": OTHER_HASH},
              "chain": {"chain_id": "another-chain"}}[what]
    verdict = check(cert, state, config.orderers, **kwargs)
    assert not verdict.ok and verdict.signers == ()
    # Signatures over another block, relabelled as this one's, are invalid too.
    fork_sigs = cert_of(bank(1), bank(2), bank(3), block_hash=OTHER_HASH).signatures
    relabelled = certs.CommitCertificate(certs.AttestedBlock(CHAIN_ID, H, BLOCK_HASH),
                                         fork_sigs)
    assert not check(relabelled, state, config.orderers).ok


def test_signatures_are_domain_separated_from_block_signatures() -> None:
    msg = certs.signing_message(certs.AttestedBlock(CHAIN_ID, H, BLOCK_HASH))
    assert msg.startswith(crypto.hash_domain_prefix(certs.DOMAIN_BLOCK_ATTEST))
    assert certs.DOMAIN_BLOCK_ATTEST != crypto.DOMAIN_BLOCK_SIGN


def test_the_ordering_set_in_force_decides(setup) -> None:  # type: ignore[no-untyped-def]
    _, state = setup
    cert = cert_of(bank(1), bank(2))
    assert check(cert, state, (bank(1), bank(2), bank(3))).ok        # 2 of 3
    assert not check(cert, state, (bank(1), bank(2), bank(3), bank(4), bank(5))).ok  # 2 of 5
    assert not check(cert, state, (bank(3), bank(4), bank(5))).ok    # removed signers
    assert not check(cert, state, ()).ok


def test_encoding_round_trips_and_is_bounded(setup) -> None:  # type: ignore[no-untyped-def]
    cert = cert_of(bank(1), bank(2), bank(3))
    assert certs.decode_certificate(certs.encode_certificate(cert)) == cert
    att = certs.attest(key_of(bank(1)), bank(1), CHAIN_ID, H, BLOCK_HASH)
    assert certs.decode_attestation(certs.encode_attestation(att)) == att
    with pytest.raises(DecodeError):
        padded = certs.encode_attestation(att) + b" " * limits.ATTESTATION_BYTES_MAX
        certs.decode_attestation(padded)
    block = certs.AttestedBlock(CHAIN_ID, H, BLOCK_HASH)
    many = tuple(sig_of(f"bank.{i:02d}") for i in range(limits.CERT_SIGNATURES_MAX + 1))
    too_many = certs.CommitCertificate(block, many)
    with pytest.raises(DecodeError):
        certs.decode_certificate(codec.encode(too_many))
    assert len(certs.merge(block, many).signatures) == limits.CERT_SIGNATURES_MAX
    # The largest certificate fits its byte bound.
    ids = [("b" * limits.INSTITUTION_ID_CHARS_MAX)[:-2] + f"{i:02d}"
           for i in range(limits.CERT_SIGNATURES_MAX)]
    full = certs.merge(block, [dataclasses.replace(sig_of(bank(1)), signer=i) for i in ids])
    assert len(certs.encode_certificate(full)) <= limits.CERT_BYTES_MAX


def test_backed_height_needs_a_majority_of_the_orderers() -> None:
    orderers = (bank(1), bank(2), bank(3), bank(4))
    assert certs.backed_height({bank(1): 10, bank(2): 10, bank(3): 9, bank(4): 3},
                               orderers) == 9
    # One orderer, or anyone else, claiming a huge height moves nothing.
    assert certs.backed_height({bank(1): 10**12, bank(2): 10, bank(3): 10, bank(4): 10},
                               orderers) == 10
    assert certs.backed_height({REG: 10**12, bank(1): 7, bank(2): 7, bank(3): 7},
                               orderers) == 7
    assert certs.backed_height({bank(1): 10**12}, orderers) == 0
    assert certs.backed_height({}, ()) == 0


def test_the_pool_is_bounded_and_keeps_the_first_attestation_per_signer() -> None:
    pool = certs.AttestationPool(ahead=10)
    tip = 4
    att = certs.attest(key_of(bank(1)), bank(1), CHAIN_ID, H, BLOCK_HASH)
    fork = certs.attest(key_of(bank(1)), bank(1), CHAIN_ID, H, OTHER_HASH)
    assert pool.add(att, tip) and not pool.add(fork, tip) and not pool.add(att, tip)
    assert not pool.add(certs.attest(key_of(bank(2)), bank(2), CHAIN_ID, tip, BLOCK_HASH), tip)
    assert not pool.add(certs.attest(key_of(bank(2)), bank(2), CHAIN_ID, tip + 11,
                                     BLOCK_HASH), tip)
    for i in (2, 3):
        pool.add(certs.attest(key_of(bank(i)), bank(i), CHAIN_ID, H, BLOCK_HASH), tip)
    orderers = (bank(1), bank(2), bank(3), bank(4))
    assert [s.signer for s in pool.signatures(H, BLOCK_HASH)] == [bank(1), bank(2), bank(3)]
    assert pool.signatures(H, OTHER_HASH) == ()
    assert pool.certified_height(orderers) == H
    assert pool.certified_height((bank(1), bank(2), bank(3), bank(4), bank(5), bank(6))) == 0
    pool.prune(H)
    assert len(pool) == 0 and pool.certified_height(orderers) == 0


def test_attestations_go_out_at_the_shared_heights_and_at_most_one_interval_apart() -> None:
    """ADR 0032: a follower waits at most about one interval for a block's evidence, and an
    orderer sends at most one attestation per interval between the shared heights."""
    def now(h: int, t: int, last: int | None) -> bool:
        return certs.send_attestation_now(h, t, last, every_blocks=8, interval_ms=100)

    assert now(8, 1_000, 999)          # every 8th height, however recent the last one
    assert now(3, 1_000, None)         # never sent yet
    assert not now(3, 1_050, 1_000)    # 50 ms since the last: wait (the idle tip rule sends it)
    assert now(3, 1_100, 1_000)        # a full interval since the last
    # blocks every 10 ms for a second: 10 by the interval plus the 8th heights
    sent, last = 0, None
    for h in range(1, 101):
        t = h * 10
        if now(h, t, last):
            sent, last = sent + 1, t
    assert 10 <= sent <= 10 + 100 // 8
