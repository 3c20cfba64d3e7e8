"""Deliberately broken variants: the simulator must catch each of them, or its checks are
worthless. `BROKEN`: Raft cores (every model). `BROKEN_REPLICA`: the node's own decisions of
protocol.replica, swapped into the ledger model (`--model ledger`)."""

from __future__ import annotations

from dataclasses import replace

from protocol.raft import (
    LEADER,
    AppendRequest,
    ConfChange,
    ConfOp,
    HardState,
    Raft,
    VoteRequest,
    VoteResponse,
)
from protocol.replica import (
    CutDecision,
    CutInputs,
    MembershipDecision,
    MembershipInputs,
    decide_cut,
    decide_membership,
)

from .ledger import Rules


class VotesTwice(Raft):
    """Grants every up-to-date candidate its vote, even after voting for another in the term."""

    def _on_vote_request(self, m: VoteRequest) -> None:
        if self.log.is_up_to_date(m.last_index, m.last_term):
            self._send(VoteResponse(term=m.term, src=self.id, dst=m.src, pre_vote=m.pre_vote,
                                    granted=True))
            if not m.pre_vote:
                self.election_elapsed = 0
                self.vote = m.src
            return
        super()._on_vote_request(m)


class CommitsOldTerms(Raft):
    """Commits by counting replicas of entries from previous terms (Raft paper figure 8)."""

    def _maybe_commit(self) -> bool:
        matches = sorted((self._match_of(v) for v in self._voters), reverse=True)
        mci = matches[len(matches) // 2]
        if mci <= self.log.commit or self.role != LEADER:
            return False
        self._on_commit_advance(mci)
        return True


class ForgetsVote(Raft):
    """Never persists its vote: after a crash it may vote again in the same term."""

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=0, commit=self.log.commit)


class CommitsOldTermsNoNoop(CommitsOldTerms):
    """Figure 8 made likely: no empty entry at the start of a term, so a new leader commits
    entries of earlier terms by counting replicas."""

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role = LEADER
        self.lead = self.id
        self._sync_progress()
        self._bcast = True


class CommitsUnmatched(Raft):
    """Takes the leader's commit index up to its own last index, not just up to the entries it
    knows match the leader's (a classic bug: applies a stale, divergent suffix)."""

    def _on_append(self, m: AppendRequest) -> None:
        super()._on_append(m)
        if self.log.match_term(m.prev_index, m.prev_term):
            self.log.commit_to(min(m.commit, self.log.last_index()))


BROKEN = {
    "votes_twice": VotesTwice,
    "commits_old_terms": CommitsOldTerms,
    "forgets_vote": ForgetsVote,
    "commits_old_terms_no_noop": CommitsOldTermsNoNoop,
    "commits_unmatched": CommitsUnmatched,
}


# ----------------------------------------------------------------- the node's decisions


def cuts_before_term_commit(i: CutInputs) -> CutDecision:
    """Cuts as soon as it leads, before its term has a committed entry: it builds on a tip
    that entries of earlier terms, committed with its no-op, may still extend."""
    return decide_cut(replace(i, commit_term=i.term))


def removes_before_adding(i: MembershipInputs) -> MembershipDecision:
    """Removes a member the ledger dropped before adding the one it named, so replacing an
    orderer first shrinks the voters."""
    if i.is_leader and i.applied_index >= i.commit_index and i.conf_index <= i.commit_index:
        voters = set(i.voters)
        for node in sorted((voters | set(i.learners)) - set(i.wanted)):
            if voters - {node}:
                return MembershipDecision(ConfChange(ConfOp.REMOVE, node), "remove")
    return decide_membership(i)


def restarts_from_stored_applied(stored_applied: int, snapshot_index: int) -> int:
    """Restarts Raft from the last block the store applied, even when a snapshot lies beyond
    it (the node's behaviour before issue 14): Raft refuses to start."""
    return stored_applied


BROKEN_REPLICA = {
    "cuts_before_term_commit": Rules(decide_cut=cuts_before_term_commit),
    "removes_before_adding": Rules(decide_membership=removes_before_adding),
    "restarts_from_stored_applied": Rules(applied_on_restart=restarts_from_stored_applied),
    # Blocks fetched by block sync leave their transactions pending (before issue 14): a later
    # leader term proposes them again.
    "keeps_synced_txs": Rules(forget_synced_txs=False),
    # A node that never asks whether its binary implements the next block's protocol version
    # (ADR 0025): one not yet upgraded reaches a block of version 2.
    "ignores_activation": Rules(required_upgrade=lambda activations, height, implemented: None),
}
