"""Where each candidate on an enforcement list stands: pure functions over the audit log's review entries.

Nothing here reads files or the database: the caller passes the review entries
(``AuditLog.entries(kind="review")``), the run and the policy's ``review`` section, so the same
entries always give the same states.

The rules
---------
For one person on one list (``call_in`` or ``custom_notifications``) of one run:

1. **Each reviewer's latest decision counts.** A reviewer who approved and later declined has
   declined; earlier decisions stay in ``history``.
2. **A decline by anyone is final for the run**: state ``declined``.
3. **Approvals by distinct users that together cover every role** in
   ``review.approvals[list]`` clear the person (state ``cleared``). One user never counts twice,
   even if they approved once as a prosecutor and once as a supervisor: only their latest
   decision, in the role they held then, counts. An approval recorded without a role (``fdnet
   review`` on the command line) covers no role.
4. **Approvals lapse** ``review.approval_valid_days`` after the day they were given: an approval
   given on 2025-01-10 with 365 days has ``expires`` 2026-01-10 and no longer counts from that day
   on. When the approvals would clear the person but some needed one has lapsed: ``expired``.
5. Otherwise, with at least one approval covering a needed role: ``partly_approved`` (``needed``
   names the roles still missing); when the latest decision is a defer: ``deferred``; else
   ``pending``.
6. **Carry-forward**: a person with no decision in this run, who was ``declined`` or ``cleared``
   (and not lapsed) on the same list in an *earlier* run (a run in ``runs_as_of`` whose as_of is
   before this run's), carries that state, with ``carried_from`` naming the run where it was
   decided. Any decision in this run overrides a carried state. Partial approvals, defers and
   pending states do not carry; the latest earlier run that has decisions on the person decides
   what carries.

>>> from types import SimpleNamespace as E
>>> from fdnet.policy import Review
>>> def rv(seq, user, role, decision, run="/runs/r2", code=None):
...     return E(seq=seq, kind="review", user=user, created_at=f"2025-03-0{seq}T10:00:00.000000Z",
...              subject=run, payload={"person_id": "P1", "decision": decision, "reason": "read the file",
...              "role": role, "reason_code": code, "lists": {"custom_notifications": {"rank": 1}}})
>>> def state(entries, today="2025-03-20"):
...     s = statuses(entries, run_dir="/runs/r2", run_as_of="2025-03-01", list_name="custom_notifications",
...                  person_ids=["P1"], review=Review(), today=today,
...                  runs_as_of={"/runs/r1": "2025-02-01", "/runs/r2": "2025-03-01"})["P1"]
...     return s.state, s.needed, s.carried_from
>>> state([])
('pending', ('prosecutor', 'supervisor'), None)
>>> state([rv(1, "ana", "prosecutor", "approve")])
('partly_approved', ('supervisor',), None)
>>> state([rv(1, "ana", "prosecutor", "approve"), rv(2, "sam", "supervisor", "approve")])
('cleared', (), None)
>>> state([rv(1, "ana", "prosecutor", "approve"), rv(2, "ana", "supervisor", "approve")])  # one person, two roles
('partly_approved', ('prosecutor',), None)
>>> state([rv(1, "ana", "prosecutor", "approve"), rv(2, "sam", "supervisor", "approve")], today="2026-03-02")
('expired', ('prosecutor', 'supervisor'), None)
>>> state([rv(1, "ana", "prosecutor", "decline", run="/runs/r1")])                      # carried forward
('declined', (), 'r1')
>>> state([rv(1, "ana", "prosecutor", "decline", run="/runs/r1"), rv(2, "sam", "supervisor", "defer")])
('deferred', ('prosecutor', 'supervisor'), None)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Mapping, Sequence

from ..policy import REVIEWERS, Review

__all__ = ["REVIEWERS", "STATES", "Approval", "Status", "may_review", "needs_for", "statuses"]

STATES = ("pending", "partly_approved", "cleared", "declined", "deferred", "expired")
FINAL = ("declined", "cleared")   # the states that carry forward to a later run


def may_review(role: str, list_name: str) -> bool:
    """Whether a role may record decisions on a list (CONTRACT.md §4).

    >>> may_review("supervisor", "call_in"), may_review("prosecutor", "call_in")
    (True, False)
    >>> may_review("prosecutor", "custom_notifications"), may_review("outreach", "service_referrals")
    (True, False)
    """
    return role in REVIEWERS.get(list_name, ())


def needs_for(review: Review, list_name: str) -> tuple[str, ...]:
    """The roles whose approvals clear a candidate on ``list_name`` (empty: the list is not reviewed).

    >>> needs_for(Review(), "custom_notifications"), needs_for(Review(), "service_referrals")
    (('prosecutor', 'supervisor'), ())
    """
    return tuple(review.approvals.get(list_name, ()))


@dataclass(frozen=True)
class Approval:
    """One reviewer's current approval: who, in which role, when, in which run, and when it lapses."""

    user: str
    role: str
    at: str
    run_id: str
    expires: str


@dataclass(frozen=True)
class Status:
    """Where one person stands on one list of one run (see the module's rules)."""

    person_id: str
    list: str
    state: str
    approvals: tuple[Approval, ...]
    needed: tuple[str, ...]
    history: tuple[dict, ...]
    carried_from: str | None
    expires: str | None


def _key(path) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _run_id(path: str) -> str:
    return Path(path).name


def _expires(at: str, days: int) -> str:
    return (date.fromisoformat(str(at)[:10]) + timedelta(days=days)).isoformat()


def _own_state(decisions: list, needed_roles: tuple[str, ...], review: Review, today: str, run_id: str):
    """``(state, approvals, needed, expires)`` from one run's decisions (oldest first)."""
    latest: dict[str, object] = {}
    for e in decisions:
        latest[e.user] = e
    if any(e.payload.get("decision") == "decline" for e in latest.values()):
        return "declined", (), (), None
    approvals = []
    for user in sorted(latest):
        e = latest[user]
        role = e.payload.get("role")
        if e.payload.get("decision") == "approve" and role in needed_roles:
            approvals.append(Approval(user, role, e.created_at, run_id,
                                      _expires(e.created_at, review.approval_valid_days)))
    valid = [a for a in approvals if today < a.expires]
    covered = {a.role for a in valid}
    missing = tuple(r for r in needed_roles if r not in covered)
    if not missing:
        # the clearance lapses when the first of the approvals it rests on does; for a role approved
        # by several people, the one lasting longest is the one it rests on
        expires = min(max(a.expires for a in valid if a.role == r) for r in needed_roles)
        return "cleared", tuple(approvals), (), expires
    if all(any(a.role == r for a in approvals) for r in needed_roles):
        return "expired", tuple(approvals), missing, None
    if valid:
        return "partly_approved", tuple(approvals), missing, None
    last = decisions[-1] if decisions else None
    if last is not None and last.payload.get("decision") == "defer":
        return "deferred", tuple(approvals), missing, None
    return "pending", tuple(approvals), missing, None


def statuses(entries: Sequence, *, run_dir: str | os.PathLike, run_as_of: str, list_name: str,
             person_ids: Sequence[str], review: Review, today: str,
             runs_as_of: Mapping[str, str]) -> dict[str, Status]:
    """The :class:`Status` of each of ``person_ids`` on ``list_name`` of the run in ``run_dir``.

    ``entries`` are audit-log entries (any kinds; only ``review`` entries are read);
    ``runs_as_of`` maps absolute run folders to their as_of dates and says which runs are earlier;
    ``today`` (YYYY-MM-DD) decides which approvals have lapsed.
    """
    here = _key(run_dir)
    as_of = {_key(k): str(v)[:10] for k, v in runs_as_of.items()}
    mine = str(run_as_of)[:10]
    wanted = {str(p) for p in person_ids}
    needed_roles = needs_for(review, list_name)
    per_person: dict[str, list] = {p: [] for p in wanted}
    for e in sorted((e for e in entries if getattr(e, "kind", None) == "review"), key=lambda e: e.seq):
        p = e.payload
        pid = str(p.get("person_id"))
        if pid not in wanted or list_name not in (p.get("lists") or {}):
            continue
        run = _key(e.subject)
        if run != here and not (run in as_of and as_of[run] < mine):
            continue   # a later run, one of the same date, or a run not among runs_as_of
        per_person[pid].append(e)
    out: dict[str, Status] = {}
    for pid in person_ids:
        pid = str(pid)
        es = per_person.get(pid, [])
        history = tuple({"seq": e.seq, "at": e.created_at, "user": e.user, "role": e.payload.get("role"),
                         "decision": e.payload.get("decision"), "reason_code": e.payload.get("reason_code"),
                         "reason": e.payload.get("reason"), "run_id": _run_id(_key(e.subject))} for e in es)
        this_run = [e for e in es if _key(e.subject) == here]
        if this_run:
            state, approvals, needed, expires = _own_state(this_run, needed_roles, review, today, _run_id(here))
            out[pid] = Status(pid, list_name, state, approvals, needed, history, None, expires)
            continue
        by_run: dict[str, list] = {}
        for e in es:
            by_run.setdefault(_key(e.subject), []).append(e)
        carried = None
        for run in sorted(by_run, key=lambda r: (as_of[r], r)):   # oldest earlier run first
            state, approvals, _needed, expires = _own_state(by_run[run], needed_roles, review, today, _run_id(run))
            carried = (state, approvals, expires, _run_id(run)) if state in FINAL else None
        if carried is not None:
            state, approvals, expires, origin = carried
            out[pid] = Status(pid, list_name, state, approvals, (), history, origin, expires)
        else:
            out[pid] = Status(pid, list_name, "pending", (), needed_roles, history, None, None)
    return out
