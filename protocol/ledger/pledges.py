"""Financings and the collateral they hold: storing a financing with every index and every
declaration total that follows from it, and cutting pledges when a declaration's outstanding
value falls (docs/domain.md I-1, I-2, I-7, I-8; ADR 0017 §2, §4).

Everything a financing implies elsewhere in the state is a function of the record:

- each open pledge (amount > 0, financing in PLEDGE_HOLDING) is in its declaration's `pledged`
  total and in the declaration's priority index `dpl`;
- a live financing (PLEDGE_HOLDING) is in its enterprise's and its bank's live index;
- an approved one has a lapse entry in the due index, a disbursed one a maturity entry;
- an overdue one, and a live flagged one, is on the regulator's watch list.

`store_financing(act, old, new)` writes `new` and moves all of that from `old`'s to `new`'s,
so no handler keeps an index by hand.
"""

from __future__ import annotations

import dataclasses

from protocol import limits
from protocol.ledger import codes, keys, records
from protocol.ledger.context import Act

_BPS: int = 10_000


def declaration_cap(outstanding: int, advance_rate_bps: int) -> int:
    """The most that may be pledged against `outstanding` (rounded down)."""
    return outstanding * advance_rate_bps // _BPS


def _indexes(fin: records.Financing | None) -> set[bytes]:
    if fin is None:
        return set()
    fid = fin.financing_id
    out: set[bytes] = set()
    if fin.status in records.PLEDGE_HOLDING:
        out.add(keys.enterprise_live(fin.uscc, fid))
        out.add(keys.bank_live(fin.bank, fid))
        for p in fin.pledges:
            if p.amount:
                out.add(keys.decl_pledge(p.declaration_no, fin.opened_height, fin.opened_index,
                                         fid))
        if fin.flag_count:
            out.add(keys.watch(keys.WATCH_FLAGGED, fid))
    if fin.status == records.APPROVED:
        out.add(keys.due(fin.lapse_at_ms, keys.DUE_LAPSE, fid))
    elif fin.status == records.DISBURSED:
        out.add(keys.due(fin.maturity_ms + 1, keys.DUE_MATURITY, fid))
    elif fin.status == records.OVERDUE:
        out.add(keys.watch(keys.WATCH_OVERDUE, fid))
    return out


def _open_amounts(fin: records.Financing | None) -> dict[str, int]:
    if fin is None or fin.status not in records.PLEDGE_HOLDING:
        return {}
    return {p.declaration_no: p.amount for p in fin.pledges}


def store_financing(act: Act, old: records.Financing | None, new: records.Financing) -> None:
    """Write `new` (the next version of `old`, or a new financing) with everything that
    follows from it. A financing that leaves PLEDGE_HOLDING releases every pledge."""
    if new.status not in records.PLEDGE_HOLDING and any(p.amount for p in new.pledges):
        new = dataclasses.replace(new, pledges=tuple(
            dataclasses.replace(p, amount=0) for p in new.pledges))
    before, after = _open_amounts(old), _open_amounts(new)
    for p in new.pledges:
        delta = after.get(p.declaration_no, 0) - before.get(p.declaration_no, 0)
        if delta:
            _adjust_pledged(act, p.declaration_no, delta, new.financing_id)
    old_ix, new_ix = _indexes(old), _indexes(new)
    for key in sorted(old_ix - new_ix):
        act.state.delete(key)
    for key in sorted(new_ix - old_ix):
        act.state.put(key, records.Marker())
    act.write(keys.financing(new.financing_id),
              dataclasses.replace(new, updated_height=act.height))


def _adjust_pledged(act: Act, declaration_no: str, delta: int, financing_id: str) -> None:
    key = keys.declaration(declaration_no)
    decl = act.state.get(key, records.Declaration)
    if decl is None or decl.pledged + delta < 0:
        raise RuntimeError(f"financing {financing_id}: declaration {declaration_no} cannot "
                           f"change its pledged total by {delta}")
    rate = act.params.advance_rate_bps if delta > 0 else decl.pledge_rate_bps
    act.write(key, dataclasses.replace(decl, pledged=decl.pledged + delta, pledge_rate_bps=rate))


def with_flag(fin: records.Financing, act: Act, code: str, declaration_no: str, amount: int,
              detail: str) -> records.Financing:
    flag = records.Flag(code, act.height, act.timestamp_ms, declaration_no, amount,
                        detail[: limits.TEXT_CHARS_MAX])
    flags = (*fin.flags, flag)[-limits.FLAGS_PER_FINANCING_MAX:]
    return dataclasses.replace(fin, flags=flags, flag_count=fin.flag_count + 1)


def pledgers(act: Act, declaration_no: str) -> list[str]:
    """The financings holding open pledges on a declaration, senior (earliest) first."""
    return [keys.parse_decl_pledge(k, declaration_no)
            for k in act.state.keys_in(keys.decl_pledges_prefix(declaration_no))]


def cut_to_cap(act: Act, declaration_no: str, flag_code: str, detail: str,
               beneficiary: str = "") -> None:
    """Cut the open pledges on a declaration down to its cap after its outstanding value fell:
    the financing that was just repaid from it (`beneficiary`) first, unflagged, then the most
    recent pledge first, each one flagged with `flag_code` (docs/domain.md I-2)."""
    decl = act.state.get(keys.declaration(declaration_no), records.Declaration)
    if decl is None:
        raise RuntimeError(f"declaration {declaration_no} vanished")
    excess = decl.pledged - declaration_cap(decl.outstanding, decl.pledge_rate_bps)
    if excess <= 0:
        return
    order = list(reversed(pledgers(act, declaration_no)))
    if beneficiary in order:
        order.remove(beneficiary)
        order.insert(0, beneficiary)
    for fid in order:
        fin = act.state.get(keys.financing(fid), records.Financing)
        pledge = None if fin is None else fin.pledge_on(declaration_no)
        if fin is None or pledge is None:
            raise RuntimeError(f"pledge index names financing {fid} on {declaration_no}")
        cut = min(excess, pledge.amount)
        cut_fin = dataclasses.replace(fin, pledges=tuple(
            dataclasses.replace(p, amount=p.amount - cut) if p is pledge else p
            for p in fin.pledges))
        if fid != beneficiary:
            cut_fin = with_flag(cut_fin, act, flag_code, declaration_no, cut, detail)
        store_financing(act, fin, cut_fin)
        excess -= cut
        if excess == 0:
            return
    raise RuntimeError(f"declaration {declaration_no}: pledged total and index disagree")


def release_all(act: Act, fin: records.Financing, reason: str) -> records.Financing:
    """`fin` with every pledge released and a PLEDGES_RELEASED flag (the regulator's act)."""
    total = fin.pledged_total
    released = dataclasses.replace(fin, release_reason=reason, pledges=tuple(
        dataclasses.replace(p, amount=0) for p in fin.pledges))
    return with_flag(released, act, codes.FLAG_PLEDGES_RELEASED, "", total, reason)
