"""report.html: a self-contained, offline report of one run.

Rendered with Jinja2 with autoescaping on, so every string that came from
the input (IDs, group names, offense text) is HTML-escaped. No external
URL is referenced: styles are inline, there are no scripts or fonts to
fetch, and the page prints cleanly to PDF.
"""
from __future__ import annotations

from importlib import resources

import jinja2
import pandas as pd

from .. import __version__

_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: resources.files("fdnet.report").joinpath("templates", name).read_text("utf-8")),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


def _rows(df: pd.DataFrame, cols: list[str], limit: int | None = None) -> list[dict]:
    d = df[cols] if limit is None else df[cols].head(limit)
    return d.to_dict("records")


def render_report(*, rec, summary: dict, lists: dict[str, pd.DataFrame], scores: pd.DataFrame,
                  groups, policy, contagion: dict | None = None) -> str:
    rej = rec.rejected
    reasons = []
    if len(rej):
        r = rej.assign(kind=rej["reason"].str.replace(r"'[^']*'", "'…'", regex=True))
        reasons = (r.groupby(["file", "kind"]).size().reset_index(name="rows")
                   .sort_values(["file", "rows", "kind"], ascending=[True, False, True]).to_dict("records"))
    grp = (scores[scores["group"] != ""].groupby("group")
           .agg(members=("person_id", "size"), shooting_victims=("shooting_victimization", lambda s: int((s > 0).sum())),
                gun_offenders=("gun_offending", lambda s: int((s > 0).sum())))
           .reset_index().sort_values(["shooting_victims", "members", "group"], ascending=[False, False, True]))
    tpl = _ENV.get_template("report.html")
    return tpl.render(
        version=__version__, summary=summary, inputs=rec.inputs, notes=rec.notes, reasons=reasons,
        rejected_sample=_rows(rej, ["file", "line", "column", "reason"], 50) if len(rej) else [],
        call_in=_rows(lists["call_in"], ["rank", "person_id", "group", "score", "reasons"]),
        custom=_rows(lists["custom_notifications"], ["rank", "person_id", "group", "score", "reasons"]),
        services=_rows(lists["service_referrals"], ["rank", "person_id", "group", "score", "referral_basis", "reasons"]),
        groups=grp.head(30).to_dict("records"), n_groups=int(len(grp)),
        disagreements=int(len(groups.disagreements)), policy=policy.effective(), contagion=contagion,
    )
