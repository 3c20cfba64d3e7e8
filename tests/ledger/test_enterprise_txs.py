"""enterprise.register, credit.record, consent.grant/revoke, and the credit-file queries."""

from __future__ import annotations

import pytest

from protocol import txtypes
from protocol.ledger import codes, queries
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    BANK_C,
    CHAIN_ID,
    CUSTOMS,
    EXPORTER,
    EXPORTER2,
    REG,
    T0,
    Chain,
    consent,
    credit_entry,
    key_of,
    register_enterprise,
    revoke,
    uscc,
)


def credit(entry: str = "line-1", u: str = EXPORTER) -> txtypes.RecordCredit:
    return credit_entry(entry, u)


def test_register_first_and_second_bank(chain: Chain) -> None:
    chain.ok(BANK_A, register_enterprise())
    chain.ok(BANK_B, register_enterprise())
    ent = chain.state.enterprise(EXPORTER)
    assert ent is not None and ent.serving_banks == (BANK_A, BANK_B)


def test_register_rejections(chain: Chain) -> None:
    chain.ok(BANK_A, register_enterprise())
    assert chain.one(BANK_A, register_enterprise()).code == codes.ALREADY_REGISTERED
    assert chain.one(BANK_B, register_enterprise(name="Other Name")).code == \
        codes.ENTERPRISE_MISMATCH
    assert chain.one(BANK_B, register_enterprise(country="DE")).code == \
        codes.ENTERPRISE_MISMATCH
    assert chain.one(BANK_B, register_enterprise(public_key=b"\x01" * 5)).code == \
        codes.BAD_PUBLIC_KEY
    numeric = "123456789012345678"
    chain.ok(REG, txtypes.AdmitInstitution(numeric, "Odd", "bank", key_of(numeric).public_key))
    assert chain.one(BANK_A, register_enterprise(numeric)).code == codes.ID_TAKEN


def test_a_bank_sets_a_key_only_where_none_is_held(chain: Chain) -> None:
    """domain.md I-10: a bank's KYC never replaces a key the enterprise holds, not even the
    bank that set it."""
    k1, k2 = key_of("e1"), key_of("e2")
    chain.ok(BANK_A, register_enterprise())
    chain.ok(BANK_B, register_enterprise(public_key=k1.public_key, bank=BANK_B))  # none set
    assert chain.state.enterprise(EXPORTER).key_set_by == BANK_B  # type: ignore[union-attr]
    for bank in (BANK_A, BANK_B, BANK_C):
        assert chain.one(bank, register_enterprise(public_key=k2.public_key,
                                                   bank=bank)).code == \
            codes.ENTERPRISE_KEY_CONFLICT
    chain.ok(BANK_C, register_enterprise(public_key=k1.public_key, bank=BANK_C))  # joins
    assert chain.state.signer_public_key(EXPORTER, k1.key_id) == k1.public_key
    assert chain.state.signer_public_key(EXPORTER, k2.key_id) is None


def test_enterprise_rotates_its_own_key_from_the_next_block(chain: Chain) -> None:
    k1, k2, k3 = key_of("e1"), key_of("e2"), key_of("e3")
    chain.keys[EXPORTER] = k1  # its encryption key version 1 is k1's X25519 form
    chain.ok(BANK_A, register_enterprise(public_key=k1.public_key))
    grant = consent(BANK_A, T0 + 10**9)
    r = chain.apply(chain.tx(EXPORTER, txtypes.RekeyEnterprise(EXPORTER, k2.public_key), key=k1),
                    chain.tx(EXPORTER, grant, key=k1))  # same block: the old key still signs
    assert [x.code for x in r] == ["OK", "OK"]
    assert chain.one(EXPORTER, grant, key=k1).code == codes.UNKNOWN_KEY
    chain.ok(EXPORTER, grant, key=k2)
    ent = chain.state.enterprise(EXPORTER)
    assert ent is not None and (ent.public_key, ent.key_set_by) == (k2.public_key, EXPORTER)
    assert chain.one(EXPORTER, txtypes.RekeyEnterprise(EXPORTER, k2.public_key),
                     key=k2).code == codes.KEY_EXISTS
    assert chain.one(EXPORTER, txtypes.RekeyEnterprise(EXPORTER, b"\x00" * 32),
                     key=k2).code == codes.BAD_PUBLIC_KEY
    # The regulator recovers a lost key; the history shows who did it.
    chain.ok(REG, txtypes.RekeyEnterprise(EXPORTER, k3.public_key))
    assert chain.state.enterprise(EXPORTER).key_set_by == REG  # type: ignore[union-attr]
    types_seen = [h.tx_type for h in queries.enterprise_view(chain.state, EXPORTER, REG).history]
    assert types_seen.count("enterprise.rekey") == 2
    assert chain.one(REG, txtypes.RekeyEnterprise(uscc(77), k3.public_key)).code == \
        codes.UNKNOWN_ENTERPRISE


def test_an_enterprise_rekeys_only_itself(chain: Chain) -> None:
    k1, k2 = key_of("e1"), key_of("other")
    chain.ok(BANK_A, register_enterprise(public_key=k1.public_key))
    chain.ok(BANK_A, register_enterprise(uscc(9), name="Other", public_key=k2.public_key))
    r = chain.one(uscc(9), txtypes.RekeyEnterprise(EXPORTER, k2.public_key), key=k2)
    assert r.code == codes.SIGNER_MISMATCH
    assert chain.one(BANK_A, txtypes.RekeyEnterprise(EXPORTER, k2.public_key)).code == \
        codes.ROLE_FORBIDDEN


def test_credit_record(chain: Chain) -> None:
    assert chain.one(BANK_A, credit()).code == codes.UNKNOWN_ENTERPRISE
    chain.ok(BANK_A, register_enterprise())
    assert chain.one(BANK_B, credit()).code == codes.NOT_SERVING_BANK
    chain.ok(BANK_A, credit())
    assert chain.one(BANK_A, credit()).code == codes.DUPLICATE_ENTRY
    entries = queries.read_credit_file(chain.state, EXPORTER, REG).entries
    assert len(entries) == 1 and entries[0].bank == BANK_A and entries[0].tx_id


def test_consent_grant_revoke_and_reads(trade: Chain) -> None:
    trade.ok(BANK_A, credit())
    far = trade.time_ms + 100_000
    assert trade.one(EXPORTER, consent(CUSTOMS, far)).code == codes.UNKNOWN_BANK
    assert trade.one(EXPORTER, consent("bank.none", far)).code == \
        codes.UNKNOWN_BANK
    assert trade.one(EXPORTER, consent(BANK_B, trade.time_ms)).code == \
        codes.CONSENT_EXPIRED
    assert trade.one(EXPORTER, revoke(BANK_B)).code == codes.NO_CONSENT
    with pytest.raises(queries.QueryRefused) as refused:
        queries.read_credit_file(trade.state, EXPORTER, BANK_B)
    assert refused.value.code == codes.NO_CONSENT
    trade.ok(EXPORTER, consent(BANK_B, far))
    read = queries.read_credit_file(trade.state, EXPORTER, BANK_B)
    assert read.consented_read and read.access == queries.ACCESS_CONSENT
    assert read.consent_expires_at_ms == far
    # Expired consent (query time past expiry) is refused.
    with pytest.raises(queries.QueryRefused) as expired:
        queries.read_credit_file(trade.state, EXPORTER, BANK_B, at_ms=far)
    assert expired.value.code == codes.CONSENT_EXPIRED
    trade.ok(EXPORTER, revoke(BANK_B))
    view = queries.enterprise_view(trade.state, EXPORTER, BANK_B)
    assert view.credit is None and view.credit_refusal_code == codes.NO_CONSENT


def test_credit_file_access_rules(trade: Chain) -> None:
    reg = queries.read_credit_file(trade.state, EXPORTER, REG)
    assert reg.access == queries.ACCESS_REGULATOR and not reg.consented_read
    own = queries.read_credit_file(trade.state, EXPORTER, EXPORTER)
    assert own.access == queries.ACCESS_SELF
    for reader, code in [(CUSTOMS, codes.NO_CONSENT), ("nobody", codes.QUERY_UNKNOWN_READER)]:
        with pytest.raises(queries.QueryRefused) as exc:
            queries.read_credit_file(trade.state, EXPORTER, reader)
        assert exc.value.code == code
    trade.ok(EXPORTER, consent(BANK_B, T0 + 10**9))
    trade.ok(REG, txtypes.SuspendInstitution(BANK_B, ""))
    with pytest.raises(queries.QueryRefused) as exc:
        queries.read_credit_file(trade.state, EXPORTER, BANK_B)
    assert exc.value.code == codes.QUERY_READER_SUSPENDED
    with pytest.raises(queries.QueryRefused) as exc:
        queries.enterprise_view(trade.state, "91370200MA3C09999X", REG)
    assert exc.value.code == codes.QUERY_NOT_FOUND


def test_a_bank_binds_a_key_only_with_the_enterprises_own_proof(chain: Chain) -> None:
    """domain.md I-10: the enterprise signs (chain, USCC, key, bank) with the key it gives."""
    k = key_of("exporter-own")
    signed = txtypes.sign_enterprise_key_proof
    unproven = {
        "no proof": b"",
        "made for another bank": signed(k, CHAIN_ID, EXPORTER, BANK_B),
        "made on another chain": signed(k, "other-chain", EXPORTER, BANK_A),
        "made for another enterprise": signed(k, CHAIN_ID, EXPORTER2, BANK_A),
        "made by the bank's own key": signed(key_of(BANK_A), CHAIN_ID, EXPORTER, BANK_A),
        "cut short": signed(k, CHAIN_ID, EXPORTER, BANK_A)[:63],
    }
    for why, proof in unproven.items():
        receipt = chain.one(BANK_A, register_enterprise(public_key=k.public_key, proof=proof))
        assert receipt.code == codes.ENTERPRISE_KEY_UNPROVEN, why
    assert chain.state.enterprise(EXPORTER) is None  # nothing was registered
    assert chain.one(BANK_A, register_enterprise(proof=signed(k, CHAIN_ID, EXPORTER, BANK_A))
                     ).code == codes.ENTERPRISE_KEY_UNPROVEN  # a proof without a key
    chain.ok(BANK_A, register_enterprise(public_key=k.public_key,
                                         proof=signed(k, CHAIN_ID, EXPORTER, BANK_A)))
    ent = chain.state.enterprise(EXPORTER)
    assert ent is not None and (ent.public_key, ent.key_set_by) == (k.public_key, BANK_A)
    # A keyless registration stays possible and binds nothing; the key stays the proven one.
    chain.ok(BANK_B, register_enterprise())
    assert chain.state.signer_public_key(EXPORTER, k.key_id) == k.public_key
