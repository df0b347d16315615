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

import re
from pathlib import Path
from typing import Literal

import yaml
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import PolicyError

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
# Attributes that describe who a person is rather than what they did. A component measuring one
# of them (today ``age``; any later component named after one of these, e.g. ``sex`` or
# ``district``, or starting with ``age_``) is *demographic*: by default it never counts towards an
# enforcement list (issue 9; cf. the audits of Chicago's Strategic Subject List). It may inform the
# service score and the risk estimate (``risk``, the calibration's probability).
DEMOGRAPHIC_ATTRIBUTES = ("age", "sex", "race", "ethnicity", "district")


def is_demographic(name: str) -> bool:
    """Whether a component measures a demographic attribute (see DEMOGRAPHIC_ATTRIBUTES).

    >>> [is_demographic(n) for n in ("age", "age_band", "district", "degree", "offending")]
    [True, True, True, False, False]
    """
    return any(name == a or name.startswith(a + "_") for a in DEMOGRAPHIC_ATTRIBUTES)


DEMOGRAPHIC_COMPONENTS = frozenset(n for n in COMPONENT_DOCS if is_demographic(n))
JUSTIFICATION_MIN_CHARS = 40       # a justification is a sentence a person signs, not a tick box
JUSTIFICATION_MIN_WORDS = 6


class _Strict(BaseModel):
    """Every policy section: unknown keys refused, numbers and booleans validated strictly.

    A number must be written as a number (an integer is accepted where a
    decimal is expected, nothing else: no ``true``, no ``"5"``), a boolean as
    ``true``/``false``, and NaN or infinity is refused everywhere, so the
    effective policy in manifest.json is always valid JSON and means what it says.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Component(_Strict):
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

    def is_zero(self) -> bool:
        """True when the component can give no points at all (switched off).

        >>> Component(points=0).is_zero(), Component(points=[0, 0], bins=[1]).is_zero(), Component(points=1).is_zero()
        (True, True, False)
        """
        pts = self.points if isinstance(self.points, list) else [self.points]
        return all(p == 0 for p in pts) and self.missing_points == 0

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


def justification_ok(text: str) -> bool:
    """A substantive written justification: at least 40 characters and 6 words of letters.

    >>> justification_ok("because"), justification_ok("x" * 60)
    (False, False)
    >>> justification_ok("The city council resolution 2026-14 requires age-weighted call-ins for this pilot.")
    True
    """
    t = " ".join(str(text or "").split())
    words = [w for w in t.split(" ") if sum(ch.isalpha() for ch in w) >= 2]
    return len(t) >= JUSTIFICATION_MIN_CHARS and len(set(w.lower() for w in words)) >= JUSTIFICATION_MIN_WORDS


def _load_default_components() -> dict:
    """The shipped scorecard (fdnet/scoring/default_components.yaml, calibrated on synthetic cities)."""
    path = Path(__file__).parent / "scoring" / "default_components.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


_DEFAULTS = _load_default_components()


def _default_components() -> dict[str, Component]:
    return {k: Component.model_validate(v) for k, v in _DEFAULTS["components"].items()}


class Features(_Strict):
    """Settings of the features the components are computed from."""

    recent_days: int = Field(default=180, ge=1, description="recent_offending counts this many days back from as_of")
    group_recent_days: int = Field(default=365, ge=1, description="group_violence counts this many days back")


class Calibration(_Strict):
    """Maps the score to an estimated probability of shooting involvement (``fdnet calibrate``).

    probability = 1 / (1 + exp(-(intercept + slope * score))) over the next
    ``horizon_days``. The default is fitted on synthetic cities: refit it on
    local data before reading the probability as a local rate.
    """

    horizon_days: int = Field(default=120, ge=1)
    intercept: float = -9.0
    slope: float = Field(default=0.0347, ge=0)
    fitted_on: str = Field(default="", description="where the points and this mapping were fitted")


class Guardrails(_Strict):
    """Who may never appear on an enforcement list (call-in, custom notification)."""

    min_offending_incidents: int = Field(
        default=1, ge=1,
        description="minimum incidents in an offending role inside the window (victim-only people never qualify)")
    exclude_deceased: bool = True
    exclude_incarcerated: bool = True
    juveniles: Literal["exclude", "flag", "include"] = Field(
        default="flag", description="people under 18 on as_of: excluded, flagged in reasons, or included")


class ListRule(_Strict):
    """A ranked cut: the top ``size`` people whose list score reaches ``min_score``."""

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


class Lists(_Strict):
    call_in: CallInRule = Field(default_factory=lambda: CallInRule(size=48, min_score=20))
    custom_notifications: ListRule = Field(default_factory=lambda: ListRule(size=30, min_score=30))
    service_referrals: ServiceRule = Field(default_factory=lambda: ServiceRule(size=100, min_score=8))


class Groups(_Strict):
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


class Network(_Strict):
    """How incidents become ties (docs/concepts.md)."""

    max_pairs_per_incident: int = Field(
        default=1225, ge=1,
        description="an incident whose pairs in a layer (co-offending: k offenders give k(k-1)/2; victimization: "
        "offenders x victims) exceed this projects no ties in that layer (a mass arrest is not a co-offending "
        "group); its people keep their own counts, and the manifest names every incident affected")


class Analytics(_Strict):
    """Centrality and exposure settings (docs/concepts.md)."""

    betweenness_exact_work: float = Field(
        default=2e8, gt=0, description="betweenness is exact in a connected component while people x (people + ties) is at most this; sampled above")
    betweenness_pivots: int = Field(default=512, ge=16, description="source pivots when betweenness is sampled")
    seed: int = Field(default=42, description="seed for sampled betweenness")
    exposure_max_distance: int = Field(default=6, ge=1, le=50,
                                       description="victim_distance is searched up to this many steps")
    exposure_half_life_days: float = Field(default=180, gt=0,
                                           description="half-life of a shooting's weight in the decayed exposure")


class Contagion(_Strict):
    """The network contagion model of gun violence (Green, Horel and Papachristos 2017)."""

    enabled: bool = True
    tie_weight: Literal["unweighted", "incidents"] = Field(
        default="unweighted", description="weight of a co-offending tie in the contagion kernel")
    max_lag_days: int = Field(default=1095, ge=1, description="an earlier shooting can trigger a later one up to this many days after")
    standard_errors: bool = True


class Disparity(_Strict):
    """Disparity report: list composition against the network and the offending population."""

    attributes: list[Literal["race", "sex", "ethnicity", "age_band", "district"]] = Field(
        default_factory=lambda: ["race", "sex", "age_band", "district"],
        description="person attributes compared (persons table; age_band from age on as_of)")
    ratio_low: float = Field(default=0.8, gt=0, le=1,
                             description="a selection-rate ratio below this is flagged (four-fifths rule)")
    ratio_high: float = Field(default=1.25, ge=1, description="a selection-rate ratio above this is flagged")
    min_listed: int = Field(default=5, ge=0, description="categories with fewer listed people are reported, never flagged")


Role = Literal["prosecutor", "supervisor"]
Decision = Literal["approve", "decline", "defer"]
# Who may review which enforcement list (CONTRACT.md §4): supervisors review call-in candidates;
# prosecutors and supervisors review custom-notification candidates. Service referrals are never
# reviewed for enforcement: outreach records outcomes, not approvals.
REVIEWERS: dict[str, tuple[str, ...]] = {"call_in": ("supervisor",),
                                         "custom_notifications": ("prosecutor", "supervisor")}
DEFAULT_APPROVALS: dict[str, list[str]] = {"call_in": ["supervisor"],
                                           "custom_notifications": ["prosecutor", "supervisor"]}
DEFAULT_REASON_CODES: dict[str, list[str]] = {
    "approve": ["evidence_confirmed", "risk_confirmed"],
    "decline": ["insufficient_evidence", "identity_doubt", "victim_only", "incarcerated", "deceased",
                "already_engaged", "other"],
    "defer": ["need_more_information", "pending_case", "other"],
}
_REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Review(_Strict):
    """How candidates on the enforcement lists are reviewed in the workspace (``fdnet serve``).

    ``approvals`` names, per enforcement list, the roles whose approval clears a candidate; each
    role needs an approval by a *different person*. A list left out keeps its default; a list's
    roles are distinct and at least one. Service referrals are never reviewed for enforcement.

    >>> r = Review()
    >>> r.approvals["custom_notifications"], r.approval_valid_days, r.blind
    (['prosecutor', 'supervisor'], 365, False)
    >>> Review.model_validate({"approvals": {"call_in": ["supervisor", "supervisor"]}})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Review
    ...
    """

    approvals: dict[ListName, list[Role]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_APPROVALS.items()},
        description="per enforcement list, the roles whose approvals (each by a different person) clear a "
        "candidate for delivery")
    approval_valid_days: int = Field(default=365, ge=1, le=3660, description="an approval lapses this many "
                                     "days after it was given (Kansas City's call-in effect faded within about "
                                     "12 months)")
    blind: bool = Field(default=False, description="hide the score on a candidate's page until the evidence "
                        "has been opened")
    reason_codes: dict[Decision, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_REASON_CODES.items()},
        description="the reason codes a reviewer picks from, per decision")
    auditor_pseudonymised: bool = Field(default=True, description="auditors see keyed pseudonyms of person "
                                        "IDs unless false")

    @field_validator("approvals")
    @classmethod
    def _approvals(cls, v):
        if "service_referrals" in v:
            raise ValueError("service_referrals may not be given: outreach is not reviewed for enforcement "
                             "(service referrals go to services, never to an approval step)")
        out = {}
        for name in ("call_in", "custom_notifications"):
            roles = v.get(name, DEFAULT_APPROVALS[name])
            if not roles:
                raise ValueError(f"{name}: at least one role must approve a candidate on an enforcement list")
            if len(set(roles)) != len(roles):
                raise ValueError(f"{name}: a role is named twice ({', '.join(roles)}); each role is one "
                                 "approval by a different person")
            bad = [r for r in roles if r not in REVIEWERS[name]]
            if bad:
                raise ValueError(f"{name}: {', '.join(bad)} does not review this list (reviewers: "
                                 f"{', '.join(REVIEWERS[name])})")
            out[name] = list(roles)
        return out

    @field_validator("reason_codes")
    @classmethod
    def _codes(cls, v):
        out = {}
        for d in ("approve", "decline", "defer"):
            codes = v.get(d, DEFAULT_REASON_CODES[d])
            if not codes:
                raise ValueError(f"{d}: give at least one reason code (e.g. other)")
            bad = [c for c in codes if not _REASON_CODE.match(c)]
            if bad:
                raise ValueError(f"{d}: {', '.join(repr(c) for c in bad)} is not a reason code (lower-case "
                                 "letters, digits and _, starting with a letter, at most 40 characters)")
            if len(set(codes)) != len(codes):
                raise ValueError(f"{d}: a reason code is given twice")
            out[d] = list(codes)
        return out


class Evaluation(_Strict):
    """``fdnet evaluate``: how intervened people are compared with people eligible on the same date
    (docs/evaluation.md)."""

    horizons_days: list[int] = Field(default_factory=lambda: [180, 365],
                                     description="follow-up horizons: outcomes are counted in the days (0, h] "
                                     "after the index date; only people followed for all h days are used")
    eligibility_days: int = Field(default=365, ge=1, description="eligible on a date: an offending or victim "
                                  "involvement in this many days before it (treated and comparison alike)")
    matches: int = Field(default=3, ge=1, le=20, description="comparisons matched to each treated person "
                         "(nearest on the propensity logit, with replacement)")
    caliper_sd: float = Field(default=0.2, gt=0, le=5, description="a match must lie within this many standard "
                              "deviations of the propensity logit (Austin 2011)")
    max_comparisons_per_treated: int = Field(default=50, ge=1, description="candidates drawn per treated person "
                                             "from each monthly cohort's eligible people (fixed seed)")
    months_step: int = Field(default=3, ge=1, le=12, description="the effect by months since the intervention "
                             "is reported in bins of this many months")
    min_treated: int = Field(default=10, ge=1, description="an effect with fewer matched treated people is "
                             "reported as too few to estimate")
    spillover_kinds: list[str] = Field(default_factory=lambda: ["call_in_attended", "custom_notification_delivered"],
                                       description="kinds whose effect on the treated people's co-offenders is "
                                       "estimated")
    programme_start: str | None = Field(default=None, description="YYYY-MM-DD: the programme's start for the "
                                        "city-wide interrupted time series (default: the first intervention)")
    seed: int = Field(default=42, description="seed for the candidate draw and the group detection")

    @field_validator("horizons_days")
    @classmethod
    def _horizons(cls, v):
        if not v or any(h < 1 for h in v):
            raise ValueError("horizons_days must be a non-empty list of positive day counts")
        return sorted(set(v))

    @field_validator("programme_start")
    @classmethod
    def _start(cls, v):
        if v is not None:
            import datetime
            try:
                datetime.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"programme_start {v!r} is not a YYYY-MM-DD date") from None
        return v


class Places(_Strict):
    """The places analysis (docs/places.md): cells, risk terrain, forecast accuracy, near repeats, territories.

    Runs only when incidents carry lat and lon; it never changes the lists.
    """

    enabled: bool = Field(default=True, description="run the places analysis when incidents carry lat and lon")
    grid: Literal["square", "h3"] = Field(default="square", description="cells of the study area: squares of "
                                          "cell_m metres, or Uber's H3 hexagons at h3_resolution (needs the h3 "
                                          "package: pip install 'fdnet[h3]')")
    cell_m: float = Field(default=150.0, gt=0, description="side of a square cell of the study-area grid, metres")
    h3_resolution: int = Field(default=10, ge=0, le=15, description="H3 resolution of the hexagons when grid is "
                               "h3 (10: 0.015 km², edge about 66 m; 9: 0.105 km², edge about 174 m)")
    max_cells: int = Field(default=4_000_000, ge=1, description="a grid needing more cells is refused (exit 2): "
                           "it means a coordinate far from the rest")
    kde_bandwidth_m: float = Field(default=250.0, gt=0, description="standard deviation of the Gaussian kernel of "
                                   "the shootings' density (hot spots), metres")
    hot_spot_share: float = Field(default=0.05, gt=0, le=1, description="the cells with the highest shooting "
                                  "density making up this share of the study area are hot spots")
    background_bandwidth_m: float = Field(default=250.0, gt=0, description="kernel of the other incidents' density, "
                                          "the background covariate of the risk-terrain model, metres")
    proximity_m: list[float] = Field(default_factory=lambda: [150.0, 300.0, 450.0], min_length=1,
                                     description="distances (metres) at which proximity to each place-feature "
                                     "kind is tried as a factor")
    density_radius_m: float = Field(default=300.0, gt=0, description="radius (metres) within which features of a "
                                    "kind are counted for the density factor")
    max_factors: int = Field(default=10, ge=0, description="at most this many factors are selected")
    block_m: float = Field(default=1200.0, gt=0, description="side of the blocks of cells whose scores are summed "
                           "for the block-robust intervals of the relative risks, metres")
    holdout_days: int = Field(default=180, ge=1, description="the forecast check fits on the window up to as_of "
                              "minus this many days and scores the last days")
    area_shares: list[float] = Field(default_factory=lambda: [0.01, 0.05, 0.10], min_length=1,
                                     description="shares of the study area at which PAI and PEI are reported")
    knox_distance_m: list[float] = Field(default_factory=lambda: [100.0, 200.0, 400.0, 800.0], min_length=1,
                                         description="upper edges of the Knox test's distance bands, metres")
    knox_days: list[int] = Field(default_factory=lambda: [7, 14, 30, 60], min_length=1,
                                 description="upper edges of the Knox test's time bands, days")
    knox_permutations: int = Field(default=99, ge=0, description="Monte Carlo shuffles of the dates (Knox test)")
    seed: int = Field(default=0, description="seed of the Knox test's shuffles")
    territory_share: float = Field(default=0.5, gt=0, le=1, description="a group's core cells are the fewest "
                                   "holding this share of its members' offending incidents")
    place_list_size: int = Field(default=25, ge=0, description="cells on the place list (highest risk first)")

    @field_validator("proximity_m", "knox_distance_m", "knox_days", "area_shares")
    @classmethod
    def _increasing(cls, v):
        if any(b <= a for a, b in zip(v, v[1:])) or any(x <= 0 for x in v):
            raise ValueError("must be positive and strictly increasing")
        return v

    @field_validator("area_shares")
    @classmethod
    def _shares(cls, v):
        if any(x > 1 for x in v):
            raise ValueError("area shares are fractions of the study area: at most 1")
        return v
RESOLUTION_COLUMNS = ("first_name", "last_name", "middle_name", "birth_date", "sex", "address")
#: columns a blocking rule may name: the persons columns above and these derived keys (docs/resolution.md)
RESOLUTION_KEYS = RESOLUTION_COLUMNS + ("first_name_key", "first_initial", "last_initial", "birth_year",
                                        "birth_month_day", "birth_date_missing")


class ResolutionComparison(_Strict):
    """One comparison of the linkage model: how two records' values of one column are told apart."""

    column: Literal["first_name", "last_name", "middle_name", "birth_date", "sex", "address"] = Field(
        description="the persons column compared (a comparison whose column the persons table lacks is left out, "
        "and the run's notes say so)")
    method: Literal["forename", "surname", "birth_date", "exact", "address"] = Field(
        description="forename: exact, same name after nicknames (Bill = William), Jaro-Winkler bands, initial "
        "against a full name; surname: exact, Jaro-Winkler bands; birth_date: exact, day and month swapped, one "
        "character off (a typo), within a year; exact: equal or not; address: exact, Jaro-Winkler bands")
    jaro_winkler: list[float] = Field(default=[0.92, 0.85], description="Jaro-Winkler similarity bands, "
                                      "highest first (forename, surname and address)")

    @field_validator("jaro_winkler")
    @classmethod
    def _bands(cls, v):
        if any(not 0 < x < 1 for x in v) or list(v) != sorted(v, reverse=True) or len(set(v)) != len(v):
            raise ValueError("Jaro-Winkler bands must be distinct, between 0 and 1, highest first")
        return v


def _default_comparisons() -> list:
    return [ResolutionComparison(column="first_name", method="forename"),
            ResolutionComparison(column="last_name", method="surname"),
            ResolutionComparison(column="middle_name", method="forename"),
            ResolutionComparison(column="birth_date", method="birth_date"),
            ResolutionComparison(column="sex", method="exact"),
            ResolutionComparison(column="address", method="address")]


class ResolutionSpark(_Strict):
    """The Spark backend's session (docs/resolution.md: pointing it at a cluster)."""

    master: str = Field(default="local[2]", description="Spark master URL: local[N] on this machine, "
                        "spark://host:7077, yarn or k8s://... for a cluster")
    app_name: str = Field(default="fdnet-resolution", description="the Spark application's name")
    shuffle_partitions: int = Field(default=8, ge=1, description="spark.sql.shuffle.partitions")
    config: dict[str, str] = Field(default_factory=dict, description="further Spark settings (key: value), "
                                   "e.g. spark.executor.memory")


class Resolution(_Strict):
    """Entity resolution across agencies (CONTRACT.md section 5; docs/resolution.md). Off by default: with it
    off each person_id is its own entity and no output changes."""

    enabled: bool = Field(default=False, description="link person records into entities before the networks "
                          "are built")
    backend: Literal["duckdb", "spark"] = Field(default="duckdb", description="Splink's SQL engine: DuckDB "
                                                "on this machine, or Spark for records beyond one machine")
    high: float = Field(default=0.9, gt=0, lt=1, description="a link merges two records only at or above this "
                        "match probability (or by a must-link decision)")
    review: float = Field(default=0.5, gt=0, lt=1, description="links from this probability up to `high` are "
                          "never merged: they go to clerical review (resolution_review.csv)")
    comparisons: list[ResolutionComparison] = Field(default_factory=_default_comparisons,
                                                    description="the model's comparisons")
    blocking_rules: list[list[str]] = Field(
        default=[["first_name_key", "last_name", "birth_year"], ["first_name_key", "last_name", "birth_month_day"],
                 ["birth_date", "last_initial"], ["birth_date", "first_initial"],
                 ["first_name_key", "last_name", "birth_date_missing"]],
        description="candidate pairs: records equal on every column of at least one rule (derived keys: "
        "first_name_key, first_initial, last_initial, birth_year, birth_month_day; birth_date_missing: the "
        "birth date missing on one side or both)")
    training_blocking_rules: list[list[str]] = Field(
        default=[["birth_date"], ["first_name_key", "last_name"], ["last_name", "birth_month_day"]],
        description="the blocks in which expectation maximisation estimates the m probabilities, in order, each "
        "starting from the estimates so far; a block leaves out the comparisons of its own columns, and a "
        "level's m is the mean of its estimates over the blocks that learn it")
    deterministic_rules: list[list[str]] = Field(
        default=[["first_name_key", "last_name", "birth_year", "sex"], ["last_name", "birth_date", "sex"]],
        description="pairs taken as matches to estimate the prior probability that two records match")
    deterministic_recall: float = Field(default=0.7, gt=0, le=1,
                                        description="the share of true matches the deterministic rules find")
    max_pairs_u: int = Field(default=1_000_000, ge=1000, description="random pairs sampled to estimate the "
                             "u probabilities")
    seed: int = Field(default=42, description="seed of that sample (runs are deterministic)")
    duckdb_threads: int = Field(default=1, ge=1, le=256, description="DuckDB threads (results are sorted and "
                                "rounded, so any count gives the same files)")
    spark: ResolutionSpark = Field(default_factory=ResolutionSpark)
    entity_id: Literal["smallest_person_id", "preferred_source"] = Field(
        default="smallest_person_id", description="the entity's ID: its smallest person_id, or the smallest "
        "person_id among its records from the first of preferred_sources it has")
    preferred_sources: list[str] = Field(default_factory=list, description="sources in order of preference "
                                         "for entity_id: preferred_source")
    decisions_file: str = Field(default="resolution_decisions", description="the input table of must-link and "
                                "cannot-link decisions (.csv or .parquet in the data folder), applied every run")

    @field_validator("blocking_rules", "training_blocking_rules", "deterministic_rules")
    @classmethod
    def _keys(cls, v):
        for rule in v:
            if not rule:
                raise ValueError("a rule names at least one column")
            bad = [c for c in rule if c not in RESOLUTION_KEYS]
            if bad:
                raise ValueError(f"{', '.join(bad)} is not a column a rule may name ({', '.join(RESOLUTION_KEYS)})")
        return v

    @model_validator(mode="after")
    def _bands(self):
        if self.review >= self.high:
            raise ValueError("resolution.review must be below resolution.high")
        if not self.blocking_rules:
            raise ValueError("resolution.blocking_rules: give at least one rule")
        if self.entity_id == "preferred_source" and not self.preferred_sources:
            raise ValueError("resolution.entity_id preferred_source needs preferred_sources")
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", self.decisions_file):
            raise ValueError("resolution.decisions_file is a table name (letters, digits, _ and -), no path")
        return self


class Policy(_Strict):
    """The effective policy of a run."""

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
    review: Review = Field(default_factory=Review)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    places: Places = Field(default_factory=Places)
    resolution: Resolution = Field(default_factory=Resolution)

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
        unjustified = [k for k, c in self.components.items()
                       if is_demographic(k) and "enforcement" in c.counts_for and not c.is_zero()
                       and not justification_ok(c.justification)]
        if unjustified:
            names = ", ".join(sorted(unjustified))
            raise ValueError(
                f"components {names}: a demographic attribute (age, sex, race, ethnicity, district) never counts "
                "towards an enforcement list by default; set counts_for: [service] (it may inform the service score "
                "and the risk estimate), or, if the policy really means it, give the component a justification of "
                f"at least {JUSTIFICATION_MIN_CHARS} characters and {JUSTIFICATION_MIN_WORDS} words, which the "
                "manifest, the report and the disparity section will show")
        if self.retention_days < self.window_days:
            raise ValueError(f"retention_days ({self.retention_days}) is shorter than window_days "
                             f"({self.window_days}): records would be purged while still inside the window")
        return self

    def effective(self) -> dict:
        """The policy as plain data, every default filled in (for the manifest)."""
        return self.model_dump(mode="json")

    def demographic_enforcement(self) -> list[dict]:
        """Demographic components that add points to the enforcement lists, with their justification.

        Empty under the default policy (the rule of issue 9). Shown in the manifest
        (``disparity.demographic_enforcement``), disparity.csv and the report.

        >>> Policy().demographic_enforcement()
        []
        >>> why = "Ordered by the oversight board on 2026-01-05, minute 12: age bands are weighted for this pilot."
        >>> p = policy_from_dict({"components": {"age": {"bins": [25], "points": [5, 0],
        ...                       "counts_for": ["enforcement"], "justification": why}}})
        >>> [(d["component"], d["max_points"]) for d in p.demographic_enforcement()]
        [('age', 5.0)]
        """
        out = []
        for k, c in self.components.items():
            if is_demographic(k) and "enforcement" in c.counts_for and not c.is_zero():
                pts = c.points if isinstance(c.points, list) else [c.points]
                out.append({"component": k, "counts_for": list(c.counts_for),
                            "max_points": float(max([*pts, c.missing_points])),
                            "justification": " ".join(c.justification.split())})
        return out


_TYPE_WORDS = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "finite_number": "must be a finite number (NaN and infinity are refused)",
}


def _shown(value) -> str:
    """A policy value as the user wrote it (YAML spelling), cut short."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value != value:
        text = ".nan"
    elif isinstance(value, float) and value in (float("inf"), float("-inf")):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_UNION_TAG = re.compile(r"^(float|int|bool|str|list\[.*\]|dict\[.*\]|literal\[.*\]|function-.*)$")


def _clause(e: dict) -> str:
    """What one validation error says, in words (without the key)."""
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        return "unknown key"
    if e["type"] == "literal_error":
        return f"must be one of {e['ctx']['expected']}"
    if e["type"] in _TYPE_WORDS:
        msg = f"{_TYPE_WORDS[e['type']]}, not {_shown(e.get('input'))}"
        if e["type"] in ("int_type", "float_type") and isinstance(e.get("input"), (bool, str)):
            msg += " (numbers are written without quotes, and true/false is not a number)"
        return msg
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def _format_errors(exc: ValidationError) -> str:
    """One clause per bad key (a dotted path), saying what is allowed and, for a wrong type, what was given.

    A key that takes one of several forms (a number or ``auto``; a number or a list) is reported once:
    by the list form's errors when a list was given, else as one sentence naming every form.
    """
    groups: dict[str, list[tuple[str, str, dict]]] = {}
    for e in exc.errors():
        loc = [str(x) for x in e["loc"]]
        tag = next((i for i, x in enumerate(loc) if _UNION_TAG.match(x)), None)
        head = ".".join(loc if tag is None else loc[:tag]) or "(top level)"
        branch = "" if tag is None else loc[tag]
        rest = "" if tag is None else ".".join(x for x in loc[tag + 1:] if not _UNION_TAG.match(x))
        groups.setdefault(head, []).append((branch, rest, e))
    parts = []
    for head, errs in groups.items():
        branches = {b for b, _, _ in errs}
        if len(branches) <= 1:
            parts += [f"{head}{'.' + r if r else ''}: {_clause(e)}" for _, r, e in errs]
            continue
        given = next((e.get("input") for _, r, e in errs if not r), None)
        if isinstance(given, (list, dict)) and any(b.startswith(("list", "dict")) for b in branches):
            parts += [f"{head}{'.' + r if r else ''}: {_clause(e)}" for b, r, e in errs
                      if b.startswith(("list", "dict"))]
            continue
        forms = []
        for b, _, e in errs:
            forms.append(f"one of {e['ctx']['expected']}" if e["type"] == "literal_error" else
                         "a finite number" if b == "float" else "a whole number" if b == "int" else
                         "a list" if b.startswith("list") else b)
        parts.append(f"{head}: must be {' or '.join(dict.fromkeys(forms))}, not {_shown(given)}")
    return "; ".join(dict.fromkeys(parts))


class _PolicyLoader(yaml.SafeLoader):
    """YAML for policy files: no aliases (``*name``: an alias bomb expands into gigabytes) and no
    duplicate keys (the later one would silently win)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{ev.anchor}) are not allowed in a policy file; write the value out",
                ev.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except TypeError:
                continue  # an unhashable key: reported by the constructor below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"the key {key!r} is given twice (first on line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


# Dates stay text (YYYY-MM-DD), validated by the field that takes them: YAML's own timestamp type
# would turn 2025-01-01 into a date object and 2025-13-01 into an uncaught ValueError.
_PolicyLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what, and where (line and column, 1-based)."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{what}"


def read_policy_yaml(text: str, source: str = "policy") -> dict:
    """Parse a policy's YAML text (no aliases, no duplicate keys) into plain data.

    >>> read_policy_yaml("window_days: 30")
    {'window_days': 30}
    >>> read_policy_yaml("a: &x [1, 2]\\nb: *x")
    Traceback (most recent call last):
    ...
    fdnet.errors.PolicyError: policy is not valid YAML: line 2, column 4: aliases (*x) are not allowed in a policy file; write the value out
    """
    try:
        return yaml.load(text, Loader=_PolicyLoader)  # noqa: S506 (_PolicyLoader is a SafeLoader)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source} is not valid YAML: {_yaml_error(exc)}") from None
    except RecursionError:
        raise PolicyError(f"{source} is nested too deeply to be a policy") from None


def load_policy(path: str | Path | None) -> Policy:
    """Read and validate a policy file; ``None`` gives the default policy."""
    if path is None:
        return Policy()
    p = Path(path)
    if not p.is_file():
        raise PolicyError(f"policy file {p} not found")
    if p.stat().st_size > 1_000_000:
        raise PolicyError(f"policy file {p} is larger than 1 MB: a policy is a short document a person signs off")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    raw = read_policy_yaml(text, source=f"policy file {p}")
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
