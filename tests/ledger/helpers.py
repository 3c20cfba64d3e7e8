"""Shared test helpers: a consortium (regulator, customs, tax, three banks), keys, payloads
and a chain driver that signs transactions, cuts blocks and commits them.

Sealed fields (ADR 0024): every party has a deterministic encryption keyring (`Chain.keyring`)
whose version 1 is the X25519 form of its signing key (what the ledger registers by default,
at genesis and when an enterprise is registered with a key); a fresh `Chain` rotates every
institution to version 2 in its first block, as the ADR advises. Payload
builders leave the sealed parts to the chain: `details` holds the plain details (or `terms`
plain `FinancingTerms`), and a consent's `file_keys` / a revocation's `file_key` is left empty;
`Chain.tx` seals them the way a client does (node.client.sealing, to
`queries.seal_recipients` in the state before the block) just before signing. A payload whose
sealed parts are already `Sealed` is signed as it is."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, TypeVar

from node.client import sealing
from node.client.sealing import FileKeys, Keyring
from protocol import crypto, limits, txtypes, types, versions
from protocol.genesis import check_config
from protocol.ledger import BlockResult, State, apply_block, initial_state, keys, queries, records
from protocol.sealed import Recipient, Sealed
from tests.sealing import ClientSealer

R = TypeVar("R")

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


def encryption_private_key(party: str, version: int) -> bytes:
    """A party's X25519 private key of a version after 1 (deterministic: failures replay);
    version 1 is derived from its signing key (`Chain.keyring`)."""
    assert version >= 2, "version 1 is the X25519 form of the party's signing key"
    return hashlib.sha256(b"test-encryption-key/%s/%d" % (party.encode(), version)).digest()


def salt(tag: str = "") -> bytes:
    return hashlib.sha256(b"test-salt/" + tag.encode()).digest()[:16]


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
    # Each party's encryption keyring (made on first use; `rotate` adds a version).
    keyrings: dict[str, Keyring] = field(default_factory=dict)
    # Block 1 registers every institution's encryption key (encryption_key.set); its
    # transactions expire with that block, so the next block prunes their nonces.
    encryption_keys: bool = True
    # The client's sealing by default; tests that compare roots across processes pass a
    # tests.sealing.DeterministicSealer.
    sealer: ClientSealer = field(default_factory=ClientSealer)
    # The highest protocol version this "binary" implements (protocol/versions.py).
    implemented: int = versions.IMPLEMENTED_VERSION

    def __post_init__(self) -> None:
        self.state = initial_state(self.config)
        if self.encryption_keys:
            receipts = self.apply(*[self.tx(inst.id, self.rotate(inst.id),
                                            expires_at_ms=self.time_ms + 1000)
                                    for inst in self.config.institutions])
            assert all(r.ok for r in receipts), [(r.code, r.message) for r in receipts]

    # ------------------------------------------------------------------ encryption keys

    def keyring(self, party: str) -> Keyring:
        """Version 1 from the party's signing key (as the ledger derives it), then whatever
        `rotate` added."""
        if party not in self.keyrings:
            self.keyrings[party] = Keyring.from_signing_key(party, self.signing_key(party))
        return self.keyrings[party]

    def signing_key(self, party: str) -> crypto.PrivateKey:
        return self.keys.get(party) or key_of(party)

    def encryption_key(self, party: str) -> txtypes.SetEncryptionKey:
        """The encryption_key.set of the party's current keyring version."""
        return txtypes.SetEncryptionKey(self.keyring(party).public_key)

    def rotate(self, party: str) -> txtypes.SetEncryptionKey:
        """A new keyring version (the old ones kept) and its encryption_key.set."""
        ring = self.keyring(party)
        ring.keys[ring.version + 1] = encryption_private_key(party, ring.version + 1)
        return self.encryption_key(party)

    def recipients(self, recorder: str, *, enterprise: str = "", credit_file: str = ""
                   ) -> tuple[Recipient, ...]:
        return queries.seal_recipients(self.state, recorder, enterprise=enterprise,
                                       credit_file=credit_file)

    def recipient(self, party: str) -> Recipient:
        key = queries.encryption_key(self.state, party)
        assert key is not None, f"{party} has no encryption key on the ledger"
        return Recipient(party, key.version, key.public_key)

    def file_keys(self, uscc: str, reader: str) -> FileKeys:
        """The credit-file keys of `uscc` wrapped to `reader`, opened with its keyring."""
        opened = FileKeys()
        opened.learn(queries.credit_file_keys(self.state, uscc), self.keyring(reader))
        return opened

    def open(self, sealed: Sealed, tx_type: str, record_id: str, party: str, *,
             credit_file: str = "") -> Any:
        """What `party` reads in a sealed field (through the credit file's keys when
        `credit_file` names one), or SealedError."""
        file_keys = self.file_keys(credit_file, party) if credit_file else None
        return sealing.open_field(sealed, tx_type, record_id, self.keyring(party), file_keys)

    # ------------------------------------------------------------------ sealing payloads

    def live_consents(self, uscc: str) -> list[str]:
        """The banks with a consent live at the next block's time (at least 1 ms ahead)."""
        return [c.bank for _, c in self.state.scan(keys.consent(uscc, ""), records.Consent)
                if c.expires_at_ms > self.time_ms + 1]

    def file_readers(self, uscc: str, banks: list[str]) -> list[Recipient]:
        """Whom a new credit-file key epoch goes to: the enterprise, the regulators, `banks`."""
        parties = [uscc, *queries.active_regulators(self.state), *banks]
        return [self.recipient(p) for p in dict.fromkeys(parties)
                if queries.encryption_key(self.state, p) is not None]

    def new_epoch(self, uscc: str, banks: list[str]) -> txtypes.FileKeyGrant:
        current = queries.credit_file_key(self.state, uscc)
        epoch = 1 if current is None else current.epoch + 1
        grant, _ = self.sealer.new_file_key_grant(uscc, epoch, self.file_readers(uscc, banks))
        return grant

    def consent_file_keys(self, uscc: str, bank: str) -> tuple[txtypes.FileKeyGrant, ...]:
        """A consent's keys: the current epoch wrapped to `bank` (the enterprise opens it with
        its own wrap), or epoch 1 when the file has no key yet."""
        current = queries.credit_file_key(self.state, uscc)
        if current is None:
            others = [b for b in self.live_consents(uscc) if b != bank]
            return (self.new_epoch(uscc, [*others, bank]),)
        epoch = self.state.get(keys.credit_file_key(uscc, current.epoch), records.CreditFileKey)
        assert epoch is not None
        private = sealing.file_private_key(epoch, self.keyring(uscc))
        return (txtypes.FileKeyGrant(epoch.epoch, epoch.public_key,
                                     (self.sealer.wrap(private, self.recipient(bank)),)),)

    def seal_payload(self, signer: str, payload: txtypes.Payload) -> txtypes.Payload:
        """Seal what the builders left plain (see the module docstring)."""
        replace = dataclasses.replace
        details = getattr(payload, "details", None)
        if details is not None and not isinstance(details, Sealed):
            if isinstance(payload, txtypes.RegisterDeclaration):
                who, rid, cf = payload.exporter, payload.declaration_no, ""
            elif isinstance(payload, txtypes.AmendDeclaration):
                decl = self.state.get(keys.declaration(payload.declaration_no),
                                      records.Declaration)
                who, rid, cf = (decl.exporter if decl else ""), payload.declaration_no, ""
            elif isinstance(payload, txtypes.RegisterTaxForm):
                who, rid, cf = payload.payer, payload.form_no, ""
            elif isinstance(payload, txtypes.RegisterPolicy):  # issue 17: insurance
                who, rid, cf = payload.exporter, payload.policy_id, ""
            else:
                assert isinstance(payload, txtypes.RecordCredit)
                who, rid, cf = payload.uscc, payload.entry_id, payload.uscc
            sealed = self.sealer.seal(details, payload.TYPE, rid, self.recipients(
                signer, enterprise=who, credit_file=cf))
            return replace(payload, details=sealed)  # type: ignore[type-var]
        if isinstance(payload, txtypes.OpenFinancing) and any(
                not isinstance(t, Sealed) for t in payload.terms):
            terms = tuple(t if isinstance(t, Sealed) else self.sealer.seal(
                t, payload.TYPE, payload.financing_id,
                self.recipients(signer, enterprise=payload.uscc)) for t in payload.terms)
            return replace(payload, terms=terms)
        if isinstance(payload, txtypes.AssignPolicy) and payload.details_key is None:
            # issue 17: insurance: the insurer wraps the details' data key to the bank
            policy = self.state.get(keys.policy(payload.policy_id), records.Policy)
            assert policy is not None, f"no policy {payload.policy_id} to assign"
            data_key = sealing.data_key_for(policy.details, self.keyring(signer))
            return replace(payload, details_key=self.sealer.wrap(
                data_key, self.recipient(payload.bank)))  # sealing.assignment_key, seeded
        if isinstance(payload, txtypes.GrantConsent) and not payload.file_keys:
            return replace(payload, file_keys=self.consent_file_keys(signer, payload.bank))
        if isinstance(payload, txtypes.RevokeConsent) and payload.file_key is None:
            remaining = [b for b in self.live_consents(signer) if b != payload.bank]
            return replace(payload, file_key=self.new_epoch(signer, remaining))
        return payload

    def key(self, signer: str) -> crypto.PrivateKey:
        return self.keys.get(signer) or key_of(signer)

    def tx(self, signer: str, payload: txtypes.Payload, *, key: crypto.PrivateKey | None = None,
           nonce: bytes | None = None, expires_at_ms: int | None = None) -> types.Tx:
        if nonce is None:
            self._nonce += 1
            nonce = self._nonce.to_bytes(8, "big")
        if expires_at_ms is None:
            expires_at_ms = self.time_ms + 600_000
        payload = self.seal_payload(signer, payload)
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
        result = apply_block(self.state, block, implemented=self.implemented)
        result.commit(self.state)
        self.height += 1
        self.time_ms += dt_ms
        self.results.append(result)
        self.blocks.append(block)
        return list(result.receipts)

    def activate(self, version: int = 2) -> int:
        """Schedule protocol `version` as early as the ledger allows and apply empty blocks
        until the next block is the first under it; returns its height."""
        height = self.height + 1 + limits.ACTIVATION_LEAD_BLOCKS_MIN
        self.ok(REG, txtypes.ActivateVersion(version, height))
        while self.height + 1 < height:
            self.apply()
        return height

    def record(self, key: bytes, cls: type[R]) -> R:
        """The stored record at `key`, which must exist."""
        found = self.state.get(key, cls)
        assert found is not None, key
        return found

    def assert_replays(self) -> None:
        """Determinism: a fresh node replaying the same blocks gets the same receipts and
        state roots, block by block."""
        other = initial_state(self.config)
        for block, result in zip(self.blocks, self.results, strict=True):
            again = apply_block(other, block)
            assert again.receipts == result.receipts and again.state_root == result.state_root
            again.commit(other)

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


def declaration_details(goods: str = "machine parts", *, buyer: str = "Hamburg Buyer GmbH",
                        destination: str = "DE") -> txtypes.DeclarationDetails:
    return txtypes.DeclarationDetails(salt(buyer + destination + goods), buyer, destination,
                                      goods)


def declaration(no: str, value: int, *, exporter: str = EXPORTER, currency: str = "USD",
                export_date: str = EXPORT_DATE, goods: str = "machine parts"
                ) -> txtypes.RegisterDeclaration:
    """`details` plain: `Chain.tx` seals it."""
    return txtypes.RegisterDeclaration(no, exporter, value, currency, export_date,
                                       declaration_details(goods))  # type: ignore[arg-type]


def amend(no: str, value: int, goods: str = "machine parts") -> txtypes.AmendDeclaration:
    """`details` plain: `Chain.tx` seals it."""
    return txtypes.AmendDeclaration(no, value, declaration_details(goods))  # type: ignore[arg-type]


def credit_entry(entry: str = "line-1", u: str = EXPORTER, *, kind: str = "credit_line",
                 amount: int = 1_000_000, currency: str = "USD", note: str = ""
                 ) -> txtypes.RecordCredit:
    """`details` plain: `Chain.tx` seals it."""
    details = txtypes.CreditDetails(salt(entry), kind, amount, currency, note)
    return txtypes.RecordCredit(u, entry, details)  # type: ignore[arg-type]


def consent(bank: str, expires_at_ms: int) -> txtypes.GrantConsent:
    """`file_keys` empty: `Chain.tx` wraps the credit-file key to the bank."""
    return txtypes.GrantConsent(bank, expires_at_ms, ())


def revoke(bank: str) -> txtypes.RevokeConsent:
    """`file_key` missing: `Chain.tx` starts the next epoch without the bank."""
    return txtypes.RevokeConsent(bank, None)  # type: ignore[arg-type]


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
    """`details` plain (tax paid: a tenth of the amount): `Chain.tx` seals it."""
    details = txtypes.TaxFormDetails(salt(no), "Consulting Ltd", "consulting", amount // 10)
    return txtypes.RegisterTaxForm(no, payer, amount, currency,
                                   details)  # type: ignore[arg-type]


def outbound(pid: str, form_no: str, amount: int, *, payer: str = PAYER,
             currency: str = "USD", review_id: str = "") -> txtypes.RecordOutboundPayment:
    return txtypes.RecordOutboundPayment(pid, payer, form_no, amount, currency, review_id)


def inbound(pid: str, decl_no: str, amount: int, *, financing_id: str = "",
            exporter: str = EXPORTER, currency: str = "USD") -> txtypes.RecordInboundProceeds:
    return txtypes.RecordInboundProceeds(pid, exporter, decl_no, amount, currency, financing_id)
