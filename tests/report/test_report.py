"""report.html without a browser: offline, escaped, complete, deterministic (fdnet.report).

The run under test is the small hand-made folder of tests/helpers.py with hostile strings
put in place of two person IDs and a group name, so every path from input data to the page
(HTML text, attributes, the JSON the script reads, the SVG charts) is exercised with markup.
tests/test_report_browser.py opens a report in a real Chromium.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, timedelta
from html import unescape
from html.parser import HTMLParser
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers import GROUPS, INVOLVEMENTS, PERSONS, RELATIONS, write_folder

from fdnet.pipeline import compute_run, csv_bytes
from fdnet.report import networks
from fdnet.report.html import policy_hash, render_report, script_json, vis_network_js

A = "<script>alert(1)</script>"                     # replaces P2: first on custom notifications
B = "</script><img src=x onerror=alert(1)>"         # replaces P3: in A's ego network, on no list
G = "O'Neil \"East\" <b>Crew</b>"                   # replaces the group Eastside
SECTIONS = ("summary", "quality", "list-call_in", "list-custom_notifications", "list-service_referrals",
            "composition", "charts", "groupnet", "ego", "conflicts", "groups", "policy", "files")


def _hostile(text: str) -> str:
    return text.replace("P2", A).replace("P3", B).replace("Eastside", G)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = write_folder(tmp_path_factory.mktemp("report") / "data", involvements=_hostile(INVOLVEMENTS),
                     persons=_hostile(PERSONS), groups=_hostile(GROUPS), relations=_hostile(RELATIONS))
    result = compute_run(d)
    files = {k: v for k, v in result.outputs.items() if k != "report.html"}
    manifest = {k: v for k, v in result.manifest.items() if k != "outputs"}
    return files, manifest


@pytest.fixture(scope="module")
def html(run):
    return render_report(*run)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of every script element, as a browser tokenises them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def parse(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    p.close()
    return p


def embedded(html: str) -> dict:
    return {a["id"]: json.loads(text) for a, text in parse(html).scripts if a.get("type") == "application/json"}


def test_hostile_ids_reach_the_lists(run):
    """The fixture is meaningful: A is listed, B is A's co-offender, G is a group with a conflict."""
    files, _ = run
    listed = pd.concat([pd.read_csv(pd.io.common.BytesIO(files[f"{k}.csv"]), dtype=str, keep_default_na=False)
                        for k in ("call_in", "custom_notifications", "service_referrals")])
    assert A in set(listed["person_id"]) and G in set(listed["group"])
    conflicts = pd.read_csv(pd.io.common.BytesIO(files["conflicts.csv"]), dtype=str, keep_default_na=False)
    assert B in files["edges.csv"].decode() and G in set(conflicts["group_b"])


def test_no_external_url_of_any_kind(html):
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(?:src|href|action|srcset|poster)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:[a-z]+:)?//", html, re.I)
    assert "@import" not in html and "sourceMappingURL" not in html
    tags = parse(html).tags
    assert not [t for t, a in tags if t in ("link", "img", "iframe", "object", "embed", "base", "form")]
    assert not [a for t, a in tags if "src" in a or "srcset" in a]
    # every href is an in-page anchor, and it points at an element that exists
    ids = {a["id"] for _, a in tags if "id" in a}
    hrefs = [a["href"] for _, a in tags if "href" in a]
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)


def test_vis_network_is_inlined_once_and_defused(html):
    js = vis_network_js()
    assert js is not None and "vis-network" in js[:200] and "Network" in js
    assert "http://" not in js and "https://" not in js and "</script" not in js.lower()
    assert "http:\\/\\/www.w3.org/2000/svg" in js        # the SVG namespace still evaluates to the same string
    assert html.count(js) == 1
    assert html.count("@license") == 1                  # the licence comment is kept, once


def test_injected_markup_is_escaped_everywhere(html):
    for raw in (A, B, G, "<img", "<b>Crew", "onerror=alert(1)>"):
        assert raw not in html, raw
    # as text, in attributes, and in the JSON for the script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-ego="&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "O&#39;Neil &#34;East&#34; &lt;b&gt;Crew&lt;/b&gt;" in html
    assert "\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e" in html
    tags = parse(html)
    # no element came from the data: only the page's own five scripts, no event-handler attribute
    assert [a.get("type") or a.get("id", "code") for a, _ in tags.scripts] == [
        "application/json", "application/json", "application/json", "code", "code"]
    assert not [(t, k) for t, a in tags.tags for k in a if k.lower().startswith("on")]
    # the JSON round-trips to the exact hostile strings
    data = embedded(html)
    assert A in data["fdnet-ego"]["people"] and B in data["fdnet-ego"]["people"]
    assert G in data["fdnet-groupnet"]["groups"]
    assert G in [n[0] for n in data["fdnet-conflicts"]["nodes"]]


def test_script_json_cannot_break_out():
    s = script_json({"x": "</script><!-- & \u2028"})
    assert "<" not in s and ">" not in s and "&" not in s and "\u2028" not in s
    assert json.loads(str(s)) == {"x": "</script><!-- & \u2028"}


def test_all_sections_and_the_banner(html, run):
    _, manifest = run
    tags = parse(html).tags
    ids = {a["id"] for _, a in tags if "id" in a}
    assert set(SECTIONS) <= ids
    assert "List status is not probable cause" in html
    assert re.search(r"@top-center\s*\{\s*content:\s*\"Being on a list is not probable cause", html)
    assert policy_hash(manifest["policy"]) in html and len(policy_hash(manifest["policy"])) == 64
    assert manifest["as_of"] in html and manifest["fdnet_version"] in html
    assert html.count('<svg class="chart"') >= 4          # two score histograms, shootings by month, composition
    assert "@media print" in html
    # data quality: every input table with its counts
    for name, inp in manifest["inputs"].items():
        if "rows" in inp:
            assert f"<td>{name}</td>" in html
    # the three lists, every column
    for fname in ("call_in.csv", "custom_notifications.csv", "service_referrals.csv"):
        header = run[0][fname].decode().splitlines()[0].split(",")
        key = fname[:-4]
        table = html.split(f'id="table-{key}"', 1)[1].split("</thead>", 1)[0]
        assert [unescape(h.replace("<wbr>", "")) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table)] == header


def test_ego_network_data_matches_edges_csv(html, run):
    """The embedded ties are edges.csv's, with their incident IDs and dates, and the ball rule holds."""
    files, _ = run
    edges = pd.read_csv(pd.io.common.BytesIO(files["edges.csv"]), dtype=str, keep_default_na=False)
    ego = embedded(html)["fdnet-ego"]
    people = ego["people"]
    # A: co-offenders P1 (I01) and B (I02); two steps: P4 (B-P4, I03); victim V1 (I01)
    assert networks.ego_ball(networks.Adjacency(edges), A) == {A, "P1", B, "P4", "V1"}
    base = date.fromisoformat(ego["base"])
    got = {}
    for a, b, layer, n, first, span, ids in ego["edges"]:
        d1 = base + timedelta(days=first)
        got[(people[a], people[b], ["co_offending", "victimization"][layer])] = (
            n, d1.isoformat(), (d1 + timedelta(days=span)).isoformat(), ids)
    want = {(r.person_a, r.person_b, r.layer): (int(r.incidents), r.first_date, r.last_date, r.incident_ids)
            for r in edges.itertuples()}
    assert got and all(want[k] == v for k, v in got.items())
    assert got[tuple(sorted(["P1", A])) + ("co_offending",)][3] == "I01"
    # every tie of every listed person's ego network is embedded
    adj = networks.Adjacency(edges)
    listed = {people[e["p"]] for e in ego["egos"]}
    for p in listed:
        ball = networks.ego_ball(adj, p)
        need = {k for k in want if k[0] in ball and k[1] in ball}
        assert need <= set(got), p
    a_entry = next(e for e in ego["egos"] if people[e["p"]] == A)
    assert a_entry["on"] and a_entry["c"]


def test_deterministic_bytes_across_processes(run, tmp_path):
    files, manifest = run
    d = tmp_path / "in"
    d.mkdir()
    for k, v in files.items():
        (d / k).write_bytes(v)
    (d / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    code = ("import json, sys, pathlib; from fdnet.report.html import render_report; d = pathlib.Path(sys.argv[1]); "
            "f = {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name != 'manifest.json'}; "
            "sys.stdout.buffer.write(render_report(f, json.loads((d / 'manifest.json').read_text())).encode())")
    outs = []
    for seed in ("0", "987"):
        r = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True,
                           env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}, check=True)
        outs.append(r.stdout)
    assert outs[0] == outs[1] == render_report(files, manifest).encode()


def test_files_absent_from_older_runs_are_handled():
    lists = ("rank,person_id,group,score,reasons\n1,P9,Crew,40,Reason.\n").encode()
    html = render_report({"call_in.csv": lists}, {})
    assert "This run folder has no <code>edges.csv</code>" in html
    assert "This run folder has no <code>custom_notifications.csv</code>" in html
    assert "This run folder has no <code>scores.csv</code>" in html and "P9" in html
    html = render_report({}, {})
    assert all(f'id="{s}"' in html for s in SECTIONS) and "List status is not probable cause" in html


def test_new_files_and_unknown_columns_are_rendered(run):
    files, manifest = dict(run[0]), dict(run[1])
    files["disparity.csv"] = csv_bytes(pd.DataFrame({
        "list": ["call_in", "call_in"], "attribute": ["race", "race"], "category": ["<i>x</i>", "y"],
        "listed": [6, 1], "listed_share": [0.86, 0.14], "network_count": [10, 90], "network_share": [0.1, 0.9],
        "offending_count": [5, 45], "offending_share": [0.1, 0.9], "ratio_vs_network": [8.6, 0.16],
        "ratio_vs_offending": [8.6, 0.16], "flag": ["call_in lists <i>x</i> at 8.6 times its network share", ""]}))
    files["call_in_groups.csv"] = csv_bytes(pd.DataFrame({
        "group": [G], "members": [2], "invited": ["P1;" + A], "expected_reach": [1.5], "expected_share": [0.75],
        "greedy_expected_reach": [1.5], "method": ["exact"], "status": ["optimal"], "reasons": ["Most members shot."],
        "brand_new_column": ["kept"]}))
    files["something_else.csv"] = b"a,b\n1,2\n"
    manifest["summary"] = {**manifest.get("summary", {}), "shootings_by_month": [
        {"month": "2024-01", "shootings": 1, "victims": 1}, {"month": "2024-04", "shootings": 2, "victims": 3}]}
    html = render_report(files, manifest)
    assert 'id="disparity"' in html and 'id="call-in-groups"' in html
    assert html.count('class="flagged"') == 1 and "<b>1</b> row beyond" in html
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "<i>x</i>" not in html
    assert "<th scope=\"col\">brand_<wbr>new_<wbr>column</th>" in html and "kept" in html
    assert "2024-02: 0 shootings, 0 shooting victims" in html and "summary.shootings_by_month" in html
    assert "something_else.csv" in html           # unknown files: in the inventory with their hash


def test_the_old_keyword_form_is_gone(run):
    """render_report(rec=, summary=, ...) was dead code (issue 10): the report is made from a run folder's
    files or from a Run, nothing else."""
    with pytest.raises(TypeError):
        render_report()
    with pytest.raises(TypeError):
        render_report(rec=None, summary={})


@pytest.mark.parametrize("damage", ["empty", "header only", "not a table", "non-finite numbers"])
def test_damaged_or_odd_files_never_break_the_report(run, damage):
    """Each file in turn emptied, cut to its header or replaced by junk: the report still renders."""
    files, manifest = run
    for name in sorted(files):
        b = files[name]
        if damage == "empty":
            new = b""
        elif damage == "header only":
            new = b.split(b"\n", 1)[0] + b"\n"
        elif damage == "not a table":
            new = b"\xff\xfe\x00junk,\"unclosed\n{not json\n"
        else:
            new = re.sub(rb"(?<=,)\d+(?:\.\d+)?(?=,|\n)", b"nan", b).replace(b"nan,", b"inf,", 3)
        html = render_report({**files, name: new}, manifest)
        assert "List status is not probable cause" in html and "</html>" in html
        embedded(html)                           # the embedded JSON stays valid JSON


def test_demographic_enforcement_is_none_by_default_and_a_justification_is_shown(run, tmp_path):
    """The disparity section says that no demographic attribute adds enforcement points; when a policy
    makes age count for enforcement, its written justification is printed there (escaped)."""
    from fdnet.policy import Policy
    text = unescape(re.sub(r"<[^>]+>", " ", render_report(*run)))
    assert "None: no demographic attribute" in text
    age = Policy().components["age"].model_dump()
    why = "The working group <b>signed</b> this off on 2026-11-30 after review of the local backtest & counsel."
    age.update(counts_for=["enforcement", "service"], justification=why)
    d = write_folder(tmp_path / "data")
    res = compute_run(d, policy={"components": {"age": age}})
    entries = res.manifest["disparity"]["demographic_enforcement"]
    assert [e["component"] for e in entries] == ["age"] and entries[0]["justification"] == why
    page = res.outputs["report.html"].decode()
    assert "<b>signed</b>" not in page and "&lt;b&gt;signed&lt;/b&gt;" in page
    assert "None: no demographic attribute" not in page


def test_the_report_written_in_pieces_is_the_rendered_page(tmp_path, monkeypatch):
    # Run.write streams report.html in pieces: the same bytes as the page rendered whole, at any piece size
    import fdnet
    from fdnet.report import html as report_html
    from fdnet.synth import generate_city, write_city

    write_city(generate_city(2000, seed=6), tmp_path / "c")
    r = fdnet.run(tmp_path / "c")
    stats = {"scores.csv": {"bytes": 10, "rows": 1, "sha256": "0" * 64}}
    whole = report_html.render_run_report(r, dict(stats)).encode("utf-8")
    for size in (1, 4096, 1 << 20):
        monkeypatch.setattr(report_html, "PIECE_CHARS", size)
        pieces = list(report_html.run_report_pieces(r, dict(stats)))
        assert b"".join(pieces) == whole
        assert len(pieces) > 1 or size == 1 << 20
    out = r.write(tmp_path / "run")
    assert (out / "report.html").read_bytes() == report_html.render_folder_report(fdnet.open_run(out)).encode("utf-8")
