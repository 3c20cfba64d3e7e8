"""Deliberately broken Raft variants: the simulator must catch each of them, or its checks are
worthless."""

from __future__ import annotations

from protocol.raft import LEADER, AppendRequest, HardState, Raft, VoteRequest, VoteResponse


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
