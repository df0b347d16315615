"""The network analytics of a run: groups and conflicts, centrality, exposure, contagion.

:func:`analyze` is the graph stage's entry point for the pipeline and for
notebooks. It returns :class:`Analytics`, whose ``person`` frame has one row
per network person (in person-index order) and one column per quantity;
every column is documented in :data:`PERSON_COLUMNS`.

>>> import pandas as pd
>>> from fdnet.graph.layers import build_network
>>> from fdnet.policy import Policy
>>> inc = pd.DataFrame({"incident_id": ["I1", "I2", "I3"], "day": [19000, 19010, 19020],
...                     "gun": [False, True, True], "violent": [False, True, True]})
>>> inv = pd.DataFrame({"incident_id": ["I1", "I1", "I2", "I2", "I3", "I3"],
...                     "person_id": ["A", "B", "B", "C", "D", "A"],
...                     "role": ["suspect", "arrestee", "offender", "victim", "suspect", "victim"]})
>>> net = build_network(inc, inv, as_of_day=19020, window_days=365, half_life_days=365)
>>> an = analyze(net, persons=None, audit=None, relations=None, policy=Policy())
>>> print(an.person[["person_id", "victim_distance", "exposure_1", "shooter_exposure_1"]].to_string(index=False))
person_id  victim_distance  exposure_1  shooter_exposure_1
        A                0           0                   1
        B                1           1                   0
        C                0           0                   0
        D               -1           0                   0
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import _core
from ..background import Background
from ..records.validate import day_to_iso
from . import centrality as cen
from .contagion import HawkesFit, current_hazard, fit_hawkes
from .exposure import exposure_counts
from .groups import GroupResult, audit_labels, choose_resolution, leiden_communities, merge_groups
from .layers import FLAG_OFFENDING, FLAG_VICTIM, Network, iso_days, join_segments, sorted_codes

# parts of the betweenness sources (cen.BetweennessJob): fine enough for two threads to share the last of
# them (about 2 s each at 1M people), fixed so that the sums, hence the values, are the same on any machine
BETWEENNESS_PARTS = 8

PERSON_COLUMNS = {
    "degree": "distinct co-offenders in the window",
    "weighted_degree": "co-offending ties weighted by shared incidents",
    "degree_centrality": "degree / (people in the network - 1), as networkx",
    "betweenness": "betweenness centrality on the co-offending layer, normalised as networkx (sampled above a size limit: see the manifest)",
    "eigenvector": "eigenvector centrality (unit norm) on the co-offending layer, as networkx",
    "core_number": "k-core number on the co-offending layer",
    "exposure_1": "distinct shooting victims in the window at co-offending distance exactly 1",
    "exposure_2": "distinct shooting victims in the window at co-offending distance exactly 2",
    "victim_distance": "co-offending steps to the nearest shooting victim in the window (0 = shot; -1 = none within the policy's maximum)",
    "exposure_decayed_1": "sum over shooting victims at distance 1 of 0.5^(days since their latest shooting / half-life)",
    "exposure_decayed_2": "the same for shooting victims at distance 2",
    "shooter_exposure_1": "distinct shooting suspects (offending role in a shooting in the window) at distance exactly 1",
    "shooter_exposure_2": "distinct shooting suspects at distance exactly 2",
    "contagion_background": "background hazard of being shot (per year) from the contagion model's attributes",
    "contagion_network": "network-driven hazard of being shot (per year) at as_of: co-offenders' past shootings",
    "contagion_hazard": "total hazard of being shot per year at as_of (background + network)",
}


@dataclass
class Analytics:
    person: pd.DataFrame                     # one row per network person, PERSON_COLUMNS
    groups: GroupResult
    group_table: pd.DataFrame
    conflicts: pd.DataFrame
    contagion: HawkesFit | None
    contagion_events: pd.DataFrame
    betweenness_info: dict = field(default_factory=dict)
    # how groups were detected: the Leiden resolution, and with ``auto`` the criterion and the scan
    group_detection: dict = field(default_factory=dict)


def is_male(sex) -> np.ndarray:
    """Boolean per value of a ``sex`` column: coded male by :func:`fdnet.records.schema.normalise_sex`,
    the one reading of ``sex`` for every model that uses it (the contagion background and the
    calibration's demographic baseline). Missing values are not male.

    >>> is_male(pd.Series(["M", " male ", "1", "F", "2", None, "Male", "u"])).tolist()
    [True, True, True, False, False, False, True, False]
    """
    from ..records.schema import normalise_sex
    return (normalise_sex(pd.Series(sex, dtype=object)) == "M").to_numpy(dtype=bool)


def _covariates(net: Network, persons: pd.DataFrame | None, off: np.ndarray, violent: np.ndarray,
                as_of: str) -> tuple[np.ndarray, list[str]]:
    from ..scoring.score import age_on
    n = net.n_persons
    cols = {"intercept": np.ones(n)}
    age = age_on(persons, net.person_ids, as_of)
    cols["age_under_25"] = (np.nan_to_num(age, nan=99) < 25).astype(float)
    male = np.zeros(n)
    if persons is not None and "sex" in persons:
        male = is_male(persons.set_index("person_id")["sex"].reindex(net.person_ids)).astype(float)
    cols["male"] = male
    cols["violent_offender"] = (violent > 0).astype(float)
    cols["offender"] = (off > 0).astype(float)
    names = ["intercept"] + [c for c in list(cols)[1:] if 0 < cols[c].sum() < n]
    return np.column_stack([cols[c] for c in names]), names


def analyze(net: Network, *, persons: pd.DataFrame | None, audit: pd.DataFrame | None,
            relations: pd.DataFrame | None, policy, previous_groups: pd.DataFrame | None = None,
            as_of: str | None = None) -> Analytics:
    """Run every network analytic of the policy on ``net``.

    BLAS runs single-threaded here: the analytics' dense algebra is on
    vectors (ARPACK's) and matrices of a few columns, where OpenBLAS's
    threads only spin; on a shared 2-core machine they made the eigenvector
    ten times slower (3.3 s against 0.35 s at 200k people), and one thread
    also fixes the order of every floating-point sum.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _analyze(net, persons=persons, audit=audit, relations=relations, policy=policy,
                        previous_groups=previous_groups, as_of=as_of)


def _analyze(net: Network, *, persons, audit, relations, policy, previous_groups, as_of) -> Analytics:
    as_of = as_of or day_to_iso(net.as_of_day)
    co = net.layers["co_offending"]
    ap = policy.analytics

    # --- centrality -------------------------------------------------------------
    # Betweenness is most of this stage's work and runs in the Cython core with
    # the GIL released: its parts run on one core in a background thread while
    # this thread does everything else on the other (exposure, contagion,
    # Leiden), and this thread takes the parts still left when it reaches the
    # group table, the first use. The values depend on the number of parts
    # only, never on which thread ran which. At 1M people the stage took 25.0 s
    # in series, 18.4 s with one background thread and no sharing.
    bw_job = cen.BetweennessJob(co, exact_work=ap.betweenness_exact_work, k=ap.betweenness_pivots,
                                seed=ap.seed, n_parts=BETWEENNESS_PARTS)
    bw_thread = Background(bw_job.work)
    try:
        return _analyze_with(net, bw_job, bw_thread, persons=persons, audit=audit, relations=relations,
                             policy=policy, previous_groups=previous_groups, as_of=as_of)
    except BaseException:
        bw_job.cancel()             # an error here: the background thread stops after its current part
        raise


def _analyze_with(net: Network, bw_job, bw_thread, *, persons, audit, relations, policy, previous_groups,
                  as_of) -> Analytics:
    co = net.layers["co_offending"]
    n = net.n_persons
    ap = policy.analytics
    I = net.incidence
    inc = I.inc
    off = (I.flags & FLAG_OFFENDING) != 0
    vic = (I.flags & FLAG_VICTIM) != 0
    shooting = net.shooting_incidents()
    person = pd.DataFrame({"person_id": net.person_ids})
    person["degree"] = co.degree()
    person["weighted_degree"] = cen.weighted_degree(co)
    person["degree_centrality"] = cen.degree_centrality(co)
    person["eigenvector"] = cen.eigenvector(co)
    person["core_number"] = cen.core_number(co)

    # --- exposure ----------------------------------------------------------------
    victims = net.shooting_victims()
    e1, e2 = exposure_counts(co.indptr, co.indices, victims)
    person["exposure_1"] = e1
    person["exposure_2"] = e2
    dist = _core.bfs_distances(co.indptr, co.indices, victims, ap.exposure_max_distance)
    person["victim_distance"] = dist
    rc = net.role_counts()
    shot = vic & shooting[inc]
    last_shot = rc["last_victimization_day"]
    wts = np.power(0.5, (net.as_of_day - last_shot[victims]) / ap.exposure_half_life_days)
    w1, w2 = _core.exposure_weighted(co.indptr, co.indices, victims, np.ascontiguousarray(wts, dtype=np.float64))
    person["exposure_decayed_1"] = np.round(w1, 6)
    person["exposure_decayed_2"] = np.round(w2, 6)
    shooters = np.unique(I.person[off & shooting[inc]]).astype(np.int32)
    s1, s2 = exposure_counts(co.indptr, co.indices, shooters)
    person["shooter_exposure_1"] = s1
    person["shooter_exposure_2"] = s2

    # --- contagion ---------------------------------------------------------------
    fit = None
    ev_frame = pd.DataFrame(columns=["incident_id", "date", "person_id", "p_background", "likely_infector",
                                     "infector_incident_id", "infector_date", "infector_probability"])
    person["contagion_background"] = 0.0
    person["contagion_network"] = 0.0
    person["contagion_hazard"] = 0.0
    if policy.contagion.enabled:
        X, names = _covariates(net, persons, rc["offending"], rc["violent_offending"], as_of)
        g = co.csr if policy.contagion.tie_weight == "incidents" else co.csr.unweighted()
        ev_person = I.person[shot].astype(np.int64)
        ev_inc = inc[shot]
        t0 = net.window_start_day
        ev_time = (net.inc_day[ev_inc] - t0).astype(float)
        T = float(net.as_of_day - t0 + 1)
        fit = fit_hawkes(g, ev_person, ev_time, X, T, max_lag=float(policy.contagion.max_lag_days),
                         standard_errors=policy.contagion.standard_errors, names=names)
        if fit.n_events:
            bg, nw = current_hazard(g, ev_person, ev_time, X, fit, at=T,
                                    max_lag=float(policy.contagion.max_lag_days))
            person["contagion_background"] = np.round(bg * 365.25, 8)
            person["contagion_network"] = np.round(nw * 365.25, 8)
            person["contagion_hazard"] = np.round((bg + nw) * 365.25, 8)
            par = fit.parent
            has = (par >= 0) & (fit.parent_prob > fit.p_background)
            ev_frame = pd.DataFrame({
                "incident_id": net.incident_ids[ev_inc],
                "date": iso_days(net.inc_day[ev_inc]).to_numpy(zero_copy_only=False).astype(object),
                "person_id": net.person_ids[ev_person],
                "p_background": np.round(fit.p_background, 6),
                "likely_infector": np.where(has, net.person_ids[ev_person[np.maximum(par, 0)]], ""),
                "infector_incident_id": np.where(has, net.incident_ids[ev_inc[np.maximum(par, 0)]], ""),
                "infector_date": np.where(has, iso_days(net.inc_day[ev_inc[np.maximum(par, 0)]]).to_numpy(
                    zero_copy_only=False).astype(object), ""),
                "infector_probability": np.where(has, np.round(fit.parent_prob, 6), 0.0),
            }).sort_values(["date", "incident_id", "person_id"], kind="stable").reset_index(drop=True)

    # --- groups ------------------------------------------------------------------
    gp = policy.groups
    labels, detection = None, {"detect": False}
    if gp.detect and gp.resolution == "auto":
        choice = choose_resolution(n, co, audit_labels=audit_labels(net.person_ids, audit), seed=gp.seed,
                                   min_size=gp.min_size)
        labels, detection = choice.labels, {"detect": True, **choice.summary()}
    elif gp.detect:
        labels = leiden_communities(n, co, resolution=float(gp.resolution), seed=gp.seed)
        detection = {"detect": True, "resolution": float(gp.resolution), "criterion": "policy"}
    groups = merge_groups(net.person_ids, labels, audit, min_size=gp.min_size, layer=co,
                          audit_prior=gp.audit_prior, previous=previous_groups, match_previous=gp.match_previous)
    primary = groups.primary.reindex(net.person_ids).fillna("").to_numpy(dtype=object)
    conflicts = _conflicts(net, primary, relations, gp.conflict_min_shootings, gp.conflict_min_violent)
    bw_job.work()                   # share the parts not yet taken
    bw_thread.result()
    bw = bw_job.result()
    person.insert(int(person.columns.get_loc("degree_centrality")) + 1, "betweenness", bw.values)
    table = _group_table(net, person, groups, primary, conflicts)
    info = {"exact": bw.exact, "sources": bw.pivots, "sampled_components": bw.sampled_components,
            "error_bound": bw.eps, "confidence": 1 - bw.alpha}
    co.csr.drop_views()             # the views above are not read after the analytics
    return Analytics(person, groups, table, conflicts, fit, ev_frame, info, detection)


def _conflicts(net: Network, primary: np.ndarray, relations: pd.DataFrame | None,
               min_shootings: int = 1, min_violent: int = 0) -> pd.DataFrame:
    """Conflicts and alliances: from group_relations, plus conflicts inferred from violence between groups.

    Violence between two groups: an incident where a member of one holds an
    offending role and a member of the other is a victim. A conflict is
    inferred from at least ``min_shootings`` shootings, or (when
    ``min_violent`` > 0) that many violent incidents, between them; its
    evidence is all those incidents. On the synthetic city, non-shooting
    violence between groups was mostly unrelated to feuds, hence the default
    of shootings only.
    """
    cols = ["group_a", "group_b", "relation", "source", "shootings", "incidents", "incident_ids",
            "first_date", "last_date"]
    parts = []
    if relations is not None and len(relations):
        ra, rb = relations["group_a"].to_numpy(dtype=object), relations["group_b"].to_numpy(dtype=object)
        swap = ra.astype(str) > rb.astype(str)
        dates = (relations["date"] if "date" in relations else pd.Series([None] * len(relations)))
        dates = dates.fillna("").replace({None: ""}).to_numpy(dtype=object)
        parts.append(pd.DataFrame({"group_a": np.where(swap, rb, ra), "group_b": np.where(swap, ra, rb),
                                   "relation": relations["relation"].to_numpy(dtype=object),
                                   "source": "group_relations", "shootings": 0, "incidents": 0,
                                   "incident_ids": "", "first_date": dates, "last_date": dates}))
    vz = net.layers["victimization"]
    shooting_all = net.shooting_incidents()
    if vz.n_edges:
        # groups as integer codes in ascending name order ("" first), so comparing codes compares names
        gcode, names = sorted_codes(primary.astype(str))
        none = int(np.searchsorted(names, "")) if len(names) and names[0] == "" else -1
        ga, gb = gcode[vz.src], gcode[vz.dst]
        keep = np.flatnonzero((ga != none) & (gb != none) & (ga != gb))
        # every (edge, evidence incident) pair of the kept edges, vectorised
        cnt = np.diff(vz.ev_indptr)[keep]
        pos = np.repeat(vz.ev_indptr[keep], cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        incs = vz.ev_incident[pos]
        e_of = np.repeat(keep, cnt)
        ok = net.inc_violent[incs] | shooting_all[incs]
        x, y = ga[e_of[ok]], gb[e_of[ok]]
        df = pd.DataFrame({"a": np.minimum(x, y), "b": np.maximum(x, y), "inc": incs[ok]}).drop_duplicates()
        if len(df):
            inc = df["inc"].to_numpy()
            df["shooting"] = shooting_all[inc]
            df["day"] = net.inc_day[inc]
            stats = df.groupby(["a", "b"], sort=True).agg(
                shootings=("shooting", "sum"), incidents=("inc", "size"), first=("day", "min"), last=("day", "max"))
            stats = stats[(stats["shootings"] >= min_shootings) |
                          ((min_violent > 0) & (stats["incidents"] >= min_violent))]
            if len(stats):
                # the evidence of the kept pairs only, in (day, incident) order, joined in Arrow
                sel = df.merge(stats[[]].reset_index(), on=["a", "b"])
                sel = sel.sort_values(["a", "b", "day", "inc"], kind="stable")
                bounds = np.concatenate([[0], np.cumsum(sel.groupby(["a", "b"], sort=True).size().to_numpy())])
                ids = join_segments(net.incident_ids[sel["inc"].to_numpy()], bounds)
                idx = stats.index
                parts.append(pd.DataFrame({
                    "group_a": names[idx.get_level_values(0).to_numpy()].astype(object),
                    "group_b": names[idx.get_level_values(1).to_numpy()].astype(object),
                    "relation": "conflict", "source": "inferred",
                    "shootings": stats["shootings"].to_numpy().astype(int),
                    "incidents": stats["incidents"].to_numpy().astype(int),
                    "incident_ids": ids,
                    "first_date": iso_days(stats["first"].to_numpy()).to_numpy(zero_copy_only=False),
                    "last_date": iso_days(stats["last"].to_numpy()).to_numpy(zero_copy_only=False)}))
    out = pd.concat([p for p in parts], ignore_index=True) if parts else pd.DataFrame(columns=cols)
    out = out[cols].drop_duplicates(["group_a", "group_b", "relation", "source"])
    return out.sort_values(["group_a", "group_b", "relation", "source"], kind="stable").reset_index(drop=True)


def _group_table(net: Network, person: pd.DataFrame, groups: GroupResult, primary: np.ndarray,
                 conflicts: pd.DataFrame) -> pd.DataFrame:
    rc = net.role_counts()
    pf = pd.DataFrame({"person_id": net.person_ids, "group": primary, "active": rc["offending"] > 0,
                       "shot": rc["shooting_victimization"] > 0, "shooter": rc["gun_offending"] > 0,
                       "betweenness": person["betweenness"].to_numpy(), "degree": person["degree"].to_numpy()})
    pf = pf[pf["group"] != ""]
    members = groups.table.groupby("group")["person_id"].nunique()
    by_src = groups.table.groupby(["group", "source"]).size().unstack(fill_value=0)
    agg = pf.groupby("group").agg(members_in_network=("person_id", "size"), active_in_window=("active", "sum"),
                                  members_shot=("shot", "sum"), members_suspected_in_shootings=("shooter", "sum"))
    top = (pf.sort_values(["group", "betweenness", "degree", "person_id"], ascending=[True, False, False, True],
                          kind="stable").drop_duplicates("group").set_index("group"))
    t = pd.DataFrame({"group": sorted(set(members.index) | set(agg.index))})
    t["members"] = t["group"].map(members).fillna(0).astype(int)
    for s in ("audit", "detected", "both"):
        t[f"members_{s}"] = t["group"].map(by_src[s] if s in by_src else pd.Series(dtype=int)).fillna(0).astype(int)
    for c in agg.columns:
        t[c] = t["group"].map(agg[c]).fillna(0).astype(int)
    t["most_central"] = t["group"].map(top["person_id"]).astype(object).fillna("")
    t["most_central_betweenness"] = t["group"].map(top["betweenness"]).fillna(0.0).round(8)

    # each group's partners in conflict and in alliance, ';'-joined in name order
    a, b = conflicts["group_a"].to_numpy(dtype=object), conflicts["group_b"].to_numpy(dtype=object)
    kind = conflicts["relation"].to_numpy(dtype=object)
    pairs = pd.DataFrame({"g": np.concatenate([a, b]), "o": np.concatenate([b, a]),
                          "kind": np.concatenate([kind, kind])}).drop_duplicates()
    pairs = pairs.sort_values(["g", "o"], kind="stable")
    for rel, col in (("conflict", "conflicts"), ("alliance", "alliances")):
        sub = pairs[pairs["kind"] == rel]
        gs, start = np.unique(sub["g"].to_numpy(dtype=object).astype(str), return_index=True)
        joined = join_segments(sub["o"].to_numpy(dtype=object).astype(str), np.append(start, len(sub)))
        grp = t["group"].to_numpy(dtype=object).astype(str)
        at = np.minimum(np.searchsorted(gs, grp), max(len(gs) - 1, 0))
        found = (gs[at] == grp) if len(gs) else np.zeros(len(grp), bool)
        t[col] = pd.array(np.where(found, joined[at] if len(gs) else "", "").astype(object), dtype="str")
    return t.sort_values(["members_shot", "members_in_network", "group"], ascending=[False, False, True],
                         kind="stable").reset_index(drop=True)
