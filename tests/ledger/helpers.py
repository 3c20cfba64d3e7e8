"""Shared test helpers: a consortium (regulator, customs, tax, three banks), keys, payloads
and a chain driver that signs transactions, cuts blocks and commits them."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

from protocol import crypto, txtypes, types
from protocol.genesis import check_config
from protocol.ledger import BlockResult, State, apply_block, initial_state

CHAIN_ID = "crossbill-test"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
DAY_MS = 86_400_000
EXPORT_DATE = "2023-11-01"  # 13 days before T0
MATURITY_MS = T0 + 60 * DAY_MS  # the default maturity of test financings
REG = "reg.safe"
CUSTOMS = "customs.qd"
TAX = "tax.qd"
BANK_A = "bank.a"
BANK_B = "bank.b"
BANK_C = "bank.c"
BANKS = (BANK_A, BANK_B, BANK_C)
ROLES = {REG: "regulator", CUSTOMS: "customs", TAX: "tax", BANK_A: "bank", BANK_B: "bank",
         BANK_C: "bank"}
EXPORTER = "91370200MA3C00001X"
EXPORTER2 = "91370200MA3C00002X"
PAYER = "91370200MA3C00003X"


_KEYS_BY_PUBLIC: dict[bytes, crypto.PrivateKey] = {}


def key_of(name: str) -> crypto.PrivateKey:
    key = crypto.PrivateKey(hashlib.sha256(b"test-key/" + name.encode()).digest())
    _KEYS_BY_PUBLIC[key.public_key] = key
    return key


def uscc(n: int) -> str:
    return f"91370200MA3C{n:05d}X"


def make_config(advance_rate_bps: int = 9000, window_ms: int = 3_600_000, **params: int
                ) -> types.ConsortiumConfig:
    insts = []
    for i, (inst_id, role) in enumerate(ROLES.items()):
        k = key_of(inst_id)
        peer_id = "12D3KooWPeer" + "x" * 39 + "abcdefghijk"[i]  # base58, like a real one
        node = types.NodeInfo(peer_id, (f"/ip4/127.0.0.1/tcp/{7000 + i}",))
        insts.append(types.Institution(inst_id, inst_id.upper(), role,
                                       (types.InstitutionKey(k.key_id, k.public_key),), node))
    config = types.ConsortiumConfig(CHAIN_ID, T0, tuple(insts), BANKS, dataclasses.replace(
        types.DEFAULT_PARAMS, advance_rate_bps=advance_rate_bps, tx_expiry_window_ms=window_ms,
        **params))
    check_config(config)
    return config


@dataclass
class Chain:
    """Drives a ledger: signs transactions, applies blocks and commits their write sets."""

    config: types.ConsortiumConfig = field(default_factory=make_config)
    state: State = field(init=False)
    time_ms: int = T0
    height: int = 0
    _nonce: int = 0
    keys: dict[str, crypto.PrivateKey] = field(default_factory=dict)
    results: list[BlockResult] = field(default_factory=list)
    blocks: list[types.Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = initial_state(self.config)

    def key(self, signer: str) -> crypto.PrivateKey:
        return self.keys.get(signer) or key_of(signer)

    def tx(self, signer: str, payload: txtypes.Payload, *, key: crypto.PrivateKey | None = None,
           nonce: bytes | None = None, expires_at_ms: int | None = None) -> types.Tx:
        if nonce is None:
            self._nonce += 1
            nonce = self._nonce.to_bytes(8, "big")
        if expires_at_ms is None:
            expires_at_ms = self.time_ms + 600_000
        return types.Tx.create(key or self.key(signer), chain_id=CHAIN_ID, signer=signer,
                               payload=payload, nonce=nonce, expires_at_ms=expires_at_ms)

    def make_block(self, txs: tuple[types.Tx, ...] | list[types.Tx], *, dt_ms: int = 1000
                   ) -> types.Block:
        proposer = key_of(BANK_A)
        header = types.BlockHeader(
            chain_id=CHAIN_ID, height=self.height + 1, prev_hash=bytes(32),
            tx_count=len(txs), tx_root=types.tx_root(list(txs)), receipts_root=bytes(32),
            state_root=bytes(32), timestamp_ms=self.time_ms + dt_ms, proposer=BANK_A,
            proposer_key_id=proposer.key_id, raft_term=1, raft_index=self.height + 1)
        return types.Block.create(proposer, header, tuple(txs))

    def apply(self, *txs: types.Tx, dt_ms: int = 1000) -> list[types.Receipt]:
        block = self.make_block(txs, dt_ms=dt_ms)
        result = apply_block(self.state, block)
        result.commit(self.state)
        self.height += 1
        self.time_ms += dt_ms
        self.results.append(result)
        self.blocks.append(block)
        return list(result.receipts)

    def one(self, signer: str, payload: txtypes.Payload, **kw: Any) -> types.Receipt:
        """Apply one transaction in its own block and return its receipt."""
        return self.apply(self.tx(signer, payload, **kw))[0]

    def ok(self, signer: str, payload: txtypes.Payload, **kw: Any) -> types.Receipt:
        receipt = self.one(signer, payload, **kw)
        assert receipt.ok, (receipt.code, receipt.message)
        return receipt

    def application_for(self, bank: str, p: txtypes.OpenFinancing, **kw: Any
                        ) -> txtypes.ApplyForFinancing:
        """The application that asks for exactly what `p` opens (a fresh application id)."""
        self._nonce += 1
        return application(f"A-{p.financing_id}-{self._nonce}", p.principal,
                           *[(x.declaration_no, x.amount) for x in p.pledges], u=p.uscc,
                           bank=bank, currency=p.currency,
                           expires_at_ms=kw.get("expires_at_ms", self.time_ms + 30 * DAY_MS))

    def finance(self, bank: str, p: txtypes.OpenFinancing, **kw: Any) -> types.Receipt:
        """The enterprise applies for exactly `p` (one block), then `bank` opens it (the next):
        the receipt of the first step that was refused, or of the opening."""
        app = self.application_for(bank, p)
        applied = self.one(p.uscc, app)
        if not applied.ok:
            return applied
        return self.one(bank, dataclasses.replace(p, application_id=app.application_id), **kw)

    def finance_ok(self, bank: str, p: txtypes.OpenFinancing, **kw: Any) -> types.Receipt:
        receipt = self.finance(bank, p, **kw)
        assert receipt.ok, (receipt.code, receipt.message)
        return receipt


# ------------------------------------------------------------------------------ payloads


def register_enterprise(u: str = EXPORTER, *, name: str = "Qingdao Exporter Co",
                        country: str = "CN", public_key: bytes = b"", bank: str = BANK_A,
                        proof: bytes | None = None) -> txtypes.RegisterEnterprise:
    """With a key made by `key_of`, the enterprise's proof for `bank` unless `proof` is
    given (docs/domain.md I-10)."""
    if proof is None:
        key = _KEYS_BY_PUBLIC.get(public_key)
        proof = (txtypes.sign_enterprise_key_proof(key, CHAIN_ID, u, bank)
                 if key is not None else b"")
    return txtypes.RegisterEnterprise(u, name, country, public_key, proof)


def declaration(no: str, value: int, *, exporter: str = EXPORTER, currency: str = "USD",
                export_date: str = EXPORT_DATE) -> txtypes.RegisterDeclaration:
    return txtypes.RegisterDeclaration(no, exporter, "Hamburg Buyer GmbH", "DE",
                                       "machine parts", value, currency, export_date)


def open_financing(fid: str, principal: int, *pledges: tuple[str, int],
                   u: str = EXPORTER, currency: str = "USD", application_id: str = "",
                   maturity_ms: int = MATURITY_MS) -> txtypes.OpenFinancing:
    return txtypes.OpenFinancing(fid, u, application_id or f"A-{fid}", principal, currency,
                                 tuple(txtypes.Pledge(no, amt) for no, amt in pledges),
                                 maturity_ms)


def application(app_id: str, principal: int, *pledges: tuple[str, int], u: str = EXPORTER,
                bank: str = BANK_A, currency: str = "USD",
                expires_at_ms: int = T0 + 30 * DAY_MS) -> txtypes.ApplyForFinancing:
    return txtypes.ApplyForFinancing(app_id, u, bank, principal, currency,
                                     tuple(txtypes.Pledge(no, amt) for no, amt in pledges),
                                     expires_at_ms)


def tax_form(no: str, amount: int, *, payer: str = PAYER, currency: str = "USD"
             ) -> txtypes.RegisterTaxForm:
    return txtypes.RegisterTaxForm(no, payer, "Consulting Ltd", "consulting", amount, currency,
                                   amount // 10)


def outbound(pid: str, form_no: str, amount: int, *, payer: str = PAYER,
             currency: str = "USD", review_id: str = "") -> txtypes.RecordOutboundPayment:
    return txtypes.RecordOutboundPayment(pid, payer, form_no, amount, currency, review_id)


def inbound(pid: str, decl_no: str, amount: int, *, financing_id: str = "",
            exporter: str = EXPORTER, currency: str = "USD") -> txtypes.RecordInboundProceeds:
    return txtypes.RecordInboundProceeds(pid, exporter, decl_no, amount, currency, financing_id)
