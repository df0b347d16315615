"""Who may see what in the workspace (CONTRACT §4): one table of rules that every page and API answer obeys.

- ``analyst``: every list of every run, read only.
- ``prosecutor``: custom-notification candidates (reviews them).
- ``supervisor``: call-in and custom-notification candidates (the second approval).
- ``outreach``: service referrals only, and of them only what outreach needs (who, why they are referred, when
  they were shot, district, the juvenile flag): never a score, a group, a legal-risk summary, a network or any
  enforcement list.
- ``auditor``: everything read only, person IDs pseudonymised unless the run's policy says
  ``review.auditor_pseudonymised: false``, and the audit trail.
- ``admin``: users; no person-level data at all.

>>> may_see_list("prosecutor", "custom_notifications"), may_see_list("prosecutor", "service_referrals")
(True, False)
>>> may_see_list("outreach", "call_in"), may_see_list("admin", "service_referrals")
(False, False)
>>> visible_columns("outreach", "service_referrals", ["rank", "person_id", "score", "reasons", "group",
...                 "referral_basis", "last_victimization_date", "juvenile"])
['rank', 'person_id', 'referral_basis', 'last_victimization_date', 'juvenile']
"""
from __future__ import annotations

from ..runfolder import LIST_NAMES

ROLES = ("analyst", "prosecutor", "supervisor", "outreach", "auditor", "admin")
LISTS_OF_ROLE: dict[str, tuple[str, ...]] = {
    "analyst": LIST_NAMES,
    "prosecutor": ("custom_notifications",),
    "supervisor": ("call_in", "custom_notifications"),
    "outreach": ("service_referrals",),
    "auditor": LIST_NAMES,
    "admin": (),
}
# What outreach may see of a service referral: nothing scored, nothing about groups or enforcement.
OUTREACH_COLUMNS = ("rank", "person_id", "referral_basis", "last_victimization_date", "district", "juvenile")
# Roles that see person pages (explanations, evidence, networks): outreach and admin never do.
PERSON_PAGE_ROLES = ("analyst", "prosecutor", "supervisor", "auditor")
PURPOSE = {
    "analyst": "analysis",
    "prosecutor": "custom-notification review",
    "supervisor": "call-in and custom-notification review",
    "outreach": "service outreach",
    "auditor": "audit",
    "admin": "administration",
}
LIST_TITLES = {
    "call_in": "Call-in invitations",
    "custom_notifications": "Custom-notification candidates",
    "service_referrals": "Service referrals",
}


def lists_for(role: str) -> tuple[str, ...]:
    """The lists ``role`` may see, in list order."""
    return LISTS_OF_ROLE.get(role, ())


def may_see_list(role: str, list_name: str) -> bool:
    return list_name in lists_for(role)


def may_see_person(role: str, list_names) -> bool:
    """Whether ``role`` may open the person page of someone on ``list_names`` (the lists they are on)."""
    return role in PERSON_PAGE_ROLES and any(may_see_list(role, n) for n in list_names)


def visible_columns(role: str, list_name: str, columns) -> list[str]:
    """The columns of ``list_name`` that ``role`` sees, in the file's order."""
    if not may_see_list(role, list_name):
        return []
    if role == "outreach":
        return [c for c in columns if c in OUTREACH_COLUMNS]
    return list(columns)


def pseudonymised(role: str, review_policy) -> bool:
    """Whether person IDs are shown as keyed pseudonyms to ``role`` (auditors, unless the policy allows)."""
    return role == "auditor" and bool(getattr(review_policy, "auditor_pseudonymised", True))
