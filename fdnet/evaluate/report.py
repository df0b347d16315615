"""The evaluation's files: evaluation.json (CONTRACT.md section 6), evaluation.md, evaluation.html, the cohort.

Everything is a deterministic function of the :class:`~fdnet.evaluate.Evaluation` (no clock, sorted
keys), so the same inputs and policy give the same bytes. The HTML opens offline: inline CSS and
inline SVG charts, no script, no external URL; every text is escaped by Jinja2's autoescape (and by
the chart code for SVG). The Markdown escapes the characters that would break a table or start
markup. ``evaluation_cohort.csv`` lists every person in a matched comparison (spreadsheet-safe).
"""
from __future__ import annotations

import json
import math
from importlib import resources

import jinja2
from markupsafe import Markup, escape

from .. import __version__
from ..report.charts import INK, GRID, PALETTE, _f, _svg_open, monthly_svg
from ..runfolder import canonical_json, policy_sha256, sha256_bytes
from ..tables import csv_bytes

FILES = ("evaluation.json", "evaluation.md", "evaluation.html", "evaluation_cohort.csv")

CAVEATS = (
    "Matching balances what the records measure (prior offending, violence, shootings, victimisation, network "
    "position, group violence, age, sex); it cannot balance what they do not (motivation, family, housing, "
    "a detective's knowledge). The E-value says how strong such an unmeasured difference would have to be to "
    "explain an estimate away.",
    "Outcomes are police records: an intervention that changes how often people are stopped or reported changes "
    "the records as well as the behaviour.",
    "People who died, moved or were imprisoned during the follow-up stop having records; the records do not say "
    "when, so they count as having no outcome.",
    "Only people followed for the whole horizon before the as-of date are used; later interventions wait for a "
    "later evaluation.",
    "Comparison people may have been reached by parts of the programme the records do not show (an outreach "
    "worker's informal contact), which pulls an estimate towards no effect.",
    "The spillover estimate compares co-offenders of treated people with people who had no treated co-offender; "
    "the group and city estimates are associations in time, weaker evidence than the person-level comparison.",
)


def _clean(obj):
    """NaN and infinities as None, so the JSON is standard (and canonical_json accepts it)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def evaluation_dict(ev) -> dict:
    """evaluation.json as data."""
    pol = ev.policy.effective()
    return _clean({
        "fdnet_version": __version__,
        "as_of": ev.as_of,
        "policy": {"evaluation": pol["evaluation"], "retention_days": pol["retention_days"]},
        "policy_sha256": policy_sha256(pol),
        "inputs": ev.inputs,
        "interventions": {"rows": int(len(ev.interventions)),
                          "by_source": {str(k): int(v) for k, v in
                                        sorted(ev.interventions["source"].value_counts().items())}},
        "kinds": ev.kinds,
        "effects": ev.effects,
        "spillover": ev.spillover,
        "groups": ev.groups,
        "city": ev.city,
        "balance": [{"kind": k, "horizon_days": h, "rows": rows} for (k, h), rows in sorted(ev.balance.items())],
        "notes": ev.notes,
        "caveats": list(CAVEATS),
    })


def _fmt(v, nd: int = 2) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def _ci(ci) -> str:
    return "—" if not ci or ci[0] is None else f"{ci[0]:.2f} to {ci[1]:.2f}"


def _verdict(e: dict) -> str:
    lo, hi = e["ci95"]
    if lo is None:
        return "not estimable (no events on one side)"
    if hi < 1:
        return "lower than the comparison"
    if lo > 1:
        return "higher than the comparison"
    return "no difference shown"


def _md(text) -> str:
    """Text safe in a Markdown table cell: no pipes, no line breaks, no markup start."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    for ch in "*_`[]<>#":
        s = s.replace(ch, "\\" + ch)
    return s


def evaluation_md(ev, data: dict) -> str:
    lines = [f"# fdnet evaluation — records as of {ev.as_of}", "",
             f"fdnet {__version__} · policy SHA-256 `{data['policy_sha256'][:16]}…` · "
             f"{data['interventions']['rows']} intervention record(s)", "",
             "## Interventions", "",
             "| kind | people | not in the records | first | last |", "|---|---:|---:|---|---|"]
    for k in ev.kinds:
        lines.append(f"| {_md(k['kind'])} | {k['people']} | {k['not_in_records']} | {k['first_date']} | "
                     f"{k['last_date']} |")
    lines += ["", "## Did the people who received it do better than comparable people who did not?", "",
              "Risk ratio below 1: fewer of the treated had the outcome within the horizon than of their matched "
              "comparisons. The naive ratio sets them against everyone eligible, unmatched.", "",
              "| kind | outcome | horizon (days) | treated | comparison | risk treated | risk comparison | "
              "risk ratio | 95% interval | naive ratio | E-value (interval) | reading |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|"]
    for e in ev.effects:
        lines.append(f"| {_md(e['kind'])} | {e['outcome']} | {e['horizon_days']} | {e['treated']} | "
                     f"{e['comparison']} | {_fmt(e['risk_treated'], 3)} | {_fmt(e['risk_comparison'], 3)} | "
                     f"{_fmt(e['risk_ratio'])} | {_ci(e['ci95'])} | {_fmt(e['naive']['risk_ratio'])} | "
                     f"{_fmt(e['e_value']['point'])} ({_fmt(e['e_value']['ci'])}) | {_verdict(e)} |")
    if not ev.effects:
        lines.append("| — | | | | | | | | | | | no kind had enough matched treated people |")
    seen = set()
    for e in ev.effects:
        if e["kind"] not in seen:
            seen.add(e["kind"])
            lines += ["", f"*{_md(e['kind'])}*: {_md(e['naive']['why_different'])}"]
    if ev.spillover:
        lines += ["", "## Spillover: the co-offenders of the treated", "",
                  "| kind | outcome | horizon (days) | co-offenders | comparison | risk ratio | 95% interval |",
                  "|---|---|---:|---:|---:|---:|---|"]
        for e in ev.spillover:
            lines.append(f"| {_md(e['kind'])} | {e['outcome']} | {e['horizon_days']} | {e['treated']} | "
                         f"{e['comparison']} | {_fmt(e['risk_ratio'])} | {_ci(e['ci95'])} |")
    if ev.groups:
        lines += ["", "## Groups: difference in differences", "",
                  "| kind | outcome | horizon (days) | treated groups | comparison groups | before → after (treated) | "
                  "ratio of rate ratios | 95% interval |", "|---|---|---:|---:|---:|---|---:|---|"]
        for g in ev.groups:
            lines.append(f"| {_md(g['kind'])} | {g['outcome']} | {g['horizon_days']} | {g['treated_groups']} | "
                         f"{g['comparison_groups']} | {g['treated_before']} → {g['treated_after']} | "
                         f"{_fmt(g['ratio_of_rate_ratios'])} | {_ci(g['ci95'])} |")
    c = ev.city or {}
    lines += ["", "## The city: shootings around the programme's start", ""]
    if c.get("estimable"):
        lines.append(f"Start {c['programme_start']} ({c['start_from']}); {c['months_before']} months before, "
                     f"{c['months_after']} after. Level change: rate ratio {_fmt(c['level_change']['rate_ratio'])} "
                     f"({_ci(c['level_change']['ci95'])}); trend change per month "
                     f"{_fmt(c['trend_change_per_month']['rate_ratio'], 3)} "
                     f"({_ci(c['trend_change_per_month']['ci95'])}). {c['method']}.")
    else:
        lines.append(f"Not estimated: {_md(c.get('reason', 'no series'))}.")
    lines += ["", "## Balance", "", "Standardised mean differences before and after matching (|SMD| above 0.1 "
              "is a warning sign).", ""]
    for b in data["balance"]:
        lines += [f"### {_md(b['kind'])}, {b['horizon_days']} days", "",
                  "| covariate | treated | comparison before | comparison after | SMD before | SMD after |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in b["rows"]:
            lines.append(f"| {r['covariate']} | {_fmt(r['treated_mean'])} | {_fmt(r['comparison_mean_before'])} | "
                         f"{_fmt(r['comparison_mean_after'])} | {_fmt(r['smd_before'])} | {_fmt(r['smd_after'])} |")
        lines.append("")
    if ev.notes:
        lines += ["## Notes", ""] + [f"- {_md(n)}" for n in ev.notes] + [""]
    lines += ["## Caveats", ""] + [f"- {c}" for c in CAVEATS] + [""]
    return "\n".join(lines)


def curves_svg(e: dict, width: int = 480, height: int = 240) -> Markup:
    """Cumulative incidence of the outcome, treated against matched comparison, as step lines."""
    days, tr, co = e["curve"]["day"], e["curve"]["treated"], e["curve"]["comparison"]
    label = f"{e['kind']}: share with a {e['outcome']} outcome, days since the intervention"
    out = _svg_open(width, height, label)
    left, right, top, bottom = 44, 10, 24, 34
    pw, ph = width - left - right, height - top - bottom
    # a 1-2-5 step in whole percent, four or five gridlines
    top_v = max([0.02] + tr + co)
    step = next(s for s in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25) if top_v / s <= 5)
    ymax = step * math.ceil(top_v / step - 1e-9)
    xmax = max(days[-1], 1)

    def xy(d, v):
        return f"{_f(left + pw * d / xmax)},{_f(top + ph - ph * v / ymax)}"

    for k in range(int(round(ymax / step)) + 1):
        v = step * k
        y = top + ph - ph * v / ymax
        lab = f"{v:.1%}" if step < 0.01 else f"{v:.0%}"
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>'
                   f'<text x="{left - 4}" y="{_f(y + 4)}" text-anchor="end" class="small">{lab}</text>')
    for d in range(0, xmax + 1, 90):
        out.append(f'<text x="{_f(left + pw * d / xmax)}" y="{top + ph + 14}" text-anchor="middle" '
                   f'class="small">{d}</text>')
    for vals, colour, name in ((co, PALETTE[1], "comparison"), (tr, PALETTE[0], "treated")):
        pts = []
        prev = 0.0
        for d, v in zip(days, vals):
            pts.append(xy(d, prev))
            pts.append(xy(d, v))
            prev = v
        out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="2">'
                   f"<title>{escape(name)}: {vals[-1]:.1%} by day {days[-1]}</title></polyline>")
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="{INK}"/>')
    out.append(f'<rect x="{left + 6}" y="6" width="12" height="4" fill="{PALETTE[0]}"/>'
               f'<text x="{left + 22}" y="12" class="small">treated ({_pct(tr[-1])})</text>'
               f'<rect x="{left + 150}" y="6" width="12" height="4" fill="{PALETTE[1]}"/>'
               f'<text x="{left + 166}" y="12" class="small">matched comparison ({_pct(co[-1])})</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _pct(v: float) -> str:
    return f"{v:.1%}"


_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: resources.files("fdnet.report").joinpath("templates", name).read_text("utf-8")),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


def evaluation_html(ev, data: dict) -> str:
    longest = {}
    for e in ev.effects:
        if e["horizon_days"] >= longest.get((e["kind"], e["outcome"]), {}).get("horizon_days", -1):
            longest[(e["kind"], e["outcome"])] = e
    charts = [{"kind": k, "outcome": o, "svg": curves_svg(e)} for (k, o), e in sorted(longest.items())]
    city = ev.city or {}
    city_svg = None
    if city.get("series"):
        city_svg = monthly_svg([{"month": r["month"], "shootings": r["shootings"],
                                 "without": round(r.get("without_programme", 0))} for r in city["series"]],
                               bar_key="shootings", line_key="without" if city.get("estimable") else None,
                               bar_label="shootings", line_label="expected without the programme (model)")
    return _ENV.get_template("evaluation.html").render(
        ev=ev, data=data, charts=charts, city=city, city_svg=city_svg, caveats=CAVEATS, verdict=_verdict,
        fmt=_fmt, ci=_ci, version=__version__)


def cohort_csv(ev) -> bytes:
    import pandas as pd
    df = ev.cohort if ev.cohort is not None else pd.DataFrame(
        {c: [] for c in ("kind", "horizon_days", "person_id", "group", "index_date", "weight", "propensity_logit",
                         "shooting_after", "violent_after", "offending_after")})
    df = df.sort_values(["kind", "horizon_days", "group", "person_id", "index_date"], kind="stable")
    return csv_bytes(df.reset_index(drop=True))


def evaluation_files(ev) -> dict[str, bytes]:
    """The evaluation folder's files, name -> bytes."""
    data = evaluation_dict(ev)
    js = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    files = {
        "evaluation.json": js.encode("utf-8"),
        "evaluation.md": evaluation_md(ev, data).encode("utf-8"),
        "evaluation.html": evaluation_html(ev, data).encode("utf-8"),
        "evaluation_cohort.csv": cohort_csv(ev),
    }
    return files


__all__ = ["FILES", "evaluation_files", "evaluation_dict", "canonical_json", "sha256_bytes"]
