"""fdnet's command line (CONTRACT.md section 2).

Exit codes: 0 success; 2 bad input or usage (one paragraph on stderr naming
the file, line and column where it applies, no traceback); 1 internal
error. Set FDNET_DEBUG=1 to see the traceback of an internal error.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from . import __version__
from .errors import FdnetError

app = typer.Typer(
    name="fdnet",
    help=("Focused-deterrence network engine: turn police incident records into auditable call-in, "
          "custom-notification and service-referral lists.\n\n"
          "Start with `fdnet demo`, which builds a synthetic city and runs the whole pipeline on it. "
          "Input format: docs/data-format.md; policy file: docs/policy.md."),
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Write or check a policy file.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


from . import console as _con   # noqa: E402  (the consoles and the table printer, shared with the audit commands)

_console = _con.make_console
_plain_cell = _con.plain_cell
_print_table = _con.print_table
out = _con.out
err = _con.err


def _progress(enabled: bool, steps: int | None = None):
    """:func:`fdnet.console.progress` over ``fdnet run``'s stages (:data:`fdnet.run.STEPS`) unless told."""
    from .pipeline import STEPS
    return _con.progress(enabled, steps or len(STEPS))


def _summary_table(result, out_dir: Path) -> None:
    s = result.summary
    t = Table(title=f"fdnet run as of {s['as_of']} → {out_dir}", show_header=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, label in [("persons_in_network", "people in the network"),
                     ("incidents_in_window", f"incidents in the window (from {s['window_start']})"),
                     ("shootings_in_window", "shootings"), ("shooting_victims_in_window", "shooting victims"),
                     ("co_offending_edges", "co-offending ties"), ("victimization_edges", "victimization ties"),
                     ("groups_detected", "groups detected"), ("group_disagreements", "audit/network disagreements"),
                     ("rows_rejected", "input rows rejected (rejected.csv)")]:
        t.add_row(label, f"{s[k]:,}")
    for k, v in s["lists"].items():
        t.add_row(f"{k}.csv", f"{v:,}")
    _print_table(t)
    _run_notes(result)


def run_warnings(manifest: dict) -> list[str]:
    """Loud warnings about a finished run's lists, from its manifest (also for scripts and tests).

    >>> run_warnings({"notes": ["incidents has no 'gun' column: no incident counts as a shooting"],
    ...               "summary": {"shootings_in_window": 0, "lists": {"custom_notifications": 3}}})[0][:60]
    '3 custom notifications were produced from data with no gun c'
    """
    notes = [str(n) for n in manifest.get("notes") or []]
    summary = manifest.get("summary") or {}
    n_cn = int((summary.get("lists") or {}).get("custom_notifications", 0) or 0)
    no_gun = any("no 'gun' column" in n for n in notes)
    no_violent = any("no incident counts as violent" in n for n in notes)
    out = []
    if n_cn and (no_gun or no_violent):
        missing = " and ".join(x for x, on in (("gun", no_gun), ("violence (violent, offense or nibrs_code)",
                                                                 no_violent)) if on)
        out.append(f"{n_cn} custom notifications were produced from data with no {missing} column: they rest on "
                   "other offending and network position, not on gun violence. Map the column (docs/data-format.md) "
                   "or do not use this list for gun-violence deterrence.")
    elif n_cn and not summary.get("shootings_in_window", 1):
        out.append(f"{n_cn} custom notifications were produced although the window holds no shooting: they rest "
                   "on other offending and network position, not on gun violence.")
    return out


def _run_notes(result) -> None:
    """After a run: its manifest notes, then any warning, on standard error (printed even with -q)."""
    manifest = getattr(result, "manifest", None) or {}
    for n in manifest.get("notes") or []:
        err.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
    for w in run_warnings(manifest):
        err.print(f"WARNING: {w}", markup=False, highlight=False, soft_wrap=True, style="bold red")


def _after_run(result, out_dir: Path, quiet: bool) -> None:
    """What `run` and `demo` print when the run folder is written: the summary table (unless quiet)
    on standard output, the manifest's notes and warnings on standard error."""
    if quiet:
        _run_notes(result)
    else:
        _summary_table(result, out_dir)


@app.command()
def run(
    data_dir: Path = typer.Argument(..., help="Folder of input tables: incidents, involvements and optional "
                                    "persons, groups, group_relations (.csv or .parquet)."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder to create; must be new or empty."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="YYYY-MM-DD. Records dated after it are ignored "
                                        "as if absent. Default: the latest incident date."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy YAML (see `fdnet policy init`)."),
    mapping: Optional[Path] = typer.Option(None, "--mapping", help="Column/role mapping YAML; default: "
                                           "DATA_DIR/mapping.yaml when present."),
    previous: Optional[Path] = typer.Option(None, "--previous", help="An earlier run folder (checked against "
                                            "its manifest; an altered one is refused): detected groups keep their "
                                            "names where membership overlaps, and the run writes changes.csv: who "
                                            "entered, left or stayed on each list since then, and why."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
    audit_db: Optional[str] = typer.Option(None, "--audit-db", help="Record the run in this audit log (SQLite "
                                           "path or SQLAlchemy URL; default $FDNET_AUDIT_DB when set). Without "
                                           "either, nothing is written outside RUN_DIR. See docs/audit.md."),
    sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="Key file (kept outside RUN_DIR; make one "
                                            "with `fdnet audit keygen KEYFILE`): write manifest.sig, an "
                                            "HMAC-SHA256 of the manifest that `fdnet verify --key` checks."),
):
    """Run the main job: validate the inputs, build the networks, score, and write the run folder.

    Every input row is either used or written to rejected.csv with its file, line, column and reason.
    A failed or interrupted run leaves RUN_DIR absent or empty (the folder appears in one rename).
    """
    from .pipeline import run as run_pipeline
    from .runfolder import check_run_dir, load_sign_key
    from .policy import load_policy

    check_run_dir(out_dir)
    key = load_sign_key(sign_key, run_dir=out_dir) if sign_key is not None else None
    audit = None
    if audit_db or os.environ.get("FDNET_AUDIT_DB"):
        from .audit.log import AuditLog
        audit = AuditLog(audit_db).ensure()   # fails before the long run if the log can't be appended to
    pol = load_policy(policy)
    with _progress(not quiet) as prog:
        result = run_pipeline(data_dir, out_dir, as_of=as_of, policy=pol, mapping_path=mapping, progress=prog,
                              previous_run=previous, sign_key=key)
    _after_run(result, out_dir, quiet)
    if audit is not None:
        from .errors import UsageError
        try:
            entry = audit.record_run(out_dir, result.manifest)
        except UsageError as exc:
            raise UsageError(f"the run was written to {out_dir} but not recorded in the audit log ({exc}); "
                             f"record it with `fdnet audit record-run {out_dir}`") from None
        if not quiet:
            out.print(f"recorded in the audit log {audit.display_url} as entry {entry.seq}")


@app.command()
def synth(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the synthetic input tables into."),
    people: int = typer.Option(20_000, "--people", min=50, help="Number of people in the city."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same city."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
    call_in_effect: Optional[float] = typer.Option(
        None, "--call-in-effect",
        help="Plant a call-in a year before the period ends, with this risk ratio on its attendees' later "
             "incidents (1 = no effect), and write interventions.csv (docs/synthetic-city.md)."),
    place_effect: Optional[float] = typer.Option(
        None, "--place-effect",
        help="Write place_features.csv (vacant buildings, 311 requests near them, bus stops) with this relative "
             "risk of shootings within 300 m of a vacant building (1 = no effect; docs/places.md)."),
    duplicates: Optional[float] = typer.Option(
        None, "--duplicates",
        help="Give people names and birth dates, and this share of them a second agency's record under a new "
             "ID with a misspelt name or a wrong birth date (truth in truth/identities.csv; docs/resolution.md)."),
):
    """Write a synthetic city's input folder (truth kept apart in OUT/truth/). See docs/synthetic-city.md."""
    from .synth import generate_city, write_city

    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("must be csv or parquet", param_hint="--format")
    if call_in_effect is not None and not 0 < call_in_effect <= 1:
        raise typer.BadParameter("must be more than 0 and at most 1 (1: no effect)", param_hint="--call-in-effect")
    if place_effect is not None and not 1 <= place_effect <= 100:
        raise typer.BadParameter("must be at least 1 (1: no effect) and at most 100", param_hint="--place-effect")
    if duplicates is not None and not 0 <= duplicates <= 1:
        raise typer.BadParameter("must be between 0 and 1 (the share of people with a second record)",
                                 param_hint="--duplicates")
    from .runfolder import check_run_dir   # the one new-or-empty check
    check_run_dir(out_dir, what="the synthetic city's folder", earlier="earlier files")
    with err.status(f"generating a city of {people:,} people (seed {seed})"):
        city = generate_city(n_people=people, seed=seed)
        if call_in_effect is not None:
            from .synth.interventions import plant_call_in
            city = plant_call_in(city, effect=call_in_effect, seed=seed)
        if place_effect is not None:
            from .synth.places import plant_place_features
            city = plant_place_features(city, relative_risk=place_effect, seed=seed)
        if duplicates is not None:
            from .synth.resolution import add_identities
            city = add_identities(city, duplicates=duplicates, seed=seed)
        write_city(city, out_dir, fmt=fmt)
    out.print(f"wrote {city.n_rows('incidents'):,} incidents and {city.n_rows('involvements'):,} involvements "
              f"to {out_dir} (input period ends {city.end_date})")
    if "identities" in city.stats:
        c = city.stats["identities"]
        out.print(f"gave {c['people']:,} people names and birth dates; {c['duplicates']:,} have a second agency's "
                  f"record ({c['involvements_moved']:,} involvements moved to it; truth in {out_dir}/truth/identities.csv)")
    if "call_in" in city.stats:
        c = city.stats["call_in"]
        out.print(f"planted a call-in on {c['date']}: {c['invited']:,} invited, {c['attended']:,} attended, "
                  f"effect {c['effect']:g} ({c['incidents_removed']:,} later incidents removed; truth in "
                  f"{out_dir}/truth/interventions.csv)")
    if "place_effect" in city.stats:
        c = city.stats["place_effect"]
        out.print(f"planted place features: {c['features']:,} features, relative risk {c['relative_risk']:g} within "
                  f"{c['radius_m']:g} m of a vacant building ({c['shootings_removed']:,} shootings removed; truth in "
                  f"{out_dir}/truth/place_effect.csv)")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo-run"), "--out", help="Run folder to create (new or empty)."),
    people: int = typer.Option(20_000, "--people", min=50, help="Size of the synthetic city."),
    seed: int = typer.Option(0, "--seed"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Generate the built-in synthetic city and run the whole pipeline on it.

    The city's input tables go to a temporary folder that is removed afterwards (nothing is written
    outside RUN_DIR); use `fdnet synth` to keep them.
    """
    from .pipeline import run as run_pipeline
    from .runfolder import check_run_dir
    from .synth import generate_city, write_city

    check_run_dir(out_dir)
    with tempfile.TemporaryDirectory(prefix="fdnet-demo-") as tmp:
        with err.status(f"generating the synthetic city ({people:,} people, seed {seed})"):
            city = generate_city(n_people=people, seed=seed)
            write_city(city, Path(tmp) / "city")
        with _progress(not quiet) as prog:
            result = run_pipeline(Path(tmp) / "city", out_dir, progress=prog)
    _after_run(result, out_dir, quiet)
    if not quiet:
        out.print(f"Open {out_dir / 'report.html'} in a browser; try `fdnet explain {out_dir} "
                  f"{_first_listed(result)}`. The demo's input folder is gone, so `fdnet notify` needs a "
                  "`fdnet synth` city as --data (docs/cli.md).")


def _first_listed(result) -> str:
    df = result.lists["custom_notifications"]
    return str(df["person_id"].iloc[0]) if len(df) else "PERSON_ID"


@app.command()
def explain(
    run_dir: Path = typer.Argument(..., help="A run folder written by `fdnet run`."),
    person_id: str = typer.Argument(..., help="The person ID as it appears in the input."),
    as_json: bool = typer.Option(False, "--json", help="Print the full explanation as JSON."),
):
    """Print why a person is or is not on each list, with the evidence behind every point."""
    from .explain_cli import component_rows, explain_person, headline, list_lines, resolution_lines

    info = explain_person(run_dir, person_id)
    if as_json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return
    for line in headline(info) + resolution_lines(info) + list_lines(info):
        out.print(line, markup=False, highlight=False)
    rows = component_rows(info)
    if rows:
        t = Table(title="score components", show_header=True)
        for c in ("component", "value", "points", "counts for", "evidence"):
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*[Text(x) for x in r])
        _print_table(t)


@app.command()
def verify(
    run_dir: Path = typer.Argument(..., help="A run folder written by `fdnet run`."),
    no_rerun: bool = typer.Option(False, "--no-rerun", help="Only check the folder; do not re-run."),
    key: Optional[Path] = typer.Option(None, "--key", help="The key file the run was signed with "
                                       "(`fdnet run --sign-key`): manifest.sig must match."),
    audit_db: Optional[str] = typer.Option(None, "--audit-db", help="Audit log holding the run's manifest "
                                           "SHA-256 (default $FDNET_AUDIT_DB when set); it must be there."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
):
    """Re-check a run's outputs and manifest, its anchors (signature, audit log), and re-run it.

    Exit 0 when every check, the re-run included, was made and matched; 1 when anything differs or
    cannot be confirmed (each one is named); 3 when all else matched but the re-run could not be made
    (inputs gone or changed), unless --no-rerun.
    """
    from rich.markup import escape

    from .verify import verify_run
    from .runfolder import load_sign_key

    k = load_sign_key(key) if key is not None else None
    with _progress(not as_json) as prog:
        rep = verify_run(run_dir, rerun=not no_rerun, progress=prog, key=k, audit_db=audit_db)
    if as_json:
        print(json.dumps(rep.to_dict(), indent=2, ensure_ascii=False))
        raise typer.Exit(rep.exit_code)
    if out.is_terminal:
        t = Table(show_header=True, title=f"verify {escape(str(run_dir))}")
        t.add_column("check")
        t.add_column("result")
        t.add_column("detail")
        label = {True: "[green]ok[/]", False: "[red]DIFFERS[/]", None: "[yellow]NOT CHECKED[/]"}
        for c in rep.checks:
            t.add_row(escape(c.name), label[c.ok], escape(c.detail))
        out.print(t)
    else:   # a file or a pipe: one check per line, never wrapped
        label = {True: "ok", False: "DIFFERS", None: "NOT CHECKED"}
        out.file.write(f"verify {run_dir}\n" + "".join(f"{c.name}\t{label[c.ok]}\t{c.detail}\n" for c in rep.checks))
        out.file.flush()
    for n in rep.notes:
        out.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
    out.print(rep.rerun, markup=False, highlight=False, soft_wrap=True)
    if rep.exit_code == 1:
        bad = ", ".join(c.name for c in rep.failed)
        err.print(f"fdnet verify: FAILED: {bad}", markup=False, highlight=False, soft_wrap=True)
    elif rep.exit_code == 3:
        err.print(f"fdnet verify: the folder matches its manifest, but the run was NOT re-run ({rep.rerun}); "
                  "its lists are not confirmed to follow from the inputs (exit 3)", markup=False,
                  highlight=False, soft_wrap=True)
    else:
        unchecked = [c.name for c in rep.unchecked]
        out.print("[green]all checks match[/]" + (f" (not checked: {escape(', '.join(unchecked))})"
                                                  if unchecked else "")
                  + ("" if rep.rerun_made else " (re-run not asked for)"))
    raise typer.Exit(rep.exit_code)


@policy_app.command("init")
def policy_init(path: Path = typer.Argument(Path("policy.yaml"), help="Where to write the default policy.")):
    """Write the default policy, every key filled in, to edit and sign off."""
    from .errors import UsageError
    from .policy import default_policy_yaml
    if path.exists():
        raise UsageError(f"{path} exists; fdnet will not overwrite it")
    path.write_text(default_policy_yaml(), encoding="utf-8")
    out.print(f"wrote {path}")


@policy_app.command("check")
def policy_check(path: Path = typer.Argument(..., help="Policy YAML to validate.")):
    """Validate a policy file and print the effective policy (defaults filled in) as JSON, and its hash
    (the report's and the audit log's "policy hash") on standard error."""
    from .runfolder import policy_sha256 as policy_hash
    from .policy import load_policy
    eff = load_policy(path).effective()
    print(json.dumps(eff, indent=2))
    err.print(f"policy hash {policy_hash(eff)} (SHA-256 of the effective policy as canonical JSON: the hash the "
              "report and the audit log show for a run with this policy)", markup=False, highlight=False)


def _calibration_command(data_dirs, out_dir, policy, horizon, origins, step, top_k, target, fit, max_bins,
                         as_of=None):
    import yaml

    from .runfolder import check_run_dir, write_files
    from .scoring.calibrate import calibrate as run_calibration
    from .tables import csv_bytes
    from .scoring.calibrate import report_markdown
    from .policy import load_policy

    check_run_dir(out_dir)
    for d in data_dirs:
        if not Path(d).is_dir():
            from .errors import UsageError
            raise UsageError(f"DATA {d} is not a folder of input tables")
    base = load_policy(policy)
    with err.status("backtesting") as status:
        res = run_calibration([str(d) for d in data_dirs], base=base, horizon_days=horizon, origins=origins,
                              step_days=step, top_k=top_k, target=target, fit=fit, max_bins=max_bins,
                              as_of=as_of or None, min_history_days=0 if as_of else 365,
                              progress=lambda s: status.update(f"snapshot {s}"))
    rep = res.report
    files = {
        "backtest.md": report_markdown(rep, res.policy).encode("utf-8"),
        "backtest.json": (json.dumps(rep, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        "folds.csv": csv_bytes(res.folds),   # the one spreadsheet-safe CSV writer
    }
    if fit:
        head = ("# fdnet policy fitted by `fdnet calibrate` (see backtest.md beside it).\n"
                f"# {res.policy.calibration.fitted_on}\n"
                "# Review every component's points and sign off before using it for a run.\n")
        files["policy.yaml"] = (head + yaml.safe_dump(res.policy.effective(), sort_keys=False)).encode("utf-8")
    write_files(files, out_dir, what="output folder")
    t = Table(title=f"{'calibrate' if fit else 'backtest'}: {rep['target']} within {rep['horizon_days']} days "
                    f"(mean over {len(rep['test_origins'])} test origins)")
    for c in ("ranking", "ROC AUC", "top 1%", "top 2%", f"top {rep['top_k']}"):
        t.add_column(c, justify="left" if c == "ranking" else "right")
    for r in rep["summary"]:
        t.add_row(r["ranking"], *[("—" if r[k] is None else f"{r[k]:.3f}") for k in
                                  ("auc_mean", "capture_top_1pct", "capture_top_2pct", f"capture_top_{rep['top_k']}")])
    _print_table(t)
    def margin(v, ci) -> str:
        if v is None:
            return "—"
        lo, hi = (ci or [None, None])[:2]
        return f"{v:+.3f}" + (f" (95% CI {lo:+.3f} to {hi:+.3f})" if lo is not None and hi is not None else "")

    out.print(f"best single feature: {rep['best_single_feature']['ranking']} "
              f"({rep['best_single_feature']['auc_mean']:.3f}); fdnet margin "
              f"{margin(rep['margin_over_best_single_feature'], rep.get('margin_ci95'))}; enforcement score margin "
              f"{margin(rep.get('enforcement_margin_over_best_single_feature'), rep.get('enforcement_margin_ci95'))}. "
              f"Wrote {', '.join(sorted(files))} to {out_dir}", highlight=False)
    for w in rep.get("warnings", []):   # few positives: margins this small may be noise (docs/calibration.md)
        err.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def calibrate(
    data_dirs: list[Path] = typer.Argument(..., help="One or more input folders (the same format as `fdnet run`)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to create for policy.yaml and the backtest report."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Base policy: its windows, lists and guardrails "
                                          "are kept; its points are refitted."),
    horizon: int = typer.Option(120, "--horizon", min=1, help="Label period in days after each origin."),
    origins: int = typer.Option(6, "--origins", min=2, help="Rolling origins per folder."),
    step: Optional[int] = typer.Option(None, "--step", min=1, help="Days between origins (default: the horizon)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="K for capture in the top K "
                                        "(default: the custom-notification list size)."),
    target: str = typer.Option("shooting", "--target", help="shooting (shoots or is shot), violent, or offending."),
    max_bins: int = typer.Option(6, "--max-bins", min=1, max=20, help="Most bins per component's points table."),
    as_of: Optional[list[str]] = typer.Option(None, "--as-of", help="Origin dates YYYY-MM-DD instead of the "
                                              "rolling origins (repeat the option; at least two)."),
):
    """Fit the score's points from history (rolling-origin splits) and write a policy plus a backtest report.

    Each test origin is scored by points fitted only on earlier snapshots whose labels were complete, and
    compared with baselines (single features, demographics only, an SSL-style 8-predictor score).
    See docs/calibration.md.
    """
    _calibration_command(data_dirs, out_dir, policy, horizon, origins, step, top_k, target, True, max_bins, as_of)


@app.command()
def backtest(
    data_dirs: list[Path] = typer.Argument(..., help="One or more input folders."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to create for the backtest report."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy to evaluate as it is (default: fdnet's)."),
    horizon: int = typer.Option(120, "--horizon", min=1),
    origins: int = typer.Option(6, "--origins", min=1),
    step: Optional[int] = typer.Option(None, "--step", min=1),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1),
    target: str = typer.Option("shooting", "--target", help="shooting, violent, or offending."),
    as_of: Optional[list[str]] = typer.Option(None, "--as-of", help="Origin date(s) YYYY-MM-DD instead of the "
                                              "rolling origins (repeat the option for several)."),
):
    """Evaluate a policy's ranking as it is (no fitting) against single-feature baselines.

    Example (rank on January-March, check April-June): fdnet backtest DATA --out bt --as-of 2020-03-31
    --horizon 91 --target offending
    """
    _calibration_command(data_dirs, out_dir, policy, horizon, origins, step, top_k, target, False, 6, as_of)


def _refuse_existing(csv_out: Optional[Path]) -> None:
    if csv_out is not None and csv_out.exists():
        from .errors import UsageError
        raise UsageError(f"--csv {csv_out} exists; fdnet will not overwrite it")


def _write_new_csv(path: Path, df) -> None:
    """A --csv output: written whole under a temporary name, then moved into place."""
    from .tables import csv_bytes
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(csv_bytes(df))
    os.replace(tmp, path)


@app.command()
def notify(
    run_dir: Path = typer.Argument(..., help="A run folder written by `fdnet run`."),
    incident: str = typer.Option(..., "--incident", help="The new shooting's incident ID (in the input folder)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Input folder holding the incident (default: the "
                                        "run's own input folder, from its manifest)."),
    limit: int = typer.Option(40, "--limit", min=1, help="Rows to print."),
    as_json: bool = typer.Option(False, "--json", help="Print every row as JSON."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Also write all rows to this new CSV file."),
):
    """After a new shooting: the people at risk of retaliating or being retaliated against, ranked, with evidence.

    The victims' and suspects' direct co-offenders, their groups, and groups in conflict with those groups.
    """
    from rich.markup import escape

    from .lists.notify import retaliation_risk

    _refuse_existing(csv_out)
    df, facts = retaliation_risk(run_dir, incident, data_dir=data)
    if as_json:
        print(json.dumps({"incident": facts, "people": df.to_dict("records")}, indent=2, ensure_ascii=False))
    else:
        kind = "shooting" if facts["shooting"] else "incident (not a shooting: gun=false or no victim)"
        out.print(f"{kind} {escape(incident)} on {facts['date']}: victims {escape(', '.join(facts['victims']) or '—')}; "
                  f"suspects {escape(', '.join(facts['suspects']) or '—')} (run as of {facts['run_as_of']})",
                  highlight=False)
        t = Table(show_header=True, title="ranked by tier, then total score (the total of all points)")
        for c in ("rank", "person", "relation", "group", "total score", "probability", "guardrail / lists",
                  "evidence"):
            t.add_column(c)
        for r in df.head(limit).itertuples():
            t.add_row(str(r.rank), escape(r.person_id), escape(r.relation), escape(r.group), f"{r.score:g}",
                      f"{100 * float(r.probability_shooting):.1f}%",
                      escape("; ".join(x for x in (r.guardrail, r.on_lists) if x)), escape(r.evidence))
        _print_table(t)
        if len(df) > limit:
            out.print(f"… {len(df) - limit:,} more (--limit, --json or --csv)")
        horizon = facts.get("horizon_days", 120)
        out.print(f"probability: the run's estimated probability of shooting or being shot within {horizon} days. "
                  "Outreach first: this list names people at risk, not suspects; it is not probable cause.")
    if csv_out is not None:
        _write_new_csv(csv_out, df)


retention_app = typer.Typer(help="Records past the policy's retention limit (28 CFR 23: five years).",
                             no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("report")
def retention_report_cmd(
    data_dir: Path = typer.Argument(..., help="Input folder to check."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="YYYY-MM-DD; default: today."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy whose retention_days applies."),
    mapping: Optional[Path] = typer.Option(None, "--mapping"),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Also write the full list to this new CSV file."),
):
    """List the input rows due for purge: dated more than retention_days before the as-of date."""
    from rich.markup import escape

    from .records.retention import retention_report
    from .policy import load_policy

    pol = load_policy(policy)
    _refuse_existing(csv_out)
    df, cutoff = retention_report(data_dir, as_of=as_of, retention_days=pol.retention_days, mapping_path=mapping)
    out.print(f"retention {pol.retention_days} days: rows dated before {cutoff} are due for purge")
    counts = df["table"].value_counts()
    t = Table(show_header=True)
    t.add_column("table")
    t.add_column("rows due", justify="right")
    t.add_column("oldest")
    for name in ("incidents", "involvements", "groups", "group_relations"):
        sub = df[df["table"] == name]
        t.add_row(name, f"{int(counts.get(name, 0)):,}", sub["date"].min() if len(sub) else "")
    _print_table(t)
    for r in df.head(20).itertuples():
        out.print(f"  {escape(r.file)} line {r.line}: {escape(r.key)} ({r.date}, {r.days_past_limit} days past)",
                  highlight=False)
    if len(df) > 20:
        out.print(f"  … {len(df) - 20:,} more" + ("" if csv_out else " (use --csv FILE for the full list)"))
    if csv_out is not None:
        _write_new_csv(csv_out, df)
        out.print(f"wrote {csv_out}")


def _register_subcommands() -> None:
    """Commands that live beside their stage: audit log and review (fdnet.audit.commands)
    exports (fdnet.export.commands), and the workspace's users and server (fdnet.workspace.commands,
    fdnet.workspace.server). Each module has ``register(app)``."""
    from .audit import commands as audit_commands
    from .evaluate import commands as evaluate_commands
    from .export import commands as export_commands
    from .workspace import commands as workspace_commands, server as workspace_server
    audit_commands.register(app)
    export_commands.register(app)
    evaluate_commands.register(app)
    workspace_commands.register(app)
    workspace_server.register(app)


_register_subcommands()


@app.command()
def version():
    """Print fdnet's version."""
    print(__version__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps expected errors to exit 2, unexpected ones to exit 1, SIGTERM/SIGHUP to 128+N.

    A full disk or an unwritable folder is an environment error (exit 2, naming the path and the
    reason), never "a bug in fdnet"; SIGTERM and Ctrl-C clean up and say so.
    """
    import errno

    from .atomic import RECEIVED, signals_as_exceptions

    RECEIVED.clear()
    try:
        with signals_as_exceptions():
            rc = app(args=argv, standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except FdnetError as exc:
        text = str(exc)
        if len(text) > 2000:   # never echo huge input back
            text = text[:2000] + f"… ({len(text) - 2000:,} more characters)"
        err.print(f"fdnet: error: {text}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("fdnet: interrupted; nothing partial was left behind", markup=False)
        return 130
    except Exception as exc:  # the CLI framework's usage errors come through here too
        if RECEIVED:   # the signal's exception surfaced as another error (e.g. inside an extension's import)
            from .errors import Interrupted
            stop = Interrupted(RECEIVED[0])
            err.print(f"fdnet: error: {stop}", markup=False, highlight=False, soft_wrap=True)
            return stop.exit_code
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show(file=sys.stderr)  # click-style UsageError / BadParameter: exit 2
            return exc.exit_code
        if isinstance(exc, MemoryError):
            err.print("fdnet: error: out of memory", markup=False)
            return 1
        if isinstance(exc, OSError) and exc.errno is not None:   # the environment, not fdnet
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            err.print(f"fdnet: error:{where}: {exc.strerror or exc} ({errno.errorcode.get(exc.errno, exc.errno)}); "
                      "a problem of the files or the machine, not of fdnet", markup=False, highlight=False,
                      soft_wrap=True)
            return 2
        if os.environ.get("FDNET_DEBUG"):
            raise
        msg = str(exc)
        msg = msg if len(msg) <= 500 else msg[:500] + "…"
        err.print(f"fdnet: internal error ({type(exc).__name__}: {msg}). This is a bug in fdnet; "
                  "re-run with FDNET_DEBUG=1 for the traceback and report it.", markup=False, soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
