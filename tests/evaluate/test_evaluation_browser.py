"""evaluation.html in a real headless Chromium, offline: it draws its charts and asks for nothing.

Needs Debian's chromium and chromium-driver; skipped without them, except where
FDNET_REQUIRE_BROWSER is set (CI), where their absence fails the run.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from helpers import headless_chrome, webdriver_or_skip  # noqa: E402

webdriver = webdriver_or_skip("the evaluation page's browser test")
from selenium.webdriver.common.by import By  # noqa: E402

from fdnet.evaluate import evaluate, write_evaluation  # noqa: E402
from fdnet.synth import generate_city, write_city  # noqa: E402
from fdnet.synth.interventions import plant_call_in  # noqa: E402

HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalpage")
    write_city(plant_call_in(generate_city(8000, seed=2), effect=0.5, seed=2), root / "city")
    ev = evaluate(root / "city")
    # a note carrying markup (notes quote input, e.g. a local kind's file and line): it must stay text
    ev = dataclasses.replace(ev, notes=ev.notes + [HOSTILE])
    out = write_evaluation(ev, root / "ev")
    return out / "evaluation.html", ev


@pytest.fixture(scope="module")
def browser(page):
    drv = headless_chrome(webdriver)
    try:
        drv.get(page[0].resolve().as_uri())
        drv.fdnet_perf = drv.get_log("performance")
        drv.fdnet_console = drv.get_log("browser")
        yield drv
    finally:
        drv.quit()


def test_page_requests_nothing_but_itself(browser, page):
    urls = set()
    for entry in browser.fdnet_perf:
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.add(msg["params"]["request"]["url"])
    assert urls == {page[0].resolve().as_uri()}, urls
    assert not [e for e in browser.fdnet_console if e["level"] == "SEVERE"], browser.fdnet_console


def test_charts_and_tables_are_drawn(browser, page):
    _, ev = page
    svgs = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(svgs) >= 6
    for s in svgs:
        r = s.rect
        assert r["width"] > 200 and r["height"] > 100
    # every curve has a treated and a comparison line with points
    lines = browser.find_elements(By.CSS_SELECTOR, "figure svg polyline")
    assert len(lines) >= 2 * len({(e["kind"], e["outcome"]) for e in ev.effects})
    rows = browser.find_elements(By.CSS_SELECTOR, "#effects-table tbody tr")
    assert len(rows) == len(ev.effects)
    first = rows[0].find_elements(By.TAG_NAME, "td")
    assert first[0].text == ev.effects[0]["kind"] and first[1].text == ev.effects[0]["outcome"]


def test_markup_from_input_stays_text(browser):
    assert browser.execute_script("return window.__xss === undefined")
    notes = browser.find_element(By.ID, "notes").find_element(By.XPATH, "following-sibling::ul")
    assert HOSTILE in notes.text
