"""report.html in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

The run is a small synthetic city in which the top call-in person's ID is replaced by a
hostile string and a group is renamed with quotes and markup. The page is opened from disk
with the browser's network switched off; the checks: nothing but the file itself is
requested, no console error, the vis-network views have nodes and pixels, picking a person
draws their two-step network with the same people as the Python rule, the injected markup
never ran, the tables sort and filter, and the page prints to PDF.

Needs ``apt-get install chromium chromium-driver``; skipped, saying so, without them, except
where FDNET_REQUIRE_BROWSER is set (CI), where their absence fails the run. Selenium is given the
driver's path, so selenium-manager never downloads anything.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import headless_chrome, webdriver_or_skip  # noqa: E402

webdriver = webdriver_or_skip("the report's browser test")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from fdnet.pipeline import compute_run, write_run  # noqa: E402
from fdnet.report import networks  # noqa: E402
from fdnet.report.html import render_report  # noqa: E402
from fdnet.synth import generate_city, write_city  # noqa: E402

HOSTILE = '</script><script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
HOSTILE_GROUP = "O'Brien \"Crew\" <i onmouseover=window.__xss=3>x</i>"
LISTS = ("call_in.csv", "custom_notifications.csv", "service_referrals.csv")


def _read(p: Path) -> pd.DataFrame:
    return pd.read_csv(p, dtype=str, keep_default_na=False)


def _rename(folder: Path, old: str, new: str, files: tuple[str, ...], columns: tuple[str, ...]) -> None:
    """Replace a value in whole cells of the given columns (IDs are never substrings of each other here)."""
    for name in files:
        p = folder / name
        if not p.exists():
            continue
        df = _read(p)
        for c in columns:
            if c in df.columns:
                df[c] = df[c].where(df[c] != old, new)
        df.to_csv(p, index=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    data = root / "data"
    write_city(generate_city(n_people=700, seed=5), data)
    first = compute_run(data)
    listed = pd.concat([pd.read_csv(pd.io.common.BytesIO(first.outputs[f]), dtype=str, keep_default_na=False)
                        for f in LISTS])
    victim = listed["person_id"].iloc[0]
    group = next(g for g in listed["group"] if g)
    _rename(data, victim, HOSTILE, ("involvements.csv", "persons.csv", "groups.csv"), ("person_id",))
    _rename(data, group, HOSTILE_GROUP, ("groups.csv", "group_relations.csv"), ("group", "group_a", "group_b"))
    out = root / "run"
    write_run(compute_run(data), out)
    assert HOSTILE in set(pd.concat([_read(out / f) for f in LISTS])["person_id"])
    # the report as render_report(files, manifest) makes it from this run folder (what the pipeline writes)
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name not in ("manifest.json", "report.html")}
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    (out / "report.html").write_text(render_report(files, manifest), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def browser(run_dir):
    drv = headless_chrome(webdriver)
    try:
        url = (run_dir / "report.html").resolve().as_uri()
        drv.get(url)
        _wait(drv, "return !!(window.fdnetReport && fdnetReport.ready.groupnet && fdnetReport.ready.conflicts"
                   " && fdnetReport.ready.ego)")
        drv.fdnet_url = url
        drv.fdnet_perf = drv.get_log("performance")     # read once: the log empties on each read
        drv.fdnet_console = drv.get_log("browser")
        yield drv
    finally:
        drv.quit()


def _wait(drv, script: str, timeout: float = 90.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = drv.execute_script(script)
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def test_offline_page_requests_nothing_but_itself(browser):
    urls = []
    for entry in browser.fdnet_perf:
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert urls == [browser.fdnet_url]
    failed = [json.loads(e["message"])["message"] for e in browser.fdnet_perf
              if json.loads(e["message"])["message"]["method"] == "Network.loadingFailed"]
    assert not failed


def test_no_console_errors(browser):
    severe = [e for e in browser.fdnet_console if e["level"] == "SEVERE"]
    assert not severe, severe


def test_injected_markup_did_not_run(browser):
    assert browser.execute_script("return window.__xss === undefined")
    assert browser.execute_script("return document.images.length") == 0
    assert browser.execute_script("return document.scripts.length") == 5
    assert browser.execute_script("return document.querySelectorAll('i[onmouseover]').length") == 0
    # the hostile strings are on the page as text
    text = browser.find_element(By.TAG_NAME, "body").text
    assert HOSTILE in text and HOSTILE_GROUP in text


def _painted_pixels(drv, container_id: str) -> int:
    return drv.execute_script("""
        var c = document.querySelector('#' + arguments[0] + ' canvas');
        if (!c) { return -1; }
        var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;
        for (var i = 3; i < d.length; i += 4) { if (d[i] > 0) { n++; } }
        return n;""", container_id)


@pytest.mark.parametrize("name,container", [("groupnet", "groupnet-canvas"), ("conflicts", "conflict-canvas"),
                                            ("ego", "ego-canvas")])
def test_networks_render(browser, run_dir, name, container):
    n = browser.execute_script(f"return fdnetReport.networks.{name}.nodes.length")
    assert n > 1
    assert browser.execute_script(f"return fdnetReport.networks.{name}.edges.length") > 0
    assert _painted_pixels(browser, container) > 2000
    if name == "groupnet":
        data = json.loads(browser.find_element(By.ID, "fdnet-groupnet").get_attribute("textContent"))
        scores = _read(run_dir / "scores.csv")
        assert n == int(scores["group"].isin(set(data["groups"])).sum())
    if name == "conflicts":
        c = _read(run_dir / "conflicts.csv")
        assert n == len(set(c["group_a"]) | set(c["group_b"]))


def test_picking_a_person_draws_their_ego_network(browser, run_dir):
    edges = _read(run_dir / "edges.csv")
    adj = networks.Adjacency(edges)
    pick = Select(browser.find_element(By.ID, "ego-pick"))
    options = [o.get_attribute("value") for o in pick.options]
    assert HOSTILE in options
    for pid in (options[-1], HOSTILE):
        browser.execute_script("document.getElementById('ego').scrollIntoView()")
        pick.select_by_value(pid)
        _wait(browser, f"return fdnetReport.egoPerson === {json.dumps(pid)} && fdnetReport.ready.ego")
        ball = networks.ego_ball(adj, pid)
        got = browser.execute_script(
            "var e = fdnetReport.networks.ego, d = JSON.parse(document.getElementById('fdnet-ego').textContent);"
            "return e.nodes.getIds().map(function (i) { return d.people[i]; });")
        assert set(got) == ball
        n_ties = sum(1 for a, b in zip(edges["person_a"], edges["person_b"]) if a in ball and b in ball)
        assert browser.execute_script("return fdnetReport.networks.ego.edges.length") == n_ties
        assert browser.find_element(By.CSS_SELECTOR, "#ego-panel h3").get_attribute("textContent") == pid
        assert _painted_pixels(browser, "ego-canvas") > 500
    # the evidence table of direct ties names incidents from edges.csv
    panel = browser.find_element(By.ID, "ego-panel").get_attribute("textContent")
    mine = edges[(edges["person_a"] == HOSTILE) | (edges["person_b"] == HOSTILE)]
    assert mine["incident_ids"].str.split(";").str[0].isin([m for m in re.findall(r"I\d+", panel)]).all()
    assert browser.execute_script("return window.__xss === undefined")


def test_tables_sort_and_filter(browser):
    table = browser.find_element(By.ID, "table-service_referrals")
    rows = lambda: table.find_elements(By.CSS_SELECTOR, "tbody tr")  # noqa: E731
    n = len(rows())
    assert n > 2
    box = browser.execute_script("return arguments[0].parentNode.previousElementSibling.querySelector('input')", table)
    first_id = rows()[1].find_elements(By.TAG_NAME, "td")[1].text
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))",
                           box, first_id)
    visible = [r for r in rows() if r.is_displayed()]
    assert 1 <= len(visible) < n and first_id in visible[0].text
    browser.execute_script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input'))", box)
    rank = table.find_element(By.CSS_SELECTOR, "thead th")
    browser.execute_script("arguments[0].click()", rank)
    browser.execute_script("arguments[0].click()", rank)        # descending
    ranks = [int(r.find_element(By.TAG_NAME, "td").get_attribute("textContent")) for r in rows()]
    assert ranks == sorted(ranks, reverse=True)


def test_prints_to_pdf(browser, tmp_path):
    pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {
        "printBackground": True, "preferCSSPageSize": True})["data"])
    assert pdf.startswith(b"%PDF-") and len(pdf) > 50_000
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages >= 5
    if shutil.which("pdftotext"):        # poppler-utils, when present: the banner is on every page
        p = tmp_path / "report.pdf"
        p.write_bytes(pdf)
        text = subprocess.run(["pdftotext", "-layout", str(p), "-"], capture_output=True, text=True,
                              check=True).stdout
        per_page = [t for t in text.split("\f") if t.strip()]
        assert len(per_page) == pages
        assert all("not probable cause" in t for t in per_page)
