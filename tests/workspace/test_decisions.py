"""Review states (fdnet.workspace.decisions): each rule of the module docstring, on real audit entries."""
from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from fdnet.audit.log import AuditLog
from fdnet.policy import Review
from fdnet.workspace.decisions import Approval, may_review, needs_for, statuses

LISTS = {
    "call_in.csv": "rank,person_id,group,score,reasons\n1,P1,East,40,x\n2,P2,East,31,x\n",
    "custom_notifications.csv": "rank,person_id,group,score,reasons\n1,P1,East,40,x\n2,P3,,35,x\n",
    "service_referrals.csv": "rank,person_id,group,score,reasons\n1,V1,,12,shot\n",
}


def make_run(path: Path, as_of: str) -> Path:
    path.mkdir(parents=True)
    outputs = {}
    for name, text in LISTS.items():
        (path / name).write_text(text, encoding="utf-8")
        outputs[name] = {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    (path / "manifest.json").write_text(json.dumps({"fdnet_version": "0.6.0", "as_of": as_of, "policy": {},
                                                    "inputs": {}, "outputs": outputs}), encoding="utf-8")
    return path.resolve()


@pytest.fixture
def world(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    runs = {"r1": make_run(tmp_path / "runs" / "r1", "2025-01-31"),
            "r2": make_run(tmp_path / "runs" / "r2", "2025-02-28"),
            "r3": make_run(tmp_path / "runs" / "r3", "2025-03-31")}
    yield log, runs
    log.close()


def st(log, runs, run="r2", list_name="custom_notifications", people=("P1", "P3"), today=None,
       review=None):
    as_of = {str(p): json.loads((p / "manifest.json").read_text())["as_of"] for p in runs.values()}
    return statuses(log.entries(), run_dir=runs[run], run_as_of=as_of[str(runs[run])], list_name=list_name,
                    person_ids=list(people), review=review or Review(), today=today or date.today().isoformat(),
                    runs_as_of=as_of)


def rv(log, runs, run, user, role, decision, pid="P1", list_name="custom_notifications", code=None):
    return log.record_review(runs[run], pid, decision, f"{user} read the file", reviewer=user, list_name=list_name,
                             role=role, reason_code=code)


def test_who_may_review_and_what_is_needed():
    assert [may_review(r, "custom_notifications") for r in ("prosecutor", "supervisor", "analyst", "outreach")] \
        == [True, True, False, False]
    assert [may_review(r, "call_in") for r in ("prosecutor", "supervisor")] == [False, True]
    assert not any(may_review(r, "service_referrals") for r in ("prosecutor", "supervisor", "admin"))
    assert needs_for(Review(), "call_in") == ("supervisor",)
    assert needs_for(Review.model_validate({"approvals": {"custom_notifications": ["prosecutor"]}}),
                     "custom_notifications") == ("prosecutor",)


def test_nothing_recorded_is_pending_with_every_role_needed(world):
    log, runs = world
    s = st(log, runs)
    assert set(s) == {"P1", "P3"}
    assert (s["P1"].state, s["P1"].needed, s["P1"].approvals, s["P1"].history, s["P1"].carried_from,
            s["P1"].expires) == ("pending", ("prosecutor", "supervisor"), (), (), None, None)


def test_two_person_clearance(world):
    log, runs = world
    a = rv(log, runs, "r2", "ana", "prosecutor", "approve", code="evidence_confirmed")
    s = st(log, runs)["P1"]
    assert (s.state, s.needed) == ("partly_approved", ("supervisor",))
    assert s.approvals == (Approval("ana", "prosecutor", a.created_at, "r2",
                                    (date.fromisoformat(a.created_at[:10]) + timedelta(days=365)).isoformat()),)
    rv(log, runs, "r2", "sam", "supervisor", "approve")
    s = st(log, runs)["P1"]
    assert (s.state, s.needed, [x.user for x in s.approvals]) == ("cleared", (), ["ana", "sam"])
    assert s.expires == min(x.expires for x in s.approvals)
    assert [h["user"] for h in s.history] == ["ana", "sam"]
    assert s.history[0] == {"seq": a.seq, "at": a.created_at, "user": "ana", "role": "prosecutor",
                            "decision": "approve", "reason_code": "evidence_confirmed",
                            "reason": "ana read the file", "run_id": "r2"}
    assert st(log, runs)["P3"].state == "pending"                       # one person's decisions are theirs


def test_one_user_approving_twice_in_two_roles_counts_once(world):
    log, runs = world
    rv(log, runs, "r2", "ana", "prosecutor", "approve")
    rv(log, runs, "r2", "ana", "supervisor", "approve")
    s = st(log, runs)["P1"]
    assert (s.state, s.needed, [(x.user, x.role) for x in s.approvals]) == \
        ("partly_approved", ("prosecutor",), [("ana", "supervisor")])
    assert len(s.history) == 2


def test_a_decline_by_anyone_is_final_and_latest_decisions_count(world):
    log, runs = world
    rv(log, runs, "r2", "ana", "prosecutor", "approve")
    rv(log, runs, "r2", "sam", "supervisor", "decline", code="identity_doubt")
    assert st(log, runs)["P1"].state == "declined"
    rv(log, runs, "r2", "sam", "supervisor", "approve")                 # sam changed their mind
    assert st(log, runs)["P1"].state == "cleared"
    rv(log, runs, "r2", "ana", "prosecutor", "decline")
    s = st(log, runs)["P1"]
    assert (s.state, s.approvals, s.needed, len(s.history)) == ("declined", (), (), 4)


def test_defer_and_approvals_without_a_role(world):
    log, runs = world
    rv(log, runs, "r2", "ana", "prosecutor", "defer", code="pending_case")
    assert st(log, runs)["P1"].state == "deferred"
    log.record_review(runs["r2"], "P1", "approve", "from the command line", reviewer="cli", list_name="custom_notifications")
    assert st(log, runs)["P1"].state == "pending"                       # no role: covers none; latest is not a defer
    rv(log, runs, "r2", "sam", "supervisor", "approve")
    rv(log, runs, "r2", "ana", "prosecutor", "defer")
    assert st(log, runs)["P1"].state == "partly_approved"               # an approval stands beside the defer


def test_approvals_lapse(world):
    log, runs = world
    rv(log, runs, "r2", "ana", "prosecutor", "approve")
    rv(log, runs, "r2", "sam", "supervisor", "approve")
    exp = st(log, runs)["P1"].expires
    assert st(log, runs, today=exp)["P1"].state == "expired"
    day_before = (date.fromisoformat(exp) - timedelta(days=1)).isoformat()
    assert st(log, runs, today=day_before)["P1"].state == "cleared"
    short = Review.model_validate({"approval_valid_days": 1})
    s = st(log, runs, today="2099-01-01", review=short)["P1"]
    assert (s.state, s.needed, s.expires) == ("expired", ("prosecutor", "supervisor"), None)


def test_carry_forward_of_declined_and_cleared(world):
    log, runs = world
    rv(log, runs, "r1", "ana", "prosecutor", "decline", pid="P1")
    rv(log, runs, "r1", "ana", "prosecutor", "approve", pid="P3")
    rv(log, runs, "r1", "sam", "supervisor", "approve", pid="P3")
    s = st(log, runs, run="r2")
    assert (s["P1"].state, s["P1"].carried_from) == ("declined", "r1")
    assert (s["P3"].state, s["P3"].carried_from, s["P3"].needed) == ("cleared", "r1", ())
    assert [h["run_id"] for h in s["P3"].history] == ["r1", "r1"]
    # carried through a run with no decision on them, and only to later runs
    s3 = st(log, runs, run="r3")
    assert (s3["P1"].state, s3["P1"].carried_from) == ("declined", "r1")
    assert st(log, runs, run="r1")["P1"].carried_from is None
    # a decision in this run overrides the carried state
    rv(log, runs, "r2", "sam", "supervisor", "approve", pid="P1")
    s = st(log, runs, run="r2")["P1"]
    assert (s.state, s.carried_from, len(s.history)) == ("partly_approved", None, 2)
    # ... and r2's partial approval does not carry to r3, nor does r1's decline behind it
    s3 = st(log, runs, run="r3")["P1"]
    assert (s3.state, s3.carried_from) == ("pending", None)
    # a lapsed clearance does not carry
    assert st(log, runs, run="r2", today="2099-01-01")["P3"].state == "pending"


def test_partial_approvals_do_not_carry_and_lists_are_separate(world):
    log, runs = world
    rv(log, runs, "r1", "ana", "prosecutor", "approve")
    assert st(log, runs, run="r2")["P1"].state == "pending"
    rv(log, runs, "r2", "sam", "supervisor", "decline", list_name="call_in")
    assert st(log, runs, run="r2")["P1"].state == "pending"
    s = st(log, runs, run="r2", list_name="call_in", people=("P1", "P2"))
    assert (s["P1"].state, s["P2"].state, s["P2"].needed) == ("declined", "pending", ("supervisor",))
    rv(log, runs, "r2", "sam", "supervisor", "approve", pid="P2", list_name="call_in")
    assert st(log, runs, run="r2", list_name="call_in", people=("P2",))["P2"].state == "cleared"


def test_runs_not_in_runs_as_of_and_same_day_runs_do_not_carry(world, tmp_path):
    log, runs = world
    rv(log, runs, "r1", "ana", "prosecutor", "decline")
    as_of = {str(runs["r2"]): "2025-02-28"}
    s = statuses(log.entries(), run_dir=runs["r2"], run_as_of="2025-02-28", list_name="custom_notifications",
                 person_ids=["P1"], review=Review(), today="2025-03-15", runs_as_of=as_of)["P1"]
    assert (s.state, s.history) == ("pending", ())
    as_of[str(runs["r1"])] = "2025-02-28"                                 # same as_of: not earlier
    s = statuses(log.entries(), run_dir=runs["r2"], run_as_of="2025-02-28", list_name="custom_notifications",
                 person_ids=["P1"], review=Review(), today="2025-03-15", runs_as_of=as_of)["P1"]
    assert s.state == "pending"
