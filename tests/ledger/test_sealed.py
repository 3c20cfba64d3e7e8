"""Sealed fields, encryption keys, credit-file key epochs and the audited credit read (issue 16,
ADR 0024; who may learn what: ADR 0022).

The ledger never decrypts: it checks that a sealed field is wrapped to every party the rules
name at that party's current key version, and that a credit-file key epoch reaches exactly the
readers it must. What the parties can open is checked here with their keyrings
(node.client.sealing.open_field)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from Crypto.Cipher import AES

from node.client.sealing import FileKeys, Keyring, open_field
from protocol import codec, txtypes
from protocol.ledger import codes, keys, queries, records
from protocol.sealed import (
    Recipient,
    Sealed,
    SealedError,
    WrappedKey,
    context,
    decrypt,
    default_encryption_key,
    file_party,
    plain_hash,
    unwrap,
    usable_public_key,
)
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    BANK_C,
    CUSTOMS,
    EXPORTER,
    EXPORTER2,
    PAYER,
    REG,
    T0,
    TAX,
    Chain,
    consent,
    credit_entry,
    declaration,
    declaration_details,
    encryption_private_key,
    key_of,
    open_financing,
    revoke,
    salt,
    tax_form,
)

FILE = file_party(EXPORTER)
FAR = T0 + 10**9
P = 2**255 - 19  # the field prime of Curve25519

# X25519 points of small order (libsodium's blacklist): every shared secret with them is zero.
LOW_ORDER = {
    "zero": bytes(32),
    "one": (1).to_bytes(32, "little"),
    "p - 1": (P - 1).to_bytes(32, "little"),
    "p": P.to_bytes(32, "little"),
    "p + 1": (P + 1).to_bytes(32, "little"),
    "order 8": bytes.fromhex(
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    "order 8 (other)": bytes.fromhex(
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
}


def decl_record(chain: Chain, no: str) -> records.Declaration:
    decl = chain.state.get(keys.declaration(no), records.Declaration)
    assert decl is not None
    return decl


def entry(chain: Chain, entry_id: str, u: str = EXPORTER) -> records.CreditEntry:
    found = chain.state.get(keys.credit(u, entry_id), records.CreditEntry)
    assert found is not None
    return found


def epoch_record(chain: Chain, epoch: int, u: str = EXPORTER) -> records.CreditFileKey:
    found = chain.state.get(keys.credit_file_key(u, epoch), records.CreditFileKey)
    assert found is not None
    return found


def sealed_to(chain: Chain, details: object, tx_type: str, record_id: str,
              *recipients: Recipient) -> Sealed:
    return chain.sealer.seal(details, tx_type, record_id, recipients)


def old_recipient(chain: Chain, party: str, version: int) -> Recipient:
    """A party's key of an earlier version (what a stale client would seal to): version 1 is
    the X25519 form of its signing key."""
    if version == 1:
        return Recipient(party, 1, Keyring.from_signing_key(
            party, chain.signing_key(party)).public_key)
    return Recipient(party, version, Keyring(party, {version: encryption_private_key(
        party, version)}).public_key)


# ------------------------------------------------------------------------------ encryption keys


def test_encryption_key_versions_count_from_the_signing_keys_form(trade: Chain) -> None:
    # Genesis gives every institution version 1: the X25519 form of its signing key.
    fresh = Chain(encryption_keys=False)
    ekey = queries.encryption_key(fresh.state, BANK_A)
    assert ekey is not None and (ekey.owner, ekey.version, ekey.height) == (BANK_A, 1, 0)
    assert ekey.public_key == default_encryption_key(key_of(BANK_A).public_key) == \
        fresh.keyring(BANK_A).public_key
    # The fixture rotated every institution to version 2; a rotation counts on.
    ekey = queries.encryption_key(trade.state, BANK_A)
    assert ekey is not None and ekey.version == 2
    trade.ok(BANK_A, trade.rotate(BANK_A))
    ekey = queries.encryption_key(trade.state, BANK_A)
    assert ekey is not None and ekey.version == 3
    assert ekey.public_key == trade.keyring(BANK_A).public_key != \
        old_recipient(trade, BANK_A, 2).public_key
    assert ekey.height == trade.height
    # Enterprises too: registered with a key, version 1 is its form; the fixture rotated
    # EXPORTER to version 2. PAYER, registered without a key, holds none.
    assert queries.encryption_key(trade.state, EXPORTER).version == 2  # type: ignore[union-attr]
    trade.ok(EXPORTER, trade.rotate(EXPORTER))
    assert queries.encryption_key(trade.state, EXPORTER).version == 3  # type: ignore[union-attr]
    assert queries.encryption_key(trade.state, PAYER) is None


def test_the_same_encryption_key_twice_is_refused(trade: Chain) -> None:
    again = trade.one(CUSTOMS, trade.encryption_key(CUSTOMS))
    assert again.code == codes.KEY_EXISTS
    trade.ok(CUSTOMS, trade.rotate(CUSTOMS))
    assert queries.encryption_key(trade.state, CUSTOMS).version == 3  # type: ignore[union-attr]
    # Going back to an earlier key is a new version, not a repeat of the current one.
    trade.ok(CUSTOMS, txtypes.SetEncryptionKey(old_recipient(trade, CUSTOMS, 1).public_key))
    assert queries.encryption_key(trade.state, CUSTOMS).version == 4  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(LOW_ORDER))
def test_a_low_order_encryption_key_is_refused(trade: Chain, name: str) -> None:
    point = LOW_ORDER[name]
    assert not usable_public_key(point)
    receipt = trade.one(BANK_B, txtypes.SetEncryptionKey(point))
    assert receipt.code == codes.BAD_ENCRYPTION_KEY
    assert queries.encryption_key(trade.state, BANK_B).version == 2  # type: ignore[union-attr]


def test_encryption_key_set_needs_a_known_signer(trade: Chain) -> None:
    receipt = trade.one("bank.zz", trade.encryption_key("bank.zz"), key=key_of("bank.zz"))
    assert receipt.code == codes.UNKNOWN_SIGNER


# ------------------------------------------------------------------------------ sealing rules


def test_a_declaration_must_be_sealed_to_the_regulator_and_a_keyed_exporter(
        trade: Chain) -> None:
    details = declaration_details()
    customs, reg, exporter = (trade.recipient(p) for p in (CUSTOMS, REG, EXPORTER))
    cases = {
        "not to the regulator": (customs, exporter),
        "not to customs itself": (reg, exporter),
        "not to the exporter, which holds a key": (customs, reg),
        "to the exporter twice": (customs, reg, exporter, exporter),
        "to the exporter's version 3, which it does not have": (
            customs, reg, dataclasses.replace(exporter, key_version=3)),
    }
    for why, recipients in cases.items():
        payload = dataclasses.replace(declaration("D-NEW", 10), details=sealed_to(
            trade, details, "declaration.register", "D-NEW", *recipients))
        receipt = trade.one(CUSTOMS, payload)
        assert receipt.code == codes.SEALED_PARTIES, why
    assert trade.state.get(keys.declaration("D-NEW"), records.Declaration) is None
    # The same sealed to all three is accepted; so is one more party the recorder chooses.
    payload = dataclasses.replace(declaration("D-NEW", 10), details=sealed_to(
        trade, details, "declaration.register", "D-NEW", customs, reg, exporter))
    trade.ok(CUSTOMS, payload)
    assert set(decl_record(trade, "D-NEW").details.parties) == {CUSTOMS, REG, EXPORTER}


def test_an_enterprise_without_an_encryption_key_need_not_be_a_recipient(
        trade: Chain) -> None:
    # PAYER holds no encryption key: the fixture's T-1 is sealed to the tax bureau and the
    # regulator only, and accepted.
    form = trade.state.get(keys.tax_form("T-1"), records.TaxForm)
    assert form is not None and set(form.details.parties) == {TAX, REG}
    # A declaration of an exporter that registered no key: customs and the regulator suffice.
    trade.ok(BANK_A, txtypes.RegisterEnterprise("91370200MA3C00077X", "Keyless Co", "CN",
                                                b"", b""))
    trade.ok(CUSTOMS, declaration("D-K", 10, exporter="91370200MA3C00077X"))
    assert set(decl_record(trade, "D-K").details.parties) == {CUSTOMS, REG}
    # Once the enterprise holds a key, it must be a recipient.
    ek = key_of("keyed-later")
    trade.ok(REG, txtypes.RekeyEnterprise(EXPORTER2, ek.public_key))
    trade.ok(EXPORTER2, trade.rotate(EXPORTER2), key=ek)
    stale = sealed_to(trade, declaration_details(), "declaration.register", "D-X2",
                      trade.recipient(CUSTOMS), trade.recipient(REG),
                      old_recipient(trade, EXPORTER2, 2))
    assert trade.one(CUSTOMS, dataclasses.replace(
        declaration("D-X2", 10, exporter=EXPORTER2), details=stale)).code == \
        codes.SEALED_PARTIES


def test_a_tax_form_and_an_amendment_follow_the_same_rules(trade: Chain) -> None:
    # tax form to the tax bureau only
    details = txtypes.TaxFormDetails(salt("T-9"), "Payee Ltd", "design", 7)
    only_tax = sealed_to(trade, details, "taxform.register", "T-9", trade.recipient(TAX))
    assert trade.one(TAX, dataclasses.replace(tax_form("T-9", 70), details=only_tax)).code \
        == codes.SEALED_PARTIES
    # an amendment that leaves the exporter out
    amended = sealed_to(trade, declaration_details("more"), "declaration.amend", "D-1",
                        trade.recipient(CUSTOMS), trade.recipient(REG))
    assert trade.one(CUSTOMS, txtypes.AmendDeclaration("D-1", 1, amended)).code == \
        codes.SEALED_PARTIES
    assert decl_record(trade, "D-1").status == "registered"


def test_sealed_to_an_old_key_version_after_rotation_is_refused(trade: Chain) -> None:
    trade.ok(CUSTOMS, trade.rotate(CUSTOMS))
    stale = sealed_to(trade, declaration_details(), "declaration.register", "D-NEW",
                      old_recipient(trade, CUSTOMS, 2), trade.recipient(REG),
                      trade.recipient(EXPORTER))
    receipt = trade.one(CUSTOMS, dataclasses.replace(declaration("D-NEW", 10), details=stale))
    assert receipt.code == codes.SEALED_PARTIES
    assert "customs.qd (key version 3)" in receipt.message


def test_a_record_is_refused_while_a_regulator_has_no_encryption_key() -> None:
    """Genesis and admission give every institution a key, so no transaction makes this
    state; the rule still guards it (here the records are removed by hand)."""
    chain = Chain(encryption_keys=False)
    for party in (REG, TAX):
        chain.state.delete(keys.encryption_key(party))
    only_customs = sealed_to(chain, declaration_details(), "declaration.register", "D-1",
                             chain.recipient(CUSTOMS))
    receipt = chain.one(CUSTOMS, dataclasses.replace(declaration("D-1", 10),
                                                     details=only_customs))
    assert receipt.code == codes.NO_ENCRYPTION_KEY and REG in receipt.message
    # The recorder needs a key of its own too.
    chain.ok(REG, chain.encryption_key(REG))
    details = txtypes.TaxFormDetails(salt("T-1"), "Payee", "consulting", 1)
    receipt = chain.one(TAX, dataclasses.replace(tax_form("T-1", 10), details=sealed_to(
        chain, details, "taxform.register", "T-1", chain.recipient(REG))))
    assert receipt.code == codes.NO_ENCRYPTION_KEY and TAX in receipt.message
    chain.ok(CUSTOMS, declaration("D-1", 10))  # now both hold keys


def test_every_active_regulator_is_a_recipient(trade: Chain) -> None:
    reg2 = "reg.second"
    trade.ok(REG, txtypes.AdmitInstitution(reg2, "Second Regulator", "regulator",
                                           key_of(reg2).public_key))
    # Admission gives it version 1 (its signing key's form): records must be sealed to it.
    assert queries.encryption_key(trade.state, reg2).version == 1  # type: ignore[union-attr]
    without = sealed_to(trade, declaration_details(), "declaration.register", "D-NEW",
                        *(trade.recipient(p) for p in (CUSTOMS, REG, EXPORTER)))
    assert trade.one(CUSTOMS, dataclasses.replace(declaration("D-NEW", 10),
                                                  details=without)).code == \
        codes.SEALED_PARTIES
    trade.ok(CUSTOMS, declaration("D-NEW", 10))
    assert reg2 in decl_record(trade, "D-NEW").details.parties
    assert trade.open(decl_record(trade, "D-NEW").details, "declaration.register", "D-NEW",
                      reg2).goods == "machine parts"
    # A suspended regulator is no longer owed a copy.
    trade.ok(REG, txtypes.SuspendInstitution(reg2, "audit"))
    assert reg2 not in {r.party for r in trade.recipients(CUSTOMS, enterprise=EXPORTER)}
    trade.ok(CUSTOMS, declaration("D-NEW2", 10))
    assert reg2 not in decl_record(trade, "D-NEW2").details.parties


def test_after_rotation_new_records_use_the_new_key_and_old_ones_still_open(
        trade: Chain) -> None:
    old = decl_record(trade, "D-1").details
    assert old.wrapped_for(CUSTOMS).key_version == 2  # type: ignore[union-attr]
    trade.ok(CUSTOMS, trade.rotate(CUSTOMS))
    trade.ok(CUSTOMS, declaration("D-NEW", 10, goods="valves"))
    new = decl_record(trade, "D-NEW").details
    assert new.wrapped_for(CUSTOMS).key_version == 3  # type: ignore[union-attr]
    # The keyring keeps every version: both open.
    assert trade.open(old, "declaration.register", "D-1", CUSTOMS).goods == "machine parts"
    assert trade.open(new, "declaration.register", "D-NEW", CUSTOMS).goods == "valves"
    # A keyring that lost version 2 reads only the new record.
    only_v3 = Keyring(CUSTOMS, {3: encryption_private_key(CUSTOMS, 3)})
    assert open_field(new, "declaration.register", "D-NEW", only_v3).goods == "valves"
    with pytest.raises(SealedError):
        open_field(old, "declaration.register", "D-1", only_v3)


def test_the_parties_open_a_declaration_and_others_do_not(trade: Chain) -> None:
    sealed = decl_record(trade, "D-1").details
    for party in (CUSTOMS, REG, EXPORTER):
        details = trade.open(sealed, "declaration.register", "D-1", party)
        assert (details.buyer, details.destination, details.goods) == (
            "Hamburg Buyer GmbH", "DE", "machine parts")
    for outsider in (BANK_A, TAX, EXPORTER2):
        with pytest.raises(SealedError):
            trade.open(sealed, "declaration.register", "D-1", outsider)
    # An amendment's details are bound to the record (its kind and id), not to the
    # transaction that wrote them: a reader opens the current details either way.
    trade.ok(CUSTOMS, txtypes.AmendDeclaration("D-1", 120_000, declaration_details("more")))
    amended = decl_record(trade, "D-1").details
    assert trade.open(amended, "declaration.amend", "D-1", EXPORTER).goods == "more"
    assert trade.open(amended, "declaration.register", "D-1", EXPORTER).goods == "more"


def test_financing_terms_are_sealed_to_the_bank_the_regulator_and_the_enterprise(
        trade: Chain) -> None:
    terms = txtypes.FinancingTerms(salt("F-1"), 450, 2_500, "working capital", "REF-1")
    p = dataclasses.replace(open_financing("F-1", 100, ("D-1", 100)), terms=(terms,))
    trade.finance_ok(BANK_A, p)
    fin = trade.state.get(keys.financing("F-1"), records.Financing)
    assert fin is not None and len(fin.terms) == 1
    for party in (BANK_A, REG, EXPORTER):
        assert trade.open(fin.terms[0], "financing.open", "F-1", party) == terms
    with pytest.raises(SealedError):
        trade.open(fin.terms[0], "financing.open", "F-1", BANK_B)
    # Terms the enterprise cannot read are refused; no terms at all stay allowed.
    without_enterprise = sealed_to(trade, terms, "financing.open", "F-2",
                                   trade.recipient(BANK_A), trade.recipient(REG))
    refused = trade.finance(BANK_A, dataclasses.replace(
        open_financing("F-2", 100, ("D-2", 100)), terms=(without_enterprise,)))
    assert refused.code == codes.SEALED_PARTIES
    trade.finance_ok(BANK_A, open_financing("F-3", 100, ("D-2", 100)))


# ------------------------------------------------------------------------------ credit file


def test_credit_file_epochs_follow_consent_and_revocation(trade: Chain) -> None:
    # Before any consent the file has no key: entries go to the bank, regulator, enterprise.
    trade.ok(BANK_A, credit_entry("E-0", note="before any consent"))
    assert queries.credit_file_key(trade.state, EXPORTER) is None
    assert set(entry(trade, "E-0").details.parties) == {BANK_A, REG, EXPORTER}

    # A first consent starts epoch 1, wrapped to the enterprise, the regulator and the bank.
    trade.ok(EXPORTER, consent(BANK_B, FAR))
    epoch1 = epoch_record(trade, 1)
    assert {w.party for w in epoch1.keys} == {EXPORTER, REG, BANK_B}
    assert queries.credit_file_key(trade.state, EXPORTER).epoch == 1  # type: ignore[union-attr]
    trade.ok(BANK_A, credit_entry("E-1", kind="overdue", amount=500, note="late"))
    e1 = entry(trade, "E-1").details
    assert e1.wrapped_for(FILE).key_version == 1  # type: ignore[union-attr]
    assert BANK_B not in e1.parties
    got = trade.open(e1, "credit.record", "E-1", BANK_B, credit_file=EXPORTER)
    assert (got.kind, got.amount, got.currency, got.note) == ("overdue", 500, "USD", "late")
    # ...through the file key only: without it the bank is no party to the entry.
    with pytest.raises(SealedError):
        trade.open(e1, "credit.record", "E-1", BANK_B)

    # A second consent extends epoch 1 to bank.c.
    trade.ok(EXPORTER, consent(BANK_C, FAR))
    assert {w.party for w in epoch_record(trade, 1).keys} == {EXPORTER, REG, BANK_B, BANK_C}
    assert trade.open(e1, "credit.record", "E-1", BANK_C, credit_file=EXPORTER).amount == 500

    # Revoking bank.b starts epoch 2 without it.
    trade.ok(EXPORTER, revoke(BANK_B))
    assert {w.party for w in epoch_record(trade, 2).keys} == {EXPORTER, REG, BANK_C}
    trade.ok(BANK_A, credit_entry("E-2", amount=700, note="after revocation"))
    e2 = entry(trade, "E-2").details
    assert e2.wrapped_for(FILE).key_version == 2  # type: ignore[union-attr]
    with pytest.raises(SealedError):
        trade.open(e2, "credit.record", "E-2", BANK_B, credit_file=EXPORTER)
    for reader in (REG, BANK_C, EXPORTER, BANK_A):
        assert trade.open(e2, "credit.record", "E-2", reader,
                          credit_file=EXPORTER).note == "after revocation"
    # The credit-file query hands a consented reader every epoch; it opens those wrapped to it.
    read = queries.read_credit_file(trade.state, EXPORTER, BANK_C)
    assert [k.epoch for k in read.file_keys] == [1, 2]
    opened = FileKeys()
    opened.learn(read.file_keys, trade.keyring(BANK_C))
    assert sorted(opened.opened) == [(EXPORTER, 1), (EXPORTER, 2)]
    assert [e.entry_id for e in read.entries] == ["E-0", "E-1", "E-2"]
    assert [open_field(e.details, "credit.record", e.entry_id, trade.keyring(BANK_C),
                       opened).amount for e in read.entries[1:]] == [500, 700]
    with pytest.raises(SealedError):  # E-0 predates the file key: not sealed to it
        open_field(read.entries[0].details, "credit.record", "E-0", trade.keyring(BANK_C),
                   opened)
    # What bank.b was given stays readable to it (disclosure cannot be taken back).
    assert trade.open(e1, "credit.record", "E-1", BANK_B, credit_file=EXPORTER).amount == 500

    # An entry sealed to the superseded epoch is refused.
    stale = Recipient(FILE, 1, epoch1.public_key)
    details = txtypes.CreditDetails(salt("E-3"), "overdue", 1, "USD", "")
    sealed = sealed_to(trade, details, "credit.record", "E-3", trade.recipient(BANK_A),
                       trade.recipient(REG), trade.recipient(EXPORTER), stale)
    receipt = trade.one(BANK_A, txtypes.RecordCredit(EXPORTER, "E-3", sealed))
    assert receipt.code == codes.SEALED_PARTIES and f"{FILE} (key version 2)" in receipt.message


def test_a_bank_reads_older_epochs_only_if_the_consent_discloses_them(trade: Chain) -> None:
    trade.ok(EXPORTER, consent(BANK_B, FAR))
    trade.ok(BANK_A, credit_entry("E-1"))
    trade.ok(EXPORTER, revoke(BANK_B))  # epoch 2, to nobody but the enterprise and regulator
    trade.ok(BANK_A, credit_entry("E-2"))
    # bank.c's consent wraps epoch 2 only: E-1 (epoch 1) stays closed to it.
    trade.ok(EXPORTER, consent(BANK_C, FAR))
    with pytest.raises(SealedError):
        trade.open(entry(trade, "E-1").details, "credit.record", "E-1", BANK_C,
                   credit_file=EXPORTER)
    assert trade.open(entry(trade, "E-2").details, "credit.record", "E-2", BANK_C,
                      credit_file=EXPORTER).amount == 1_000_000
    # A consent that also discloses epoch 1 opens it.
    ring = trade.keyring(EXPORTER)
    private1 = FileKeys()
    private1.learn([epoch_record(trade, 1)], ring)
    grant1 = txtypes.FileKeyGrant(1, epoch_record(trade, 1).public_key, (trade.sealer.wrap(
        private1.opened[(EXPORTER, 1)], trade.recipient(BANK_C)),))
    current = trade.seal_payload(EXPORTER, consent(BANK_C, FAR))
    assert isinstance(current, txtypes.GrantConsent)
    trade.ok(EXPORTER, dataclasses.replace(current, file_keys=(grant1, *current.file_keys)))
    assert trade.open(entry(trade, "E-1").details, "credit.record", "E-1", BANK_C,
                      credit_file=EXPORTER).amount == 1_000_000


def test_file_key_grants_that_break_the_rules_are_refused(trade: Chain) -> None:
    def new_epoch(epoch: int, *parties: str) -> txtypes.FileKeyGrant:
        grant, _ = trade.sealer.new_file_key_grant(
            EXPORTER, epoch, [trade.recipient(p) for p in parties])
        return grant

    def grant(bank: str, *file_keys: txtypes.FileKeyGrant) -> txtypes.GrantConsent:
        return txtypes.GrantConsent(bank, FAR, file_keys)

    bad_first = {
        "skips epoch 1": grant(BANK_B, new_epoch(2, EXPORTER, REG, BANK_B)),
        "wrapped to another bank": grant(BANK_B, new_epoch(1, EXPORTER, REG, BANK_C)),
        "also wrapped to a bank without consent": grant(
            BANK_B, new_epoch(1, EXPORTER, REG, BANK_B, BANK_C)),
        "not wrapped to the regulator": grant(BANK_B, new_epoch(1, EXPORTER, BANK_B)),
        "not wrapped to the enterprise": grant(BANK_B, new_epoch(1, REG, BANK_B)),
        "one epoch twice": grant(BANK_B, new_epoch(1, EXPORTER, REG, BANK_B),
                                 new_epoch(1, EXPORTER, REG, BANK_B)),
    }
    for why, payload in bad_first.items():
        assert trade.one(EXPORTER, payload).code == codes.BAD_FILE_KEY, why
    assert queries.credit_file_key(trade.state, EXPORTER) is None
    trade.ok(EXPORTER, grant(BANK_B, new_epoch(1, EXPORTER, REG, BANK_B)))

    # Epoch 1 exists: a consent for bank.c extends it (to bank.c only, with its key) or starts
    # epoch 2 for every live reader.
    e1 = epoch_record(trade, 1)
    wrap_c = trade.sealer.wrap(b"\x01" * 32, trade.recipient(BANK_C))
    bad_next = {
        "skips epoch 2": grant(BANK_C, new_epoch(3, EXPORTER, REG, BANK_B, BANK_C)),
        "extends epoch 1 to another bank": grant(BANK_C, txtypes.FileKeyGrant(
            1, e1.public_key, (trade.sealer.wrap(b"\x01" * 32, trade.recipient(BANK_A)),))),
        "extends epoch 1 under another key": grant(BANK_C, txtypes.FileKeyGrant(
            1, trade.keyring("x").public_key, (wrap_c,))),
        "extends epoch 1 to a key version bank.c does not have": grant(
            BANK_C, txtypes.FileKeyGrant(1, e1.public_key,
                                         (dataclasses.replace(wrap_c, key_version=3),))),
        "starts epoch 2 under epoch 1's key": grant(BANK_C, txtypes.FileKeyGrant(
            2, e1.public_key, new_epoch(2, EXPORTER, REG, BANK_B, BANK_C).keys)),
        "epoch 2 leaves out bank.b, which holds consent": grant(
            BANK_C, new_epoch(2, EXPORTER, REG, BANK_C)),
    }
    for why, payload in bad_next.items():
        assert trade.one(EXPORTER, payload).code == codes.BAD_FILE_KEY, why
    trade.ok(EXPORTER, grant(BANK_C, new_epoch(2, EXPORTER, REG, BANK_B, BANK_C)))
    assert queries.credit_file_key(trade.state, EXPORTER).epoch == 2  # type: ignore[union-attr]

    # A revocation must start the next epoch, without the revoked bank.
    bad_revoke = {
        "keeps bank.b": new_epoch(3, EXPORTER, REG, BANK_B, BANK_C),
        "drops bank.c too": new_epoch(3, EXPORTER, REG),
        "reuses epoch 2": new_epoch(2, EXPORTER, REG, BANK_C),
        "reuses epoch 2's key": txtypes.FileKeyGrant(
            3, epoch_record(trade, 2).public_key, new_epoch(3, EXPORTER, REG, BANK_C).keys),
    }
    for why, file_key in bad_revoke.items():
        receipt = trade.one(EXPORTER, txtypes.RevokeConsent(BANK_B, file_key))
        assert receipt.code == codes.BAD_FILE_KEY, why
    assert trade.state.get(keys.consent(EXPORTER, BANK_B), records.Consent) is not None
    trade.ok(EXPORTER, txtypes.RevokeConsent(BANK_B, new_epoch(3, EXPORTER, REG, BANK_C)))


def test_a_consent_needs_the_enterprises_and_the_banks_encryption_keys() -> None:
    chain = Chain(encryption_keys=False)
    ek = key_of("exporter")
    chain.keys[EXPORTER] = ek
    chain.ok(BANK_A, txtypes.RegisterEnterprise(
        EXPORTER, "Exporter", "CN", ek.public_key,
        txtypes.sign_enterprise_key_proof(ek, chain.config.chain_id, EXPORTER, BANK_A)))
    # Registration gave the exporter (and genesis every bank) a key; without them, as on a
    # state no transaction makes (records removed by hand), the rule still guards.
    for party in (EXPORTER, BANK_C):
        chain.state.delete(keys.encryption_key(party))
    refused = chain.one(EXPORTER, txtypes.GrantConsent(BANK_B, FAR, (
        chain.sealer.new_file_key_grant(EXPORTER, 1, [chain.recipient(REG),
                                                      chain.recipient(BANK_B)])[0],)))
    assert refused.code == codes.NO_ENCRYPTION_KEY and EXPORTER in refused.message
    chain.ok(EXPORTER, chain.encryption_key(EXPORTER))
    chain.ok(EXPORTER, consent(BANK_B, FAR))
    # bank.c has no key: the epoch cannot be extended to it.
    refused = chain.one(EXPORTER, txtypes.GrantConsent(BANK_C, FAR, (txtypes.FileKeyGrant(
        1, epoch_record(chain, 1).public_key,
        (WrappedKey(BANK_C, 1, b"\x00" * 80),)),)))
    assert refused.code == codes.NO_ENCRYPTION_KEY and BANK_C in refused.message


# ------------------------------------------------------------------------------ credit.read


def test_credit_read_needs_a_live_consent(trade: Chain) -> None:
    read = txtypes.ReadCredit(EXPORTER, "credit review")
    assert trade.one(BANK_B, read).code == codes.NO_CONSENT
    assert trade.one(CUSTOMS, read).code == codes.ROLE_FORBIDDEN
    assert trade.one(BANK_B, txtypes.ReadCredit("91370200MA3C00099X", "x")).code == \
        codes.UNKNOWN_ENTERPRISE
    expiry = trade.time_ms + 1500  # live in the next block (t + 1000), expired in the one after
    trade.ok(EXPORTER, consent(BANK_B, expiry))
    receipt = trade.one(BANK_B, read)
    assert receipt.code == codes.CONSENT_EXPIRED
    assert trade.state.scan(keys.CREDIT_READ, records.CreditRead) == []
    trade.ok(EXPORTER, consent(BANK_B, FAR))
    receipt = trade.ok(BANK_B, read)
    reads = queries.credit_reads(trade.state).reads
    assert reads == (records.CreditRead(
        uscc=EXPORTER, reader=BANK_B, purpose="credit review", consent_expires_at_ms=FAR,
        height=trade.height, tx_index=0, tx_id=receipt.tx_id),)
    # A revoked consent reads nothing more.
    trade.ok(EXPORTER, revoke(BANK_B))
    assert trade.one(BANK_B, read).code == codes.NO_CONSENT


def test_the_regulator_reads_without_consent_and_is_recorded(trade: Chain) -> None:
    receipt = trade.ok(REG, txtypes.ReadCredit(EXPORTER, "supervision"))
    (read,) = queries.credit_reads(trade.state, reader=REG).reads
    assert (read.uscc, read.reader, read.purpose, read.consent_expires_at_ms, read.tx_id) == (
        EXPORTER, REG, "supervision", 0, receipt.tx_id)
    history = queries.enterprise_view(trade.state, EXPORTER, REG).history
    assert history[-1].tx_type == "credit.read"


def test_credit_reads_page_in_ledger_order_and_filter(trade: Chain) -> None:
    trade.ok(EXPORTER, consent(BANK_B, FAR))
    trade.ok(EXPORTER2, consent(BANK_B, FAR))
    trade.apply(trade.tx(BANK_B, txtypes.ReadCredit(EXPORTER, "r1")),
                trade.tx(REG, txtypes.ReadCredit(EXPORTER2, "r2")),
                trade.tx(BANK_B, txtypes.ReadCredit(EXPORTER2, "r3")))
    trade.ok(REG, txtypes.ReadCredit(EXPORTER, "r4"))
    trade.ok(BANK_B, txtypes.ReadCredit(EXPORTER, "r5"))
    every = queries.credit_reads(trade.state)
    assert [r.purpose for r in every.reads] == ["r1", "r2", "r3", "r4", "r5"]
    assert (every.next_from_height, every.next_from_index) == (0, 0)
    h = every.reads[0].height
    assert [(r.height, r.tx_index) for r in every.reads] == [
        (h, 0), (h, 1), (h, 2), (h + 1, 0), (h + 2, 0)]
    # Pages of two: each names where the next starts, inside a block too.
    pages, cursor = [], (0, 0)
    while True:
        page = queries.credit_reads(trade.state, from_height=cursor[0], from_index=cursor[1],
                                    limit=2)
        pages.append([r.purpose for r in page.reads])
        if page.next_from_height == 0:
            break
        cursor = (page.next_from_height, page.next_from_index)
    assert pages == [["r1", "r2"], ["r3", "r4"], ["r5"]]
    assert [r.purpose for r in queries.credit_reads(trade.state, from_height=h,
                                                    from_index=1).reads] == \
        ["r2", "r3", "r4", "r5"]
    assert [r.purpose for r in queries.credit_reads(trade.state, uscc=EXPORTER).reads] == \
        ["r1", "r4", "r5"]
    assert [r.purpose for r in queries.credit_reads(trade.state, reader=BANK_B).reads] == \
        ["r1", "r3", "r5"]
    assert [r.purpose for r in queries.credit_reads(trade.state, uscc=EXPORTER2,
                                                    reader=REG).reads] == ["r2"]
    assert queries.credit_reads(trade.state, from_height=h + 3).reads == ()


def test_credit_reads_take_any_cursor(trade: Chain) -> None:
    """A cursor from a caller may be anything: out of the key's range it pages on or ends
    the list, it never raises (it used to raise OverflowError)."""
    trade.ok(REG, txtypes.ReadCredit(EXPORTER, "r1"))
    trade.ok(REG, txtypes.ReadCredit(EXPORTER, "r2"))
    h = queries.credit_reads(trade.state).reads[0].height
    assert [r.purpose for r in queries.credit_reads(trade.state, from_height=h,
                                                    from_index=2**32).reads] == ["r2"]
    for height, index in [(2**64, 0), (2**64 - 1, 2**32), (10**30, 10**30)]:
        page = queries.credit_reads(trade.state, from_height=height, from_index=index)
        assert page == queries.CreditReads((), 0, 0)
    assert [r.purpose for r in queries.credit_reads(trade.state, from_height=-1,
                                                    from_index=-1, limit=0).reads] == ["r1"]


# ------------------------------------------------------------------------------ opening


def _flip(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


def test_tampered_ciphertext_or_wrapped_key_raises_sealed_error_only(trade: Chain) -> None:
    sealed = decl_record(trade, "D-1").details
    open_ = lambda s: trade.open(s, "declaration.register", "D-1", CUSTOMS)  # noqa: E731
    assert open_(sealed).goods == "machine parts"
    variants: list[Sealed] = []
    variants += [dataclasses.replace(sealed, ciphertext=_flip(sealed.ciphertext, i))
                 for i in range(len(sealed.ciphertext))]
    variants += [dataclasses.replace(sealed, nonce=_flip(sealed.nonce, i))
                 for i in range(len(sealed.nonce))]
    mine = next(i for i, w in enumerate(sealed.keys) if w.party == CUSTOMS)
    for i in range(len(sealed.keys[mine].box)):
        wraps = list(sealed.keys)
        wraps[mine] = dataclasses.replace(wraps[mine], box=_flip(wraps[mine].box, i))
        variants.append(dataclasses.replace(sealed, keys=tuple(wraps)))
    variants += [
        dataclasses.replace(sealed, plain_hash=_flip(sealed.plain_hash, 0)),
        dataclasses.replace(sealed, ciphertext=sealed.ciphertext[:16]),
        dataclasses.replace(sealed, ciphertext=sealed.ciphertext[1:]),
        # another party's wrap relabelled as customs'
        dataclasses.replace(sealed, keys=tuple(
            dataclasses.replace(w, party=CUSTOMS) if w.party == REG else w
            for w in sealed.keys if w.party != CUSTOMS)),
    ]
    for variant in variants:
        with pytest.raises(SealedError):
            open_(variant)
    # Moved to another record, or read as another kind of record: the context does not match.
    with pytest.raises(SealedError):
        trade.open(sealed, "declaration.register", "D-2", CUSTOMS)
    with pytest.raises(SealedError):
        open_field(sealed, "taxform.register", "D-1", trade.keyring(CUSTOMS))
    # Garbage keys and wrong-size keys: SealedError too.
    with pytest.raises(SealedError):
        unwrap(sealed.keys[mine], b"\x01" * 31)
    with pytest.raises(SealedError):
        decrypt(sealed, b"\x00" * 32, context("declaration", "D-1"),
                txtypes.DeclarationDetails)
    with pytest.raises(SealedError):
        decrypt(sealed, b"\x00" * 16, context("declaration", "D-1"),
                txtypes.DeclarationDetails)


def test_a_sealed_plain_text_of_the_wrong_shape_raises_sealed_error(trade: Chain) -> None:
    # A recorder seals a CreditDetails where a declaration's details belong: the ledger cannot
    # see it; the reader gets SealedError, not a decode error.
    wrong = txtypes.CreditDetails(salt("x"), "overdue", 1, "USD", "")
    sealed = sealed_to(trade, wrong, "declaration.register", "D-W", trade.recipient(CUSTOMS),
                       trade.recipient(REG), trade.recipient(EXPORTER))
    trade.ok(CUSTOMS, dataclasses.replace(declaration("D-W", 10), details=sealed))
    with pytest.raises(SealedError, match="not a DeclarationDetails"):
        trade.open(decl_record(trade, "D-W").details, "declaration.register", "D-W", EXPORTER)


BOX80 = bytes(80)


def _sealed_raw(plain: bytes, data_key: bytes, aad: bytes) -> Sealed:
    """`plain` (any bytes) under `data_key`, as a careless or hostile recorder might seal it."""
    cipher = AES.new(data_key, AES.MODE_GCM, nonce=bytes(12), mac_len=16)
    cipher.update(aad)
    body, tag = cipher.encrypt_and_digest(plain)
    return Sealed(bytes(12), body + tag, plain_hash(plain), (WrappedKey(CUSTOMS, 1, BOX80),))


def test_any_plain_text_under_the_right_key_opens_or_raises_sealed_error() -> None:
    """What a recorder sealed is not checked by the ledger: whatever the bytes, a reader gets
    the details or SealedError, never a decode or type error."""
    aad, data_key = context("declaration", "D-1"), bytes(range(32))
    salt_hex = b'"' + b"00" * 16 + b'"'
    good = b'{"buyer":"a","destination":"DE","goods":"g","salt":' + salt_hex + b',"v":1}'
    bad = [b"", b"null", b"[]", b"{}", b"\xff\xfe", b'{"v":1}', b"1e999", b"[" * 5000,
           good.replace(b'"DE"', b'"de"'), good.replace(b'"a"', b"1"),
           good.replace(b'"g"', b'""'), good.replace(b'"v":1', b'"v":2'),
           good.replace(salt_hex, b'"zz"'), good.replace(salt_hex, b'"' + b"00" * 15 + b'"'),
           good.replace(b"}", b',"extra":1}'), good.replace(b'"buyer"', b'"buyer" ')]
    rng = random.Random(16)
    bad += [rng.randbytes(rng.randrange(1, 80)) for _ in range(200)]
    for plain in bad:
        with pytest.raises(SealedError):
            decrypt(_sealed_raw(plain, data_key, aad), data_key, aad,
                    txtypes.DeclarationDetails)
    assert decrypt(_sealed_raw(good, data_key, aad), data_key, aad,
                   txtypes.DeclarationDetails).goods == "g"


def test_plain_hash_proves_the_plain_text(trade: Chain) -> None:
    sealed = decl_record(trade, "D-1").details
    shown = trade.open(sealed, "declaration.register", "D-1", EXPORTER)
    # The hash of the canonical encoding of what the exporter was shown is on the ledger.
    assert plain_hash(codec.encode(shown)) == sealed.plain_hash
    # Any other plain text, a different salt included, has another hash.
    for other in (dataclasses.replace(shown, goods="other parts"),
                  dataclasses.replace(shown, buyer="Someone Else"),
                  dataclasses.replace(shown, salt=bytes(16))):
        assert plain_hash(codec.encode(other)) != sealed.plain_hash
    # The same details sealed twice: two ciphertexts, one plain hash (the salt is inside).
    again = sealed_to(trade, shown, "declaration.register", "D-1", trade.recipient(CUSTOMS))
    assert again.ciphertext != sealed.ciphertext and again.plain_hash == sealed.plain_hash
