"""CLI command ``fdnet evaluate`` (CONTRACT.md sections 2 and 6; docs/evaluation.md).

::

    fdnet evaluate DATA_DIR --out DIR [--as-of YYYY-MM-DD] [--policy POLICY.yaml] [--audit-db URL] [--json]

Writes evaluation.json, evaluation.md, evaluation.html and evaluation_cohort.csv into DIR (new or
empty; all or nothing) and prints the person-level effects as a table (or, with ``--json``, the
effects as JSON). Bad input exits 2 with one paragraph on stderr.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _ci(ci) -> str:
    return "—" if not ci or ci[0] is None else f"{ci[0]:.2f}–{ci[1]:.2f}"


def _num(v, nd: int = 2) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def register(app: typer.Typer) -> None:
    """Add ``fdnet evaluate`` to the fdnet CLI."""

    @app.command("evaluate")
    def evaluate_cmd(
        data_dir: Path = typer.Argument(..., help="Input folder with an interventions table (and the records)."),
        out_dir: Path = typer.Option(..., "--out", help="Folder to create for the evaluation; must be new or empty."),
        as_of: Optional[str] = typer.Option(None, "--as-of", help="YYYY-MM-DD. Records and interventions dated "
                                            "after it are ignored. Default: the latest incident date."),
        policy: Optional[Path] = typer.Option(None, "--policy", help="Policy YAML (its `evaluation` section)."),
        mapping: Optional[Path] = typer.Option(None, "--mapping", help="Column/role mapping YAML."),
        audit_db: Optional[str] = typer.Option(None, "--audit-db", envvar="FDNET_AUDIT_DB",
                                               help="Also read the outreach outcomes recorded in the workspace's "
                                               "audit log (SQLite path or SQLAlchemy URL)."),
        as_json: bool = typer.Option(False, "--json", help="Print the effects as JSON instead of a table."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or table."),
    ):
        """Did it work? Compare the people who received each intervention with matched people who did not.

        For each intervention kind, outcome (shooting, violent, offending) and horizon: the risk ratio with
        its 95% interval, the naive comparison and an E-value; the spillover to co-offenders, a difference
        in differences of treated groups and the city's shootings around the programme's start.
        """
        from rich.table import Table

        from ..console import err, out, print_table, progress
        from ..policy import load_policy
        from ..runfolder import check_run_dir
        from . import STEPS, evaluate, write_evaluation

        check_run_dir(out_dir, what="DIR", earlier="an earlier evaluation")
        pol = load_policy(policy)
        with progress(not quiet and not as_json, len(STEPS)) as prog:
            ev = evaluate(data_dir, as_of=as_of, policy=pol, audit_db=audit_db, mapping_path=mapping, progress=prog)
            prog("write the evaluation")
            write_evaluation(ev, out_dir)
        if as_json:
            slim = [{k: v for k, v in e.items() if k not in ("curve", "by_months_since")} for e in ev.effects]
            out.file.write(json.dumps({"as_of": ev.as_of, "out": str(out_dir), "effects": slim}, indent=1,
                                      sort_keys=True) + "\n")
            return
        for n in ev.notes:
            err.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
        if quiet:
            return
        t = Table(title=f"Person-level effects (records as of {ev.as_of}; risk ratio < 1: fewer outcomes than "
                        "matched comparisons)")
        for c in ("kind", "outcome", "days", "treated", "comparison", "risk ratio", "95% interval", "naive",
                  "E-value"):
            t.add_column(c, justify="right" if c in ("days", "treated", "comparison", "risk ratio", "naive",
                                                      "E-value") else "left")
        for e in ev.effects:
            t.add_row(e["kind"], e["outcome"], str(e["horizon_days"]), str(e["treated"]), str(e["comparison"]),
                      _num(e["risk_ratio"]), _ci(e["ci95"]), _num(e["naive"]["risk_ratio"]),
                      _num(e["e_value"]["point"]))
        if ev.effects:
            print_table(t)
        else:
            out.print("No intervention kind had enough matched treated people followed for a whole horizon.")
        for e in ev.spillover:
            if e["horizon_days"] == max(x["horizon_days"] for x in ev.spillover) and e["outcome"] == "violent":
                out.print(f"spillover to co-offenders of {e['kind']}: violent, {e['horizon_days']} days, risk ratio "
                          f"{_num(e['risk_ratio'])} ({_ci(e['ci95'])}), {e['treated']:,} co-offenders")
        c = ev.city or {}
        if c.get("estimable"):
            out.print(f"city shootings from {c['programme_start']}: level change {_num(c['level_change']['rate_ratio'])} "
                      f"({_ci(c['level_change']['ci95'])})")
        out.print(f"wrote {out_dir}/evaluation.html, evaluation.md, evaluation.json and evaluation_cohort.csv")
