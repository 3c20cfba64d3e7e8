"""Which Raft messages an ordering node takes from the network (ADR 0018)."""

from __future__ import annotations

from protocol.replica.membership import raft_id_of
from protocol.replica.raft_admission import (
    ADMIT,
    NODE_REFUSALS,
    NOT_MEMBER,
    UNKNOWN_PEER,
    WRONG_SOURCE,
    raft_admission,
)

BANK, NEW_BANK, TAX = "bank.a", "bank.new", "tax.qd"
MEMBERS = frozenset({raft_id_of(BANK)})
ORDERERS = (BANK, NEW_BANK)


def _admit(sender: str | None, src: int) -> str:
    return raft_admission(sender, raft_id_of(sender) if sender else 0, src, MEMBERS, ORDERERS)


def test_member_of_the_configuration_is_admitted() -> None:
    assert _admit(BANK, raft_id_of(BANK)) == ADMIT


def test_orderer_of_the_ledger_not_yet_in_the_configuration_is_admitted() -> None:
    """A bank the ledger added that our Raft log has not reached yet: a member to be."""
    assert _admit(NEW_BANK, raft_id_of(NEW_BANK)) == ADMIT


def test_consortium_member_that_orders_nothing_is_refused() -> None:
    """The tax bureau's node, authenticated as itself, is no orderer: not a Raft member."""
    assert _admit(TAX, raft_id_of(TAX)) == NOT_MEMBER


def test_source_other_than_the_senders_own_is_refused() -> None:
    assert _admit(TAX, raft_id_of(BANK)) == WRONG_SOURCE
    assert _admit(BANK, raft_id_of(NEW_BANK)) == WRONG_SOURCE


def test_unknown_peer_is_refused() -> None:
    assert _admit(None, raft_id_of(BANK)) == UNKNOWN_PEER


def test_reasons_are_a_closed_set() -> None:
    assert len(set(NODE_REFUSALS)) == len(NODE_REFUSALS) == 4
    assert ADMIT not in NODE_REFUSALS
