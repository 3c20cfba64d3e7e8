"""Commit certificates: evidence from a strict majority of the ordering set that a block is the
one Raft committed at its height (ADR 0019).

Each orderer, after applying a block committed by Raft, signs an *attestation* of
(chain id, height, block hash) under its institution key and gossips it. A *commit
certificate* of block h gathers such signatures; it is valid when the distinct signers with a
valid signature are a strict majority of the orderers in force for block h: the ordering set of
the ledger state *before* block h (the state block h is validated against, the same set whose
proposer signature `validate_basic_block` accepts), each key active at height h.

A follower (and an orderer catching up by block sync) applies block h only with a valid
certificate. One orderer's signature, its block signature included, is never enough.

Pure: no clock, no I/O; iteration is over sorted tuples only. The node gathers the inputs
(gossip, stored certificates, the ledger's orderers and keys) and carries the decisions out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Final

from protocol import codec, crypto, limits
from protocol.codec import bound
from protocol.errors import DecodeError
from protocol.types import ChainId, Hash, InstitutionId, KeyId, Signature

DOMAIN_BLOCK_ATTEST: Final = b"block-attest"

# (signer, key id) -> the public key that may sign for block h, or None.
KeyLookup = Callable[[str, bytes], bytes | None]


@dataclass(frozen=True)
class AttestedBlock:
    """What an attestation signs (inside a domain-separated message)."""

    chain_id: ChainId
    height: Annotated[int, bound(min_value=1)]
    block_hash: Hash


@dataclass(frozen=True)
class CommitSignature:
    signer: InstitutionId
    key_id: KeyId
    signature: Signature


@dataclass(frozen=True)
class Attestation:
    """One orderer's signed statement: "I applied this block, committed by Raft, at height"."""

    block: AttestedBlock
    sig: CommitSignature


@dataclass(frozen=True)
class CommitCertificate:
    block: AttestedBlock
    # Sorted by signer, one per signer (`merge` keeps it so).
    signatures: Annotated[tuple[CommitSignature, ...],
                          bound(max_len=limits.CERT_SIGNATURES_MAX)]


@dataclass(frozen=True, slots=True)
class CertificateVerdict:
    ok: bool
    signers: tuple[str, ...]  # distinct orderers with a valid signature, sorted
    needed: int               # how many the ordering set requires
    reason: str               # "" when ok


def majority(orderers: int) -> int:
    """A strict majority of `orderers`."""
    return orderers // 2 + 1


def signing_message(block: AttestedBlock) -> bytes:
    return crypto.hash_domain_prefix(DOMAIN_BLOCK_ATTEST) + codec.encode(block)


def attest(key: crypto.PrivateKey, signer: str, chain_id: str, height: int,
           block_hash: bytes) -> Attestation:
    block = AttestedBlock(chain_id, height, block_hash)
    return Attestation(block, CommitSignature(signer, key.key_id,
                                              key.sign(signing_message(block))))


def encode_attestation(att: Attestation) -> bytes:
    return codec.encode(att)


def decode_attestation(data: bytes) -> Attestation:
    return codec.decode(Attestation, data, max_bytes=limits.ATTESTATION_BYTES_MAX)


def encode_certificate(cert: CommitCertificate) -> bytes:
    return codec.encode(cert)


def decode_certificate(data: bytes) -> CommitCertificate:
    cert = codec.decode(CommitCertificate, data, max_bytes=limits.CERT_BYTES_MAX)
    signers = [s.signer for s in cert.signatures]
    if signers != sorted(set(signers)):
        raise DecodeError("a certificate's signatures are sorted by signer, one per signer")
    return cert


def merge(block: AttestedBlock, *sources: Iterable[CommitSignature]) -> CommitCertificate:
    """One certificate of `block` holding the first signature seen of each signer (in the
    order of `sources`), sorted by signer, at most `CERT_SIGNATURES_MAX`. Nothing is verified
    here: `check_certificate` decides."""
    by_signer: dict[str, CommitSignature] = {}
    for source in sources:
        for sig in source:
            if sig.signer not in by_signer:
                by_signer[sig.signer] = sig
    kept = tuple(by_signer[s] for s in sorted(by_signer))[: limits.CERT_SIGNATURES_MAX]
    return CommitCertificate(block, kept)


def signature_valid(block: AttestedBlock, sig: CommitSignature, orderers: tuple[str, ...],
                    key_of: KeyLookup, message: bytes | None = None) -> bool:
    """`sig` is by an orderer of the set, with a key the ledger lets it sign with, over
    `block` (whose `signing_message` the caller may pass)."""
    if sig.signer not in orderers:
        return False
    key = key_of(sig.signer, sig.key_id)
    if key is None:
        return False
    return crypto.verify(key, message or signing_message(block), sig.signature)


def check_certificate(cert: CommitCertificate, *, chain_id: str, height: int,
                      block_hash: bytes, orderers: tuple[str, ...],
                      key_of: KeyLookup) -> CertificateVerdict:
    """Whether `cert` proves that a strict majority of `orderers` (the set in force for
    block `height`) applied the block `block_hash` at `height` on chain `chain_id`.

    Signatures by non-orderers, with unknown or inactive keys, or invalid, are ignored;
    a signer counts once. Verification stops as soon as a majority is reached."""
    needed = majority(len(orderers))
    if not orderers:
        return CertificateVerdict(False, (), needed, "no ordering set")
    b = cert.block
    if b.chain_id != chain_id:
        return CertificateVerdict(False, (), needed, f"certificate of chain {b.chain_id!r}")
    if b.height != height:
        return CertificateVerdict(False, (), needed, f"certificate of height {b.height}")
    if b.block_hash != block_hash:
        return CertificateVerdict(False, (), needed, "certificate of another block")
    signers: list[str] = []
    message = signing_message(b)
    for sig in cert.signatures:
        if len(signers) >= needed:
            break
        if sig.signer in signers:
            continue
        if signature_valid(b, sig, orderers, key_of, message):
            signers.append(sig.signer)
    ok = len(signers) >= needed
    return CertificateVerdict(
        ok, tuple(sorted(signers)), needed,
        "" if ok else f"{len(signers)} valid orderer signatures of the {needed} needed")


def backed_height(claims: Mapping[str, int], orderers: tuple[str, ...]) -> int:
    """The highest height a strict majority of `orderers` claim to have reached (their status
    answers, by institution); claims of others are ignored and a missing claim counts as 0.
    One peer, orderer or not, can never raise it alone."""
    if not orderers:
        return 0
    heights = sorted((max(0, claims.get(o, 0)) for o in orderers), reverse=True)
    return heights[majority(len(orderers)) - 1]


class AttestationPool:
    """Attestations gossiped ahead of the blocks they name, bounded: heights in
    (tip, tip + `ahead`], one attestation per (height, signer): the first seen.
    `certified_height` is the highest height at which one block hash has signatures of a
    majority of `orderers` (signatures checked by the caller on arrival: a hint for how far to
    fetch; `check_certificate` decides before anything is applied)."""

    def __init__(self, *, ahead: int = limits.ATTESTATION_POOL_AHEAD_BLOCKS) -> None:
        self.ahead = ahead
        self._by_height: dict[int, dict[str, Attestation]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_height.values())

    def add(self, att: Attestation, tip: int) -> bool:
        """Keep `att` if it falls in the window and its signer has none here at that height."""
        h = att.block.height
        if not tip < h <= tip + self.ahead:
            return False
        at = self._by_height.setdefault(h, {})
        if att.sig.signer in at or len(at) >= limits.CERT_SIGNATURES_MAX:
            return False
        at[att.sig.signer] = att
        return True

    def highest(self) -> int:
        """The highest height with an attestation here (0 if none)."""
        return max(self._by_height, default=0)

    def signatures(self, height: int, block_hash: bytes) -> tuple[CommitSignature, ...]:
        at = self._by_height.get(height, {})
        return tuple(at[s].sig for s in sorted(at) if at[s].block.block_hash == block_hash)

    def certified_height(self, orderers: tuple[str, ...]) -> int:
        needed = majority(len(orderers)) if orderers else 1 << 62
        best = 0
        for h in sorted(self._by_height):
            counts: dict[bytes, int] = {}
            for s, att in sorted(self._by_height[h].items()):
                if s in orderers:
                    counts[att.block.block_hash] = counts.get(att.block.block_hash, 0) + 1
            if any(n >= needed for n in counts.values()):
                best = h
        return best

    def prune(self, tip: int) -> None:
        """Forget heights that left the window."""
        for h in [h for h in self._by_height if h <= tip or h > tip + self.ahead]:
            del self._by_height[h]


def send_attestation_now(height: int, now_ms: int, last_sent_ms: int | None, *,
                         every_blocks: int, interval_ms: int) -> bool:
    """Whether an orderer that just applied block `height` sends its attestation to the
    nodes outside the ordering set now (ADR 0019, ADR 0032): at every `every_blocks`-th height
    (every orderer picks the same heights, so followers gather a majority for them), and
    whenever `interval_ms` passed since it last sent one (so a follower waits at most about
    that long for the evidence of a block, however slowly blocks come, while the messages stay
    bounded to 1,000 / interval_ms per second per orderer however fast they come). Otherwise the
    node sends the tip's attestation once no block followed for a while. Time is the caller's
    monotonic clock in milliseconds; None: never sent."""
    if height % every_blocks == 0:
        return True
    return last_sent_ms is None or now_ms - last_sent_ms >= interval_ms

