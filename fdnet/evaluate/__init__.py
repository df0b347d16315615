"""Did it work? Programme evaluation from intervention records (``fdnet evaluate``, CONTRACT.md section 6).

For each intervention kind in the records (the input folder's ``interventions`` table, and the
outreach outcomes recorded in the workspace's audit log where one is named), :func:`evaluate`
compares the people who received it with people who were eligible on the same date and did not, by
propensity-score matching within monthly cohorts (:mod:`fdnet.evaluate.person`), for each outcome
(``shooting``: shoots or is shot; ``violent``; ``offending``) and horizon. Beside the person-level
effects it estimates the spillover to the treated people's co-offenders, a difference in differences
of treated against matched groups and a city-wide interrupted time series of shootings around the
programme's start (:mod:`fdnet.evaluate.programme`). :func:`write_evaluation` writes
``evaluation.json``, ``evaluation.md``, ``evaluation.html`` and ``evaluation_cohort.csv`` into a new
or empty folder, all or nothing.

>>> import tempfile, pathlib
>>> from fdnet.synth import generate_city, write_city
>>> from fdnet.synth.interventions import plant_call_in
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_city(plant_call_in(generate_city(4000, seed=3), effect=0.5, seed=1), d / "city")
>>> ev = evaluate(d / "city")
>>> sorted({e["kind"] for e in ev.effects})
['call_in_attended', 'call_in_invited']
>>> e = ev.effect("call_in_attended", "offending", 365)
>>> e["treated"] > 0 and len(e["ci95"]) == 2
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..policy import Policy, load_policy, policy_from_dict
from ..records.retention import apply_retention
from ..records.validate import Records, day_to_iso, load_records

__all__ = ["Evaluation", "evaluate", "write_evaluation", "merge_interventions", "STEPS"]

#: the progress steps of :func:`evaluate` and ``fdnet evaluate`` (one per intervention kind counts once)
STEPS = ("read and validate", "index the records", "evaluate each kind", "spillover to co-offenders", "groups",
         "city time series", "write the evaluation")


@dataclass
class Evaluation:
    """A finished evaluation: the effects and everything needed to write and explain them."""

    as_of: str
    policy: Policy
    inputs: dict
    interventions: pd.DataFrame           # the de-duplicated interventions used (input and workspace)
    effects: list[dict]
    spillover: list[dict] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)
    city: dict | None = None
    notes: list[str] = field(default_factory=list)
    kinds: list[dict] = field(default_factory=list)       # per kind: people, in records, evaluated
    cohort: pd.DataFrame | None = None                    # evaluation_cohort.csv
    balance: dict = field(default_factory=dict)           # (kind, horizon) -> balance rows

    def effect(self, kind: str, outcome: str, horizon_days: int | None = None, population: str = "treated") -> dict:
        """The effect row of ``kind`` and ``outcome`` (the longest horizon unless one is named)."""
        rows = [e for e in (self.effects if population == "treated" else self.spillover)
                if e["kind"] == kind and e["outcome"] == outcome
                and (horizon_days is None or e["horizon_days"] == horizon_days)]
        if not rows:
            raise KeyError(f"no effect for {kind} / {outcome} / {horizon_days}")
        return max(rows, key=lambda e: e["horizon_days"])

    def __repr__(self) -> str:
        return (f"<Evaluation as_of={self.as_of} kinds={len(self.kinds)} effects={len(self.effects)} "
                f"spillover={len(self.spillover)} groups={len(self.groups)}>")


def merge_interventions(table: pd.DataFrame | None, workspace: pd.DataFrame | None) -> pd.DataFrame:
    """The input folder's interventions and the workspace's, one row per (person_id, kind, date).

    The input table wins a tie (it is listed first); rows come out sorted by person_id, kind, date.

    >>> a = pd.DataFrame({"person_id": ["P1"], "kind": ["outreach_contacted"], "date": ["2025-01-02"], "source": ["csv"]})
    >>> b = pd.DataFrame({"person_id": ["P1", "P2"], "kind": ["outreach_contacted"] * 2,
    ...                   "date": ["2025-01-02", "2025-02-01"], "source": ["fdnet-workspace"] * 2})
    >>> merge_interventions(a, b)[["person_id", "source"]].values.tolist()
    [['P1', 'csv'], ['P2', 'fdnet-workspace']]
    """
    cols = ["person_id", "kind", "date", "source"]
    parts = []
    for df in (table, workspace):
        if df is not None and len(df):
            d = pd.DataFrame({c: (df[c].astype(str).to_numpy() if c in df else "") for c in cols})
            d["date"] = d["date"].str[:10]
            parts.append(d)
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    out = pd.concat(parts, ignore_index=True)
    out = out.drop_duplicates(["person_id", "kind", "date"], keep="first")
    return out.sort_values(["person_id", "kind", "date"], kind="stable").reset_index(drop=True)


def _policy(policy) -> Policy:
    if isinstance(policy, (str, Path)):
        return load_policy(policy)
    if isinstance(policy, dict):
        return policy_from_dict(policy)
    return policy or Policy()


def evaluate(data_dir: str | Path, *, as_of: str | None = None, policy=None, audit_db: str | None = None,
             mapping_path: str | Path | None = None, today: str | None = None,
             progress=None) -> Evaluation:
    """Evaluate every intervention kind found in ``data_dir`` (and the workspace's log at ``audit_db``)."""
    # imported here, not at the top: ``fdnet.cli`` imports this package to register ``fdnet evaluate``, and
    # the cohort's network analytics pull in scipy.optimize (about 0.5 s), which no other command should pay
    from .cohort import Context, first_any_day, treatments
    from .person import balance as balance_table, design, outcome_effects
    step = progress or (lambda name: None)
    pol = _policy(policy)
    cfg = pol.evaluation
    step("read and validate")
    rec: Records = apply_retention(load_records(data_dir, as_of=as_of, mapping_path=mapping_path, today=today),
                                   pol.retention_days)
    notes = list(rec.notes)
    workspace = None
    if audit_db:
        from ..audit.log import AuditLog
        log = AuditLog(audit_db)
        workspace = log.interventions()
        notes.append(f"{len(workspace)} outreach outcome(s) read from the workspace's audit log.")
    iv = merge_interventions(rec.interventions, workspace)
    if not len(iv):
        raise InputError("no interventions to evaluate: the input folder has no interventions table (or it is "
                         "empty) and no workspace outcomes were read; see docs/data-format.md section 7.1",
                         file=str(data_dir))
    # interventions dated after as_of take no part, like every other record
    day = pd.to_datetime(iv["date"], errors="coerce", format="%Y-%m-%d")
    iv_day = ((day - pd.Timestamp("1970-01-01")).dt.days).to_numpy(dtype=float)
    late = ~(iv_day <= rec.as_of_day)
    if late.any():
        notes.append(f"{int(late.sum())} intervention(s) dated after the as-of date {rec.as_of} were set aside.")
    iv = iv[~late].reset_index(drop=True)

    step("index the records")
    ctx = Context.build(rec, extra_ids=iv["person_id"].to_numpy(dtype=object), seed=cfg.seed)
    ev = ctx.ev
    first_any = first_any_day(iv, ev)
    in_records = np.zeros(len(ev.person_ids), bool)
    in_records[ev.persons_with("any")] = True

    effects: list[dict] = []
    kinds: list[dict] = []
    cohort_parts: list[pd.DataFrame] = []
    balance: dict = {}
    step("evaluate each kind")
    for kind in sorted(iv["kind"].unique()):
        tr = treatments(iv, kind)
        code = ev.code_of(tr["person_id"].to_numpy())
        known = in_records[code]
        info = {"kind": kind, "people": int(len(tr)), "not_in_records": int((~known).sum()),
                "first_date": day_to_iso(int(tr["day"].min())), "last_date": day_to_iso(int(tr["day"].max())),
                "horizons": []}
        t_code, t_day = code[known], tr["day"].to_numpy(dtype=np.int64)[known]
        for h in cfg.horizons_days:
            # a comparison may not have been treated with anything before its follow-up ends
            not_comparison = first_any <= rec.as_of_day
            d = design(ctx, t_code, t_day, not_comparison, horizon=h, as_of_day=rec.as_of_day, cfg=cfg)
            n_matched = int(len(np.unique(d.t_rows)))
            info["horizons"].append({"horizon_days": h, "matched_treated": n_matched, "left_out": d.excluded})
            if n_matched < cfg.min_treated:
                notes.append(f"{kind}, {h} days: {n_matched} matched treated people (fewer than "
                             f"evaluation.min_treated = {cfg.min_treated}); no effect is estimated.")
                continue
            rows = outcome_effects(ctx, d, kind=kind, horizon=h, cfg=cfg)
            effects += rows
            balance[(kind, h)] = balance_table(d)
            m = d.weight > 0
            cohort_parts.append(pd.DataFrame({
                "kind": kind, "horizon_days": h, "person_id": ev.person_ids[d.code[m]],
                "group": np.where(d.treated[m], "treated", "comparison"),
                "index_date": d.day[m].astype("datetime64[D]").astype(str),
                "weight": np.round(d.weight[m], 6), "propensity_logit": np.round(d.logit[m], 6),
                **{f"{o}_after": (ev.count(k, d.code[m], d.day[m] + 1, d.day[m] + h + 1) > 0).astype(int)
                   for o, k in (("shooting", "shooting"), ("violent", "violent"), ("offending", "offending"))},
            }))
        kinds.append(info)
    cohort = pd.concat(cohort_parts, ignore_index=True) if cohort_parts else None
    out = Evaluation(rec.as_of, pol, rec.inputs, iv, effects, notes=notes, kinds=kinds, cohort=cohort,
                     balance=balance)
    from .programme import city_series, group_effects, spillover_effects
    step("spillover to co-offenders")
    out.spillover = spillover_effects(ctx, iv, first_any, as_of_day=rec.as_of_day, cfg=cfg)
    step("groups")
    out.groups = group_effects(ctx, iv, as_of_day=rec.as_of_day, cfg=cfg)
    step("city time series")
    out.city = city_series(rec, iv, cfg=cfg)
    return out


def write_evaluation(ev: Evaluation, out_dir: str | Path) -> Path:
    """Write the evaluation's files into the new or empty folder ``out_dir``, all or nothing."""
    from ..atomic import write_staged
    from ..runfolder import check_run_dir
    from .report import evaluation_files
    out_dir = Path(out_dir)
    check_run_dir(out_dir, what="DIR", earlier="an earlier evaluation")
    return write_staged(evaluation_files(ev), out_dir, prefix=".fdnet-evaluate-staging-", what="evaluation folder")
