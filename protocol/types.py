"""Frozen dataclasses of everything that is signed, hashed, stored or sent.

Identity rules (ADR 0001, 0002):
- a transaction's id is ``H("tx-id", sign_bytes)``, where `sign_bytes` is the canonical
  encoding of the transaction without its signature; the signature covers
  ``"crossbill/tx-sign\\0" + sign_bytes``;
- a block's hash is ``H("block-header", encode(header))``; the proposer signs
  ``"crossbill/block-sign\\0" + hash``; the header commits to the transactions (Merkle root of
  their ids), to the receipts and to the state root after the block;
- the consortium configuration's hash is ``H("genesis", encode(config))``: the genesis hash,
  which block 1 names as its previous hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Final

from protocol import codec, crypto, limits
from protocol.codec import absent_when_none, bound, variant
from protocol.txtypes import Payload, payload_class

STATUS_OK: Final = "ok"
STATUS_REJECTED: Final = "rejected"
CODE_OK: Final = "OK"


Hash = Annotated[bytes, bound(min_len=limits.HASH_BYTES, max_len=limits.HASH_BYTES)]
KeyId = Annotated[bytes, bound(min_len=limits.KEY_ID_BYTES, max_len=limits.KEY_ID_BYTES)]
PublicKey = Annotated[bytes, bound(min_len=limits.PUBLIC_KEY_BYTES,
                                   max_len=limits.PUBLIC_KEY_BYTES)]
Signature = Annotated[bytes, bound(min_len=limits.SIGNATURE_BYTES,
                                   max_len=limits.SIGNATURE_BYTES)]
ChainId = Annotated[str, bound(min_len=1, max_len=limits.CHAIN_ID_CHARS_MAX)]
InstitutionId = Annotated[str, bound(min_len=1, max_len=limits.INSTITUTION_ID_CHARS_MAX)]
NonNegative = Annotated[int, bound(min_value=0)]


# ------------------------------------------------------------------------------ transactions


@dataclass(frozen=True)
class Tx:
    """A signed transaction envelope.

    Replay protection (ADR 0003): `nonce` is any value unique for the signer (random bytes
    suit several back-office servers sharing one key); the ledger remembers (signer, nonce)
    until `expires_at_ms`, which may lie at most the consortium's expiry window past the block
    time. No sequence numbers, so submissions never have to be serialized.
    """

    chain_id: ChainId
    type: Annotated[str, bound(min_len=1, max_len=64)]
    signer: InstitutionId
    key_id: KeyId
    nonce: Annotated[bytes, bound(min_len=limits.NONCE_BYTES_MIN,
                                        max_len=limits.NONCE_BYTES_MAX)]
    expires_at_ms: NonNegative
    payload: Annotated[Payload, variant("type", payload_class)]
    signature: Signature

    def __post_init__(self) -> None:
        if getattr(self.payload, "TYPE", None) != self.type:
            raise ValueError(
                f"payload is {type(self.payload).__name__}, not a {self.type!r} payload")

    @cached_property
    def sign_bytes(self) -> bytes:
        body = codec.to_json(self)
        del body["signature"]
        body["v"] = limits.CODEC_VERSION
        return codec.dumps_canonical(body)

    @cached_property
    def id(self) -> bytes:
        return crypto.hash_domain(crypto.DOMAIN_TX_ID, self.sign_bytes)

    @cached_property
    def encoded(self) -> bytes:
        return codec.encode(self)

    def signing_message(self) -> bytes:
        return crypto.hash_domain_prefix(crypto.DOMAIN_TX_SIGN) + self.sign_bytes

    @staticmethod
    def create(
        key: crypto.PrivateKey,
        *,
        chain_id: str,
        signer: str,
        payload: Payload,
        nonce: bytes,
        expires_at_ms: int,
    ) -> Tx:
        """Build and sign a transaction; `nonce` must be unique for this signer."""
        unsigned = Tx(chain_id, payload.TYPE, signer, key.key_id, nonce, expires_at_ms,
                      payload, b"\x00" * limits.SIGNATURE_BYTES)
        sig = key.sign(unsigned.signing_message())
        return Tx(chain_id, payload.TYPE, signer, key.key_id, nonce, expires_at_ms, payload, sig)

    @staticmethod
    def decode(data: bytes) -> Tx:
        tx = codec.decode(Tx, data, max_bytes=limits.TX_BYTES_MAX)
        _prime(tx, "encoded", bytes(data))  # canonical: the input is its encoding
        return tx

    def share_caches(self, twin: Tx) -> None:
        """Take the computed id, sign bytes and encoding of an equal transaction (one this
        node already decoded and verified), so they are not computed again."""
        if twin is self or twin != self:
            return
        for name in ("id", "sign_bytes", "encoded"):
            if name in twin.__dict__:
                _prime(self, name, twin.__dict__[name])


@dataclass(frozen=True)
class Receipt:
    """The outcome of one transaction: ``ok`` with code ``OK``, or ``rejected`` with a stable
    reason code (``DOUBLE_FINANCING`` ...). A rejected transaction stays in its block and
    changes nothing."""

    tx_id: Hash
    status: Annotated[str, bound(min_len=1, max_len=16)]
    code: Annotated[str, bound(min_len=1, max_len=64)]
    message: Annotated[str, bound(max_len=limits.TEXT_CHARS_MAX)]

    def __post_init__(self) -> None:
        if self.status not in (STATUS_OK, STATUS_REJECTED):
            raise ValueError(f"receipt status must be ok or rejected, not {self.status!r}")
        if (self.status == STATUS_OK) != (self.code == CODE_OK):
            raise ValueError("a receipt has code OK exactly when its status is ok")

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @cached_property
    def hash(self) -> bytes:
        return crypto.hash_domain(crypto.DOMAIN_RECEIPT, codec.encode(self))


def _prime(obj: object, name: str, value: object) -> None:
    """Fill a `cached_property` of a frozen dataclass with a value known to be the one it would
    compute (frozen dataclasses forbid setattr, not their cache dict)."""
    obj.__dict__[name] = value


def receipts_root(receipts: tuple[Receipt, ...] | list[Receipt]) -> bytes:
    return crypto.merkle_root([r.hash for r in receipts])


def tx_root(txs: tuple[Tx, ...] | list[Tx]) -> bytes:
    return crypto.merkle_root([tx.id for tx in txs])


# ------------------------------------------------------------------------------ blocks


@dataclass(frozen=True)
class BlockHeader:
    chain_id: ChainId
    height: Annotated[int, bound(min_value=1)]
    prev_hash: Hash
    tx_count: Annotated[int, bound(min_value=0, max_value=limits.BLOCK_TXS_MAX)]
    tx_root: Hash
    receipts_root: Hash
    state_root: Hash  # after applying this block's transactions
    timestamp_ms: NonNegative  # stamped by the proposer
    proposer: InstitutionId
    proposer_key_id: KeyId
    raft_term: NonNegative
    raft_index: NonNegative

    @cached_property
    def hash(self) -> bytes:
        return crypto.hash_domain(crypto.DOMAIN_BLOCK, codec.encode(self))


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    txs: Annotated[tuple[Tx, ...], bound(max_len=limits.BLOCK_TXS_MAX)]
    signature: Signature

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    @cached_property
    def encoded(self) -> bytes:
        return codec.encode(self)

    @staticmethod
    def signing_message(header: BlockHeader) -> bytes:
        return crypto.hash_domain_prefix(crypto.DOMAIN_BLOCK_SIGN) + header.hash

    @staticmethod
    def create(key: crypto.PrivateKey, header: BlockHeader, txs: tuple[Tx, ...]) -> Block:
        if header.proposer_key_id != key.key_id:
            raise ValueError("the header names another proposer key")
        return Block(header, txs, key.sign(Block.signing_message(header)))

    @staticmethod
    def decode(data: bytes) -> Block:
        block = codec.decode(Block, data, max_bytes=limits.BLOCK_BYTES_MAX)
        _prime(block, "encoded", bytes(data))
        return block


# ------------------------------------------------------------------------------ consortium


@dataclass(frozen=True)
class InstitutionKey:
    key_id: KeyId
    public_key: PublicKey


@dataclass(frozen=True)
class NodeInfo:
    """Where an institution's node listens: its libp2p peer id and multiaddresses."""

    peer_id: Annotated[str, bound(min_len=1, max_len=128)]
    addresses: Annotated[tuple[str, ...], bound(max_len=limits.NODE_ADDRESSES_MAX, min_len=0)]


@dataclass(frozen=True)
class Institution:
    id: InstitutionId
    name: Annotated[str, bound(min_len=1, max_len=limits.NAME_CHARS_MAX)]
    role: Annotated[str, bound(min_len=1, max_len=16)]
    keys: Annotated[tuple[InstitutionKey, ...],
                    bound(min_len=1, max_len=limits.KEYS_PER_INSTITUTION_MAX)]
    node: NodeInfo | None


@dataclass(frozen=True)
class Params:
    """Consortium parameters; each must lie inside the bounds of `protocol.limits`.

    The regulator changes the ones in `CHANGEABLE_PARAMS` with `params.set`, effective from the
    next block (docs/domain.md §2); block limits and the expiry window are fixed at genesis."""

    advance_rate_bps: Annotated[int, bound(min_value=0,
                                                 max_value=limits.ADVANCE_RATE_BPS_MAX)]
    block_txs_max: Annotated[int, bound(min_value=1, max_value=limits.BLOCK_TXS_MAX)]
    block_bytes_max: Annotated[int, bound(min_value=limits.TX_BYTES_MAX * 2,
                                                max_value=limits.BLOCK_BYTES_MAX)]
    block_interval_ms: Annotated[int, bound(min_value=limits.BLOCK_INTERVAL_MS_MIN,
                                                  max_value=limits.BLOCK_INTERVAL_MS_MAX)]
    tx_expiry_window_ms: Annotated[int, bound(
        min_value=1000, max_value=limits.TX_EXPIRY_WINDOW_MS_MAX)]
    # An approved financing not disbursed this long after opening lapses.
    financing_lapse_ms: Annotated[int, bound(min_value=limits.FINANCING_LAPSE_MS_MIN,
                                             max_value=limits.FINANCING_LAPSE_MS_MAX)]
    # A declaration exported longer ago than this is no longer financed.
    receivable_age_max_ms: Annotated[int, bound(min_value=limits.RECEIVABLE_AGE_MS_MIN,
                                                max_value=limits.RECEIVABLE_AGE_MS_MAX)]
    # The leader cuts an empty block when this long passed since the last one.
    heartbeat_interval_ms: Annotated[int, bound(min_value=limits.HEARTBEAT_INTERVAL_MS_MIN,
                                                max_value=limits.HEARTBEAT_INTERVAL_MS_MAX)]
    # The longest tenor of a financing to an FX class B exporter.
    class_b_tenor_max_ms: Annotated[int, bound(min_value=limits.CLASS_B_TENOR_MS_MIN,
                                               max_value=limits.CLASS_B_TENOR_MS_MAX)]


# Parameters the regulator may change by transaction (`params.set`), with their bounds.
CHANGEABLE_PARAMS: Final[dict[str, tuple[int, int]]] = {
    "advance_rate_bps": (0, limits.ADVANCE_RATE_BPS_MAX),
    "financing_lapse_ms": (limits.FINANCING_LAPSE_MS_MIN, limits.FINANCING_LAPSE_MS_MAX),
    "receivable_age_max_ms": (limits.RECEIVABLE_AGE_MS_MIN, limits.RECEIVABLE_AGE_MS_MAX),
    "heartbeat_interval_ms": (limits.HEARTBEAT_INTERVAL_MS_MIN,
                              limits.HEARTBEAT_INTERVAL_MS_MAX),
    "class_b_tenor_max_ms": (limits.CLASS_B_TENOR_MS_MIN, limits.CLASS_B_TENOR_MS_MAX),
}



@dataclass(frozen=True)
class ParamsV2:
    """Consortium parameters that protocol version 2 adds (protocol/versions.py). Written with
    `DEFAULT_PARAMS_V2` in the block where version 2 activates; `params.set` changes them from
    then on (`CHANGEABLE_PARAMS_V2`)."""

    # A credit-insurance policy funds at most its covered amount times this rate, across banks.
    policy_advance_rate_bps: Annotated[int, bound(min_value=0,
                                                  max_value=limits.ADVANCE_RATE_BPS_MAX)]


CHANGEABLE_PARAMS_V2: Final[dict[str, tuple[int, int]]] = {
    "policy_advance_rate_bps": (0, limits.ADVANCE_RATE_BPS_MAX),
}

_DAY_MS: Final = 24 * 60 * 60 * 1000

DEFAULT_PARAMS: Final = Params(
    advance_rate_bps=9000,
    block_txs_max=2000,
    block_bytes_max=512 * 1024,
    block_interval_ms=50,
    tx_expiry_window_ms=60 * 60 * 1000,
    financing_lapse_ms=7 * _DAY_MS,
    receivable_age_max_ms=180 * _DAY_MS,
    heartbeat_interval_ms=60 * 1000,
    class_b_tenor_max_ms=90 * _DAY_MS,
)

DEFAULT_PARAMS_V2: Final = ParamsV2(policy_advance_rate_bps=8000)


@dataclass(frozen=True)
class ConsensusTiming:
    """The timers that must fit the network's round-trip time (ADR 0030), set by the consortium
    in genesis (`ConsortiumConfig.timing`; None: `DEFAULT_TIMING`). A node's [tuning] may
    override each one locally (node/config.py); `protocol.timing` checks the rules between
    them and picks values for a round-trip time."""

    raft_tick_ms: Annotated[int, bound(min_value=limits.RAFT_TICK_MS_MIN,
                                       max_value=limits.RAFT_TICK_MS_MAX)]
    raft_election_ticks: Annotated[int, bound(min_value=limits.RAFT_ELECTION_TICKS_MIN,
                                              max_value=limits.RAFT_ELECTION_TICKS_MAX)]
    raft_heartbeat_ticks: Annotated[int, bound(min_value=limits.RAFT_HEARTBEAT_TICKS_MIN,
                                               max_value=limits.RAFT_HEARTBEAT_TICKS_MAX)]
    # The deadline of one request to a peer: forwarding transactions towards the leader,
    # asking a peer for its tip or for blocks (a block range gets twice this).
    request_timeout_ms: Annotated[int, bound(min_value=limits.REQUEST_TIMEOUT_MS_MIN,
                                             max_value=limits.REQUEST_TIMEOUT_MS_MAX)]
    # The deadline of sending one Raft message to a member.
    raft_send_timeout_ms: Annotated[int, bound(min_value=limits.RAFT_SEND_TIMEOUT_MS_MIN,
                                               max_value=limits.RAFT_SEND_TIMEOUT_MS_MAX)]
    # Catch-up: blocks per block-sync request, and how often a follower polls peers' tips.
    block_sync_batch_blocks: Annotated[int, bound(min_value=limits.BLOCK_SYNC_BATCH_BLOCKS_MIN,
                                                  max_value=limits.BLOCK_SYNC_BATCH_BLOCKS_MAX)]
    block_sync_poll_ms: Annotated[int, bound(min_value=limits.BLOCK_SYNC_POLL_MS_MIN,
                                             max_value=limits.BLOCK_SYNC_POLL_MS_MAX)]

    @property
    def election_timeout_ms(self) -> int:
        return self.raft_tick_ms * self.raft_election_ticks

    @property
    def heartbeat_ms(self) -> int:
        return self.raft_tick_ms * self.raft_heartbeat_ticks


# Today's values before timing moved into genesis (the node's former [tuning] defaults and the
# node's former constants RAFT_SEND_TIMEOUT_S and STATUS_POLL_INTERVAL_S).
DEFAULT_TIMING: Final = ConsensusTiming(
    raft_tick_ms=50,
    raft_election_ticks=20,
    raft_heartbeat_ticks=2,
    request_timeout_ms=3000,
    raft_send_timeout_ms=2000,
    block_sync_batch_blocks=64,
    block_sync_poll_ms=1000,
)


@dataclass(frozen=True)
class ConsortiumConfig:
    """Who is in the network, with which roles and keys, who orders, and the parameters.

    Loaded from the genesis file by `protocol.genesis.load_genesis`, which checks every rule.
    """

    chain_id: ChainId
    genesis_time_ms: NonNegative
    institutions: Annotated[tuple[Institution, ...],
                            bound(min_len=1, max_len=limits.INSTITUTIONS_MAX)]
    orderers: Annotated[tuple[str, ...], bound(min_len=1, max_len=limits.ORDERERS_MAX)]
    params: Params
    # Consensus timing (ADR 0030). None (the key absent from the file): `DEFAULT_TIMING`. The
    # key is left out of the encoding when None, so a genesis file written before timing
    # existed keeps its hash; a file that sets it hashes it in.
    timing: Annotated[ConsensusTiming | None, absent_when_none()] = None

    @cached_property
    def hash(self) -> bytes:
        """The genesis hash: block 1's previous hash."""
        return crypto.hash_domain(crypto.DOMAIN_GENESIS, codec.encode(self))

    @cached_property
    def _by_id(self) -> dict[str, Institution]:
        return {inst.id: inst for inst in self.institutions}

    def institution(self, institution_id: str) -> Institution | None:
        return self._by_id.get(institution_id)

    @property
    def consensus_timing(self) -> ConsensusTiming:
        """The consortium's timing: genesis's, or the defaults when genesis sets none."""
        return DEFAULT_TIMING if self.timing is None else self.timing

    # SignerRegistry, for the institutions of genesis.
    def signer_role(self, signer: str) -> str | None:
        inst = self._by_id.get(signer)
        return None if inst is None else inst.role

    def signer_public_key(self, signer: str, key_id: bytes) -> bytes | None:
        inst = self._by_id.get(signer)
        if inst is None:
            return None
        return next((k.public_key for k in inst.keys if k.key_id == key_id), None)
