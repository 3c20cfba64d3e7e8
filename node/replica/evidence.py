"""Commit evidence on a node (ADR 0019): orderers attest the blocks they apply, every node pools
the attestations it hears and stores a certificate per block it holds.

- An orderer, after applying a block (Raft committed it), signs an attestation of
  (chain id, height, block hash); its own signature goes into the certificate it stores for
  that height, so block sync serves it even if every message was lost. It sends the
  attestation (`PROTO_ATTEST`, one-way, not gossip: a gossip message costs every node some
  4.5 ms of py-libp2p, docs/building-blocks.md) to the nodes outside the ordering set when the
  height is a multiple of ATTEST_EVERY_BLOCKS, when ATTEST_INTERVAL_MS passed since it last
  sent one, or when the block is still its tip ATTEST_IDLE_S later: every orderer picks the
  same heights, and a certificate of block h vouches for its ancestors (hash-linked), so
  followers need not hear of every block. Orderers need no one else's attestation: Raft is
  their evidence.
- A node takes attestations: for a height it already holds, merged into the stored
  certificate (once the block hash matches); for a height ahead of its tip, kept in a bounded
  `AttestationPool` until the block arrives (a follower) or forgotten.
- `certify` tells block sync whether a block that extends the tip carries the evidence of a
  majority of the ordering set: from the certificate a peer served with it, the stored one,
  and the pool. The decision is `protocol.replica.certificates.check_certificate`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

import trio

from node.p2p import network as net
from node.replica.chain import Chain
from node.storage.store import Storage, StorageUnavailable
from protocol import crypto, limits, types
from protocol.errors import CrossbillError, DecodeError
from protocol.ledger.state import active_public_key
from protocol.replica import certificates as certs
from protocol.replica.certificates import (
    Attestation,
    AttestedBlock,
    CertificateVerdict,
    CommitCertificate,
    CommitSignature,
)

log = logging.getLogger("crossbill.evidence")

# Orderers send the attestation of every block at a height multiple of this, and of the tip
# once no block followed it for ATTEST_IDLE_S.
ATTEST_EVERY_BLOCKS: Final = 8
ATTEST_IDLE_S: Final = 0.3
# ... and whenever this long passed since it last sent one (protocol.replica.certificates.
# send_attestation_now): a follower waited up to 8 blocks for a certificate, the bulk of its
# latency at moderate load (ADR 0032).
ATTEST_INTERVAL_MS: Final = 100
ATTEST_OUTBOX_MAX: Final = 64  # attestations queued for sending; more are dropped
ATTEST_SEND_TIMEOUT_S: Final = 2.0

# Attestations of blocks this far below the tip are not worth merging any more.
ATTESTATION_BEHIND_BLOCKS_MAX: Final = 1024


class CommitEvidence:
    def __init__(self, *, institution: str, chain: Chain, storage: Storage,
                 network: net.Network,
                 signing_key: Callable[[int], crypto.PrivateKey | None],
                 is_orderer: Callable[[], bool] = lambda: False,
                 recipients: Callable[[], list[str]] = lambda: [],
                 on_attestation: Callable[[], None] = lambda: None) -> None:
        self.institution = institution
        self.chain = chain
        self.storage = storage
        self.net = network
        self.signing_key = signing_key  # the key this node may sign block `height` with
        self.is_orderer = is_orderer  # ordering now: attests what it applies and serves
        self.on_attestation = on_attestation  # a pooled attestation arrived (wakes sync)
        self.pool = certs.AttestationPool()
        self.stats: dict[str, int] = {"attestations_sent": 0, "attestations_rejected": 0,
                                      "attestations_pooled": 0, "certificates_stored": 0,
                                      "blocks_uncertified": 0}
        self.recipients = recipients  # peers an orderer sends its attestations to
        self._last: Attestation | None = None  # this orderer's latest, not yet sent
        self._last_sent_ms: int | None = None  # trio clock, ms: when it last sent one
        self._applied = trio.Event()
        self._outbox_send, self._outbox = trio.open_memory_channel[bytes](ATTEST_OUTBOX_MAX)
        network.register_handler(net.PROTO_ATTEST, self._on_attestation)

    # ------------------------------------------------------------------ keys and sets

    def key_lookup(self, height: int) -> certs.KeyLookup:
        """Keys as the current ledger state lets them sign block `height`."""
        state = self.chain.state
        return lambda signer, key_id: active_public_key(state, signer, key_id, height)

    def _sig_ok(self, block: AttestedBlock, sig: CommitSignature) -> bool:
        return certs.signature_valid(block, sig, self.chain.orderers(),
                                     self.key_lookup(block.height))

    # ------------------------------------------------------------------ gossip in

    def validator(self, data: bytes, peer_id: str) -> bool:
        """Relay only attestations of this chain, near the tip, by an orderer's active key."""
        try:
            att = certs.decode_attestation(data)
            b = att.block
            tip = self.chain.height
            ok = (b.chain_id == self.chain.config.chain_id
                  and tip - ATTESTATION_BEHIND_BLOCKS_MAX < b.height
                  <= tip + limits.ATTESTATION_POOL_AHEAD_BLOCKS
                  and self._sig_ok(b, att.sig))
        except (DecodeError, CrossbillError):
            ok = False
        if not ok:
            self.stats["attestations_rejected"] += 1
        return ok

    async def _on_attestation(self, peer_id: str, data: bytes) -> bytes | None:
        if self.validator(data, peer_id):
            self.add(certs.decode_attestation(data))
        return None

    def add(self, att: Attestation) -> None:
        """An attestation whose signature was checked (`validator`)."""
        b = att.block
        if b.height <= self.chain.height:
            self._merge_stored(b, (att.sig,))
        elif self.pool.add(att, self.chain.height):
            self.stats["attestations_pooled"] += 1
            self.on_attestation()

    def _stored_hash_is(self, height: int, block_hash: bytes) -> bool:
        if height == self.chain.height:
            return self.chain.tip.hash == block_hash
        return self.storage.height_of(block_hash) == height

    def stored_certificate(self, height: int) -> CommitCertificate | None:
        raw = self.storage.certificate(height)
        if raw is None:
            return None
        try:
            return certs.decode_certificate(raw)
        except DecodeError:
            log.warning("stored certificate of block %d is unreadable: replaced", height)
            return None

    def _merge_stored(self, block: AttestedBlock, sigs: Iterable[CommitSignature]) -> None:
        if not self._stored_hash_is(block.height, block.block_hash):
            return  # not the block this node holds at that height: nothing to add it to
        old = self.stored_certificate(block.height)
        if old is not None and (old.block != block
                                or len(old.signatures) >= len(self.chain.orderers())):
            return
        new = certs.merge(block, old.signatures if old is not None else (), sigs)
        if new != old:
            try:
                self.storage.put_certificate(block.height, certs.encode_certificate(new))
            except StorageUnavailable:
                return  # logged by the store; gathered again from gossip or block sync
            self.stats["certificates_stored"] += 1

    # ------------------------------------------------------------------ orderers

    async def attest(self, block: types.Block) -> None:
        """This orderer applied `block` (committed by Raft): sign and store; gossip now at a
        height multiple of ATTEST_EVERY_BLOCKS, else `run` gossips it if it stays the tip."""
        h = block.header.height
        key = self.signing_key(h)
        if key is None:
            return
        att = certs.attest(key, self.institution, self.chain.config.chain_id, h, block.hash)
        self._merge_stored(att.block, (att.sig,))
        now_ms = int(trio.current_time() * 1000)
        if certs.send_attestation_now(h, now_ms, self._last_sent_ms,
                                      every_blocks=ATTEST_EVERY_BLOCKS,
                                      interval_ms=ATTEST_INTERVAL_MS):
            self._last = None
            self._last_sent_ms = now_ms
            self._send(att)
        else:
            self._last = att
        self._applied.set()

    def _send(self, att: Attestation) -> None:
        try:
            self._outbox_send.send_nowait(certs.encode_attestation(att))
        except trio.WouldBlock:
            pass  # the followers fetch certificates by block sync

    async def _sender(self) -> None:
        async for data in self._outbox:
            connected = set(self.net.connected_peers())  # never dial a peer that is down
            for peer in [p for p in self.recipients() if p in connected]:
                try:
                    with trio.fail_after(ATTEST_SEND_TIMEOUT_S):
                        await self.net.send(peer, net.PROTO_ATTEST, data)
                    self.stats["attestations_sent"] += 1
                except (trio.TooSlowError, Exception) as exc:  # never die on a peer
                    log.debug("attestation to %s not sent: %s", peer, exc)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Send queued attestations; queue the tip's once no block followed it for
        ATTEST_IDLE_S."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sender)
            task_status.started()
            await self._idle_tips()

    async def _idle_tips(self) -> None:
        while True:
            await self._applied.wait()
            self._applied = trio.Event()
            while True:
                with trio.move_on_after(ATTEST_IDLE_S) as idle:
                    await self._applied.wait()
                if idle.cancelled_caught:
                    break
                self._applied = trio.Event()
            att, self._last = self._last, None
            if att is not None and att.block.height == self.chain.height:
                self._send(att)

    # ------------------------------------------------------------------ followers

    def served(self, height: int, encoded_block: bytes) -> bytes:
        """The certificate served with block `height` by block sync (b"" if none). An
        orderer adds its own signature when the stored certificate lacks it (a block applied
        before certificates existed, or its own write lost in a crash): it attests only
        blocks of its own chain, which it applied through Raft or with a certificate."""
        raw = self.storage.certificate(height)
        if not self.is_orderer():
            return raw or b""
        cert = self.stored_certificate(height) if raw is not None else None
        if cert is not None and any(s.signer == self.institution for s in cert.signatures):
            return raw or b""
        key = self.signing_key(height)
        if key is None:
            return raw or b""
        try:
            block_hash = types.Block.decode(encoded_block).hash
        except DecodeError:
            return raw or b""
        att = certs.attest(key, self.institution, self.chain.config.chain_id, height,
                           block_hash)
        self._merge_stored(att.block, (att.sig,))
        return self.storage.certificate(height) or b""

    def certify(self, block: types.Block, served: bytes = b""
                ) -> tuple[CommitCertificate, CertificateVerdict]:
        """The best certificate this node can assemble for `block` (at or ahead of tip+1),
        and whether it proves a majority of the ordering set at this node's tip. Valid served
        signatures are pooled, so evidence gathered from several peers adds up."""
        h = block.header.height
        b = AttestedBlock(self.chain.config.chain_id, h, block.hash)
        orderers = self.chain.orderers()
        given: tuple[CommitSignature, ...] = ()
        if served:
            try:
                cert = certs.decode_certificate(served)
            except DecodeError:
                cert = None
            if cert is not None and cert.block == b:
                given = cert.signatures
        pooled = self.pool.signatures(h, block.hash)
        if given:  # pool the served signatures it lacks (checked), so several peers add up
            tip = self.chain.height
            pooled_signers = {s.signer for s in pooled}
            valid = [s for s in given if s.signer in orderers
                     and s.signer not in pooled_signers and self._sig_ok(b, s)]
            for s in valid:
                self.pool.add(Attestation(b, s), tip)
            given = tuple(valid)
        merged = certs.merge(b, pooled, given)
        if len(merged.signatures) < certs.majority(len(orderers)):
            self.stats["blocks_uncertified"] += 1
            return merged, certs.CertificateVerdict(False, (), certs.majority(len(orderers)),
                                                    "too few signatures")
        verdict = certs.check_certificate(
            merged, chain_id=b.chain_id, height=h, block_hash=block.hash,
            orderers=orderers, key_of=self.key_lookup(h))
        if not verdict.ok:
            self.stats["blocks_uncertified"] += 1
        return merged, verdict

    def certified_height(self) -> int:
        """The highest height ahead of the tip that a majority of orderers attested."""
        return self.pool.certified_height(self.chain.orderers())

    def applied(self) -> None:
        """The tip moved: forget pooled attestations at or below it."""
        self.pool.prune(self.chain.height)
