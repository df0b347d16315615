"""The policy: every weight, window, threshold and guardrail, as validated data.

A policy is a YAML file a person can read and sign off (docs/policy.md).
Keys left out take the defaults below; unknown keys are an error, so a typo
cannot silently fall back to a default. The *effective* policy (defaults
filled in) is written to the run's manifest.

>>> p = Policy()
>>> p.window_days, sorted(p.components["exposure_1"].counts_for)
(1095, ['enforcement', 'service'])
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
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import PolicyError

ListName = Literal["call_in", "custom_notifications", "service_referrals"]

# What each component measures; the score is the sum of points over them.
COMPONENT_DOCS = {
    "offending": "incidents in the window where the person had an offending role",
    "violent_offending": "incidents in the window where the person had an offending role in a violent incident",
    "gun_offending": "shootings in the window where the person had an offending role",
    "recent_offending": "incidents in an offending role in the last features.recent_days days",
    "shooting_victimization": "shootings in the window where the person was a victim",
    "degree": "distinct co-offenders in the window",
    "core_number": "k-core number in the co-offending layer (the person has k co-offenders who also have k)",
    "exposure_1": "distinct shooting victims at co-offending distance 1",
    "exposure_2": "distinct shooting victims at co-offending distance 2",
    "exposure_decayed": "shooting victims at co-offending distance 1, each weighted 0.5^(days since shot / analytics.exposure_half_life_days)",
    "shooter_exposure": "distinct co-offenders who had an offending role in a shooting in the window",
    "contagion_risk": "the contagion model's hazard of being shot, per 1,000 people per year, at the as-of date",
    "group_violence": "shootings in the last features.group_recent_days days with a member of the person's group as victim or suspect",
    "group_conflicts": "active conflicts of the person's group (group_relations and inferred from shootings)",
    "age": "age in whole years on the as-of date (unknown: missing_points)",
}
# Components that describe harm done *to* the person (or the risk of it):
# they route people to services and can never count towards an enforcement list.
VICTIMIZATION_COMPONENTS = frozenset({"shooting_victimization", "contagion_risk"})
ListKind = Literal["enforcement", "service"]
# Components that describe who a person is rather than what they did: by default they never
# count towards an enforcement list (issue 9; cf. Chicago's Strategic Subject List).
DEMOGRAPHIC_COMPONENTS = frozenset({"age"})


class Component(BaseModel):
    """Points for one score component, in one of two forms.

    - linear: ``points * min(value, cap)`` (``points`` a number);
    - table (a scorecard): ``bins`` are increasing thresholds and ``points``
      has one entry more: a value below ``bins[0]`` scores ``points[0]``, a
      value in ``[bins[k-1], bins[k])`` scores ``points[k]``, a value at or
      above the last threshold scores ``points[-1]``.

    A missing value (age unknown) scores ``missing_points``. ``counts_for``
    says which list scores the component adds to.

    >>> Component(points=[0, 5, 9], bins=[1, 3]).score([0, 1, 2, 3, 10])
    array([0., 5., 5., 9., 9.])
    >>> Component(points=2, cap=3).score([0, 1, 5])
    array([0., 2., 6.])
    """

    model_config = ConfigDict(extra="forbid")
    points: float | list[float] = Field(description="points per unit (linear) or per bin (table)")
    cap: float | None = Field(default=None, gt=0, description="linear form: value above which no more points accrue")
    bins: list[float] | None = Field(default=None, description="table form: increasing thresholds")
    missing_points: float = Field(default=0.0, description="points when the value is unknown")
    counts_for: list[ListKind] = Field(default_factory=lambda: ["enforcement"],
                                       description="list scores this component adds to")
    justification: str = Field(default="", description="required, in words a person signs off, when a "
                               "demographic component (DEMOGRAPHIC_COMPONENTS) counts for enforcement; shown in "
                               "the manifest, the report and the disparity section")

    @model_validator(mode="after")
    def _form(self):
        if self.bins is None:
            if isinstance(self.points, list):
                raise ValueError("points is a list but bins is missing (a table needs both)")
            if self.points < 0:
                raise ValueError("points must be >= 0")
        else:
            if not isinstance(self.points, list) or len(self.points) != len(self.bins) + 1:
                raise ValueError("a table needs len(points) == len(bins) + 1")
            if any(b >= c for b, c in zip(self.bins, self.bins[1:])):
                raise ValueError("bins must be strictly increasing")
            if self.cap is not None:
                raise ValueError("cap applies to the linear form only")
        if len(set(self.counts_for)) != len(self.counts_for):
            raise ValueError("counts_for lists a list score twice")
        return self

    def score(self, values) -> np.ndarray:
        """Points for an array of values."""
        v = np.asarray(values, dtype=float)
        miss = np.isnan(v)
        if self.bins is None:
            x = np.nan_to_num(v)
            if self.cap is not None:
                x = np.minimum(x, self.cap)
            out = self.points * x
        else:
            idx = np.searchsorted(np.asarray(self.bins, dtype=float), np.nan_to_num(v), side="right")
            out = np.asarray(self.points, dtype=float)[idx]
        return np.round(np.where(miss, self.missing_points, out), 6)

    def describe(self, value) -> str:
        """The rule that gave ``value`` its points, in words."""
        if value is None or value != value:
            return f"value unknown: {self.missing_points:g} points"
        if self.bins is None:
            capped = f", capped at {self.cap:g}" if self.cap is not None else ""
            return f"{self.points:g} points per unit{capped}"
        b = self.bins
        k = int(np.searchsorted(np.asarray(b, dtype=float), float(value), side="right"))
        rng = (f"below {b[0]:g}" if k == 0 else f"{b[-1]:g} or more" if k == len(b) else
               f"from {b[k - 1]:g} to below {b[k]:g}")
        return f"value {rng}: {self.points[k]:g} points"


def _load_default_components() -> dict:
    """The shipped scorecard (scoring/default_components.yaml, calibrated on synthetic cities)."""
    path = Path(__file__).with_name("default_components.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


_DEFAULTS = _load_default_components()


def _default_components() -> dict[str, Component]:
    return {k: Component.model_validate(v) for k, v in _DEFAULTS["components"].items()}


class Features(BaseModel):
    """Settings of the features the components are computed from."""

    model_config = ConfigDict(extra="forbid")
    recent_days: int = Field(default=180, ge=1, description="recent_offending counts this many days back from as_of")
    group_recent_days: int = Field(default=365, ge=1, description="group_violence counts this many days back")


class Calibration(BaseModel):
    """Maps the score to an estimated probability of shooting involvement (``fdnet calibrate``).

    probability = 1 / (1 + exp(-(intercept + slope * score))) over the next
    ``horizon_days``. The default is fitted on synthetic cities: refit it on
    local data before reading the probability as a local rate.
    """

    model_config = ConfigDict(extra="forbid")
    horizon_days: int = Field(default=120, ge=1)
    intercept: float = -9.0
    slope: float = Field(default=0.0347, ge=0)
    fitted_on: str = Field(default="", description="where the points and this mapping were fitted")


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
    """Call-in: choose groups, then the attendees who spread the message furthest inside each.

    ``size`` is the total number of seats; ``min_score`` the enforcement score
    an invitee needs (guardrails apply too).
    """

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
    milp_node_limit: int = Field(default=20000, ge=1, description="branch-and-bound nodes per group for the exact "
                                 "method: a limit that stops at the same point on any machine (reproducible lists)")


class Lists(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_in: CallInRule = Field(default_factory=lambda: CallInRule(size=48, min_score=20))
    custom_notifications: ListRule = Field(default_factory=lambda: ListRule(size=30, min_score=30))
    service_referrals: ServiceRule = Field(default_factory=lambda: ServiceRule(size=100, min_score=8))


class Groups(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detect: bool = Field(default=True, description="detect groups with Leiden on the co-offending layer")
    resolution: float | Literal["auto"] = Field(
        default="auto", description="Leiden resolution (RB configuration model), or auto (the default): chosen per "
        "network from the data, by held-out agreement with the group audit where at least 20 people with ties carry "
        "an audit label, else by modularity and stability across seeds (docs/concepts.md); the choice and the scan "
        "are in the manifest")
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


class Network(BaseModel):
    """How incidents become ties (docs/concepts.md)."""

    model_config = ConfigDict(extra="forbid")
    max_pairs_per_incident: int = Field(
        default=1225, ge=1,
        description="an incident whose pairs in a layer (co-offending: k offenders give k(k-1)/2; victimization: "
        "offenders x victims) exceed this projects no ties in that layer (a mass arrest is not a co-offending "
        "group); its people keep their own counts, and the manifest names every incident affected")


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
    features: Features = Field(default_factory=Features)
    components: dict[str, Component] = Field(default_factory=_default_components)
    calibration: Calibration = Field(default_factory=lambda: Calibration.model_validate(_DEFAULTS["calibration"]))
    guardrails: Guardrails = Field(default_factory=Guardrails)
    lists: Lists = Field(default_factory=Lists)
    network: Network = Field(default_factory=Network)
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

    @model_validator(mode="after")
    def _victims_never_enforcement(self):
        bad = [k for k in VICTIMIZATION_COMPONENTS if "enforcement" in self.components[k].counts_for]
        if bad:
            raise ValueError(f"components {', '.join(sorted(bad))}: victimization never counts towards an "
                             "enforcement list (counts_for may only be [service])")
        if self.retention_days < self.window_days:
            raise ValueError(f"retention_days ({self.retention_days}) is shorter than window_days "
                             f"({self.window_days}): records would be purged while still inside the window")
        return self

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
    >>> p.components["degree"].cap, p.components["degree"].counts_for, p.lists.call_in.size
    (None, ['enforcement'], 40)
    """
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: the policy must be a YAML mapping of keys to values")
    raw = dict(raw)
    comps = raw.pop("components", None)
    merged = _deep_merge(Policy().effective(), raw)
    if comps is not None:
        if not isinstance(comps, dict):
            raise PolicyError(f"{source}: invalid policy: components: must be a mapping of component names")
        # a component given in the file replaces the default one whole (its form may differ)
        merged["components"] = {**merged["components"], **comps}
    try:
        return Policy.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(f"{source}: invalid policy: {_format_errors(exc)}") from None


def default_policy_yaml() -> str:
    """A commented default policy (``fdnet policy init``)."""
    p = Policy()
    lines = ["# fdnet policy: every weight, window and threshold of a run.",
             "# Keys left out take these defaults. See docs/policy.md.",
             yaml.safe_dump(p.effective(), sort_keys=False)]
    return "\n".join(lines)
