"""The policy: every weight, window, threshold and guardrail, as validated data.

A policy is a YAML file a person can read and sign off (docs/policy.md).
Keys left out take the defaults below; unknown keys are an error, so a typo
cannot silently fall back to a default. The *effective* policy (defaults
filled in) is written to the run's manifest.

>>> p = Policy()
>>> p.window_days, p.components["exposure_1"].points
(1095, 4.0)
>>> Policy.model_validate({"window_days": -3})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Policy
...
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import PolicyError

ListName = Literal["call_in", "custom_notifications", "service_referrals"]

# What each component measures; the score is the sum of points over them.
COMPONENT_DOCS = {
    "violent_offending": "incidents in the window where the person had an offending role in a violent incident",
    "gun_offending": "shootings in the window where the person had an offending role",
    "offending": "incidents in the window where the person had an offending role",
    "degree": "distinct co-offenders in the window",
    "shooting_victimization": "shootings in the window where the person was a victim",
    "exposure_1": "distinct shooting victims at co-offending distance 1",
    "exposure_2": "distinct shooting victims at co-offending distance 2",
}
# Components that describe harm done *to* the person: they route people to
# services and never count towards an enforcement list.
VICTIMIZATION_COMPONENTS = frozenset({"shooting_victimization"})


class Component(BaseModel):
    """Points for one score component: ``points * min(value, cap)``."""

    model_config = ConfigDict(extra="forbid")
    points: float = Field(ge=0, description="points per unit of the component's value")
    cap: float | None = Field(default=None, gt=0, description="value above which no more points accrue")


def _default_components() -> dict[str, Component]:
    return {
        "violent_offending": Component(points=10, cap=5),
        "gun_offending": Component(points=12, cap=3),
        "offending": Component(points=2, cap=10),
        "degree": Component(points=1, cap=15),
        "shooting_victimization": Component(points=8, cap=3),
        "exposure_1": Component(points=4, cap=5),
        "exposure_2": Component(points=1, cap=10),
    }


class Guardrails(BaseModel):
    """Who may never appear on an enforcement list (call-in, custom notification)."""

    model_config = ConfigDict(extra="forbid")
    min_offending_incidents: int = Field(
        default=1, ge=1,
        description="minimum incidents in an offending role inside the window (victim-only people never qualify)")
    exclude_deceased: bool = True
    exclude_incarcerated: bool = True
    juveniles: Literal["exclude", "flag", "include"] = Field(
        default="flag", description="people under 18 on as_of: excluded, flagged in reasons, or included")


class ListRule(BaseModel):
    """A ranked cut: the top ``size`` people whose list score reaches ``min_score``."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=0)
    min_score: float = Field(default=0, ge=0)


class ServiceRule(ListRule):
    include_all_shooting_victims: bool = Field(
        default=True, description="every shooting victim in the window is referred, whatever the score")
    victim_recent_days: int = Field(default=365, ge=1,
                                    description="a victimization counts as recent within this many days of as_of")


class CallInRule(ListRule):
    """Call-in: choose groups, then the attendees who spread the message furthest inside each."""

    require_group: bool = Field(default=True, description="only members of a group (audit or detected) are invited")
    max_groups: int = Field(default=8, ge=1, description="groups invited to the call-in")
    group_recent_days: int = Field(default=365, ge=1,
                                   description="a group's violence counts as recent within this many days of as_of")
    invites_per_group: int = Field(default=6, ge=1, description="attendee seats per chosen group (the capacity)")
    show_up_probability: float = Field(default=1 / 6, gt=0, le=1,
                                       description="chance an invited person who is not under supervision attends")
    supervised_show_up_probability: float = Field(
        default=1.0, gt=0, le=1, description="chance an invited person on probation, parole or pretrial release attends")
    method: Literal["exact", "greedy"] = Field(
        default="exact", description="attendee choice: exact integer programme (scipy milp) or greedy")
    milp_time_limit_s: float = Field(default=20, gt=0, description="time limit per group for the exact method; "
                                     "the greedy choice is kept if the solver does not prove optimality in time")


class Lists(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_in: CallInRule = Field(default_factory=lambda: CallInRule(size=60, min_score=20))
    custom_notifications: ListRule = Field(default_factory=lambda: ListRule(size=30, min_score=30))
    service_referrals: ServiceRule = Field(default_factory=lambda: ServiceRule(size=100, min_score=8))


class Groups(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detect: bool = Field(default=True, description="detect groups with Leiden on the co-offending layer")
    resolution: float = Field(default=8.0, gt=0, description="Leiden resolution (RB configuration model); high values give fine communities that the audit labels merge back into groups")
    min_size: int = Field(default=3, ge=2, description="smallest detected group kept")
    seed: int = Field(default=42, description="Leiden random seed (runs are deterministic)")
    conflict_min_shootings: int = Field(
        default=1, ge=1, description="shootings between two groups that infer a conflict")
    conflict_min_violent: int = Field(
        default=0, ge=0, description="violent incidents between two groups that infer a conflict without a shooting (0: never)")
    audit_prior: float = Field(default=0.5, ge=0, le=1,
                               description="confidence of an audit label with no support in the network")
    match_previous: float = Field(default=0.5, gt=0, le=1,
                                  description="Jaccard overlap for a detected group to keep its name from --previous run")


class Analytics(BaseModel):
    """Centrality and exposure settings (docs/concepts.md)."""

    model_config = ConfigDict(extra="forbid")
    betweenness_exact_work: float = Field(
        default=1e9, gt=0, description="betweenness is exact in a connected component while people x (people + ties) is at most this; sampled above")
    betweenness_pivots: int = Field(default=512, ge=16, description="source pivots when betweenness is sampled")
    seed: int = Field(default=42, description="seed for sampled betweenness")
    exposure_max_distance: int = Field(default=6, ge=1, le=50,
                                       description="victim_distance is searched up to this many steps")
    exposure_half_life_days: float = Field(default=180, gt=0,
                                           description="half-life of a shooting's weight in the decayed exposure")


class Contagion(BaseModel):
    """The network contagion model of gun violence (Green, Horel and Papachristos 2017)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    tie_weight: Literal["unweighted", "incidents"] = Field(
        default="unweighted", description="weight of a co-offending tie in the contagion kernel")
    max_lag_days: int = Field(default=1095, ge=1, description="an earlier shooting can trigger a later one up to this many days after")
    standard_errors: bool = True


class Disparity(BaseModel):
    """Disparity report: list composition against the network and the offending population."""

    model_config = ConfigDict(extra="forbid")
    attributes: list[Literal["race", "sex", "ethnicity", "age_band", "district"]] = Field(
        default_factory=lambda: ["race", "sex", "age_band", "district"],
        description="person attributes compared (persons table; age_band from age on as_of)")
    ratio_low: float = Field(default=0.8, gt=0, le=1,
                             description="a selection-rate ratio below this is flagged (four-fifths rule)")
    ratio_high: float = Field(default=1.25, ge=1, description="a selection-rate ratio above this is flagged")
    min_listed: int = Field(default=5, ge=0, description="categories with fewer listed people are reported, never flagged")


class Policy(BaseModel):
    """The effective policy of a run."""

    model_config = ConfigDict(extra="forbid")
    version: int = 1
    window_days: int = Field(default=1095, ge=1, description="look-back window in days before as_of")
    retention_days: int = Field(default=1826, ge=1,
                                description="records dated more than this many days before as_of are purged "
                                "from the run (28 CFR 23.20(h): five years) and counted in the manifest")
    half_life_days: float = Field(default=365, gt=0, description="half-life of the time-decayed edge weight")
    components: dict[str, Component] = Field(default_factory=_default_components)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    lists: Lists = Field(default_factory=Lists)
    groups: Groups = Field(default_factory=Groups)
    analytics: Analytics = Field(default_factory=Analytics)
    contagion: Contagion = Field(default_factory=Contagion)
    disparity: Disparity = Field(default_factory=Disparity)

    @field_validator("components", mode="before")
    @classmethod
    def _component_names(cls, v):
        if isinstance(v, dict):
            bad = sorted(set(v) - set(COMPONENT_DOCS))
            if bad:
                raise ValueError(f"unknown component(s) {', '.join(bad)}; allowed: {', '.join(COMPONENT_DOCS)}")
        return v

    @field_validator("components")
    @classmethod
    def _known_components(cls, v):
        # components left out keep their defaults; set points: 0 to switch one off
        full = _default_components()
        full.update(v)
        return {k: full[k] for k in COMPONENT_DOCS}

    def effective(self) -> dict:
        """The policy as plain data, every default filled in (for the manifest)."""
        return self.model_dump(mode="json")


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"must be one of {e['ctx']['expected']}"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def load_policy(path: str | Path | None) -> Policy:
    """Read and validate a policy file; ``None`` gives the default policy."""
    if path is None:
        return Policy()
    p = Path(path)
    if not p.is_file():
        raise PolicyError(f"policy file {p} not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {p} is not valid YAML: {exc}") from None
    return policy_from_dict(raw or {}, source=str(p))


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def policy_from_dict(raw: dict, source: str = "policy") -> Policy:
    """Validate a policy given as data; keys left out (at any depth) keep their defaults.

    >>> p = policy_from_dict({"components": {"degree": {"points": 2}}, "lists": {"call_in": {"size": 40}}})
    >>> p.components["degree"].cap, p.lists.call_in.min_score
    (15.0, 20.0)
    """
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: the policy must be a YAML mapping of keys to values")
    try:
        return Policy.model_validate(_deep_merge(Policy().effective(), raw))
    except ValidationError as exc:
        raise PolicyError(f"{source}: invalid policy: {_format_errors(exc)}") from None


def default_policy_yaml() -> str:
    """A commented default policy (``fdnet policy init``)."""
    p = Policy()
    lines = ["# fdnet policy: every weight, window and threshold of a run.",
             "# Keys left out take these defaults. See docs/policy.md.",
             yaml.safe_dump(p.effective(), sort_keys=False)]
    return "\n".join(lines)
