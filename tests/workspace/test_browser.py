"""The workspace (``fdnet serve``) in a real headless Chromium (Debian's chromium + chromium-driver, Selenium).

The server is the real one: ``python -m fdnet serve`` in a subprocess on a free loopback port, over copies of
the fixture's two runs (hostile person IDs in the top custom-notification candidate and a service referral)
and a third run made with a policy asking for blind review; the users are made with ``fdnet users add``, the
password on standard input. Each person signs in in a browser session of their own. Checked: sign-in and
sign-out; a two-person clearance (prosecutor, then supervisor) through the review form, with the ego network
drawn on its canvas and both reviews in a verified audit log; the outreach view (no enforcement columns, an
outcome recorded through the form, 403 pages for the other lists); blind review; and on every page visited the
hostile IDs never ran (``window.__xss`` stays undefined) and the console holds no error (a CSP violation is one).

Needs ``apt-get install chromium chromium-driver``; skipped, saying so, without them, except where
FDNET_REQUIRE_BROWSER is set (CI), where their absence fails the run. Selenium is given the driver's path, so
selenium-manager never downloads anything. With FDNET_WORKSPACE_SCREENSHOTS=DIR the screenshots of a candidate
page and of the outreach view are also written to DIR (docs/images holds the ones the README shows).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from wshelpers import HOSTILE_CN, HOSTILE_SR, PASSWORD

from helpers import CHROMEDRIVER, CHROMIUM, webdriver_or_skip  # noqa: E402

webdriver = webdriver_or_skip("the workspace's browser test")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from fdnet.audit.log import AuditLog  # noqa: E402

USERS = (("analyst1", "analyst"), ("prosecutor1", "prosecutor"), ("supervisor1", "supervisor"),
         ("outreach1", "outreach"), ("auditor1", "auditor"))
ENFORCEMENT_HEADERS = ("score", "group", "reasons", "legal risk", "exposure 1", "exposure 2")
# The status line Chromium logs for a document answered 401/403 on purpose (a refused page, a failed sign-in)
_EXPECTED_STATUS = ("the server responded with a status of 401", "the server responded with a status of 403")
# Chromium asks every site for /favicon.ico; the workspace has none and answers 404, which the console logs.
# Not a page's error: left out of the console check (reported to be served or declared by a <link rel=icon>).
_FAVICON = "/favicon.ico - Failed to load resource"


def _package_root() -> str:
    import fdnet
    return str(Path(fdnet.__file__).resolve().parent.parent)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = _package_root() + os.pathsep + env.get("PYTHONPATH", "")
    env["FDNET_USER"] = "browser-test-admin"
    return env


def _add_user(url: str, name: str, role: str) -> None:
    """``fdnet users add NAME --role ROLE`` with the password on standard input, as an administrator would."""
    p = subprocess.run([sys.executable, "-m", "fdnet", "users", "add", name, "--role", role, "--audit-db", url],
                       input=PASSWORD + "\n", capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    assert PASSWORD not in p.stdout + p.stderr


@pytest.fixture(scope="module")
def server(runs_dir, tmp_path_factory):
    """The real workspace server on a free loopback port: ``{"base", "audit_db", "runs"}``."""
    from fdnet.run import run
    root = tmp_path_factory.mktemp("wsbrowser")
    runs = root / "runs"
    for name in ("r1", "r2"):
        shutil.copytree(runs_dir / name, runs / name)
    policy = root / "blind.yaml"
    policy.write_text("review: {blind: true}\n", encoding="utf-8")
    run(runs_dir.parent / "data", as_of="2025-12-31", policy=policy).write(runs / "r3")
    # r4: entity resolution on a small city with a second agency's duplicate identities (its own data folder,
    # where the resolution review writes its decisions)
    from fdnet.synth import generate_city, write_city
    from fdnet.synth.resolution import add_identities
    resdata = root / "resdata"
    write_city(add_identities(generate_city(1500, seed=7), duplicates=0.2, seed=3), resdata)
    run(resdata, as_of="2025-12-31", policy={"resolution": {"enabled": True}}).write(runs / "r4")
    url = f"sqlite:///{root / 'audit.sqlite'}"
    for name, role in USERS + (("prosecutor2", "prosecutor"),):
        _add_user(url, name, role)
    from fdnet.workspace.server import serving
    with serving(runs, url, env=_env(), log_path=root / "server.log") as served:
        yield {"base": served.base, "audit_db": url, "runs": runs, "resdata": resdata}


class Browser:
    """One headless Chromium (one person's browser session) with the checks every page gets."""

    def __init__(self, base: str):
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1300,1000", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-default-apps", "--disable-sync"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
        self.base = base
        self.visited: list[str] = []

    def quit(self) -> None:
        self.drv.quit()

    def checked(self, expect_status: bool = False) -> None:
        """The page's markup from the input never ran, and the console has no error.

        ``expect_status``: the document itself was answered 401 or 403 on purpose; Chromium logs that status.
        """
        self.visited.append(self.drv.current_url)
        assert self.drv.execute_script("return document.readyState") == "complete"
        assert self.drv.execute_script("return window.__xss === undefined"), self.drv.current_url
        assert self.drv.execute_script("return document.querySelectorAll('img[onerror]').length") == 0
        errors = [e for e in self.drv.get_log("browser") if e["level"] == "SEVERE" and _FAVICON not in e["message"]]
        if expect_status:
            errors = [e for e in errors if not any(s in e["message"] for s in _EXPECTED_STATUS)]
        assert not errors, (self.drv.current_url, errors)

    def get(self, path: str, expect_status: bool = False) -> None:
        self.drv.get(self.base + path)
        self.checked(expect_status)

    def text(self) -> str:
        return self.drv.find_element(By.TAG_NAME, "body").text

    def sign_in(self, user: str, password: str = PASSWORD) -> None:
        self.get("/login")
        self.drv.find_element(By.NAME, "username").send_keys(user)
        self.drv.find_element(By.NAME, "password").send_keys(password)
        self.click(self.drv.find_element(By.CSS_SELECTOR, "section.login button[type=submit]"),
                   expect_status=password != PASSWORD)

    def wait(self, script: str, timeout: float = 60.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                v = self.drv.execute_script(script)
            except Exception:   # the page is still being replaced
                v = None
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for: {script} on {self.drv.current_url}")

    def click(self, element, expect_status: bool = False) -> None:
        """Click something that loads the next page, wait until it has replaced this one, and check it."""
        old = self.drv.find_element(By.TAG_NAME, "html")
        element.click()
        end = time.monotonic() + 30
        while True:
            try:
                old.tag_name
            except Exception:   # stale: the next page has replaced it
                break
            if time.monotonic() > end:
                raise AssertionError(f"clicking did not load a page on {self.drv.current_url}")
            time.sleep(0.05)
        self.wait("return document.readyState === 'complete'")
        self.checked(expect_status)

    def submit(self, form_css: str) -> None:
        self.click(self.drv.find_element(By.CSS_SELECTOR, form_css + " button[type=submit]"))

    def painted_pixels(self, css: str) -> int:
        return self.drv.execute_script("""
            var c = document.querySelector(arguments[0]);
            if (!c) { return -1; }
            var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;
            for (var i = 3; i < d.length; i += 4) { if (d[i] > 0) { n++; } }
            return n;""", css)

    def screenshot(self, path: Path, height: int | None = None) -> None:
        """A PNG of the page, ``height`` CSS pixels of it from the top (the whole page without)."""
        import base64
        w = self.drv.execute_script("return document.documentElement.scrollWidth")
        h = height or self.drv.execute_script("return document.documentElement.scrollHeight")
        shot = self.drv.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture()
def browsers(server):
    """A factory of fresh browser sessions, all closed at the end of the test."""
    made: list[Browser] = []

    def make() -> Browser:
        made.append(Browser(server["base"]))
        return made[-1]
    yield make
    for b in made:
        b.quit()


def _keep_screenshot(tmp: Path, name: str) -> None:
    out = os.environ.get("FDNET_WORKSPACE_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp, Path(out) / name)


def _person_link(b: Browser, pid: str):
    href = "/person?id=" + quote(pid, safe="")
    links = [a for a in b.drv.find_elements(By.CSS_SELECTOR, "table a") if a.get_attribute("href").endswith(href)]
    assert links, f"no link to {pid!r} on {b.drv.current_url}"
    return links[0]


# ---------------------------------------------------------------------------- sign-in

def test_sign_in_wrong_password_then_right_then_sign_out(server, browsers):
    b = browsers()
    b.get("/runs/r2", expect_status=False)          # redirected to the sign-in page
    assert "/login" in b.drv.current_url and b.drv.title.startswith("Sign in")
    b.sign_in("analyst1", "not the password at all")
    assert "That user name and password were not accepted." in b.text()
    assert b.drv.get_cookie("fdnet_session") is None
    b.sign_in("analyst1")
    assert b.drv.find_element(By.CSS_SELECTOR, "main h1").text == "Runs"
    assert {"r1", "r2", "r3"} <= {a.text for a in b.drv.find_elements(By.CSS_SELECTOR, "main table td a")}
    cookie = b.drv.get_cookie("fdnet_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert b.drv.execute_script("return document.cookie") == ""        # HttpOnly: invisible to scripts
    assert "analyst1" in b.drv.find_element(By.CSS_SELECTOR, ".who").text
    b.submit("form.signout")
    assert b.drv.current_url.endswith("/login")
    b.get("/")
    assert "/login" in b.drv.current_url
    log = AuditLog(server["audit_db"])
    kinds = [e.kind for e in log.entries() if e.user == "analyst1"]
    assert "signin_failed" in kinds and "signin" in kinds


# ---------------------------------------------------------------------------- two-person clearance

def _review_through_the_form(b: Browser, reason: str, list_name: str = "custom_notifications") -> None:
    form = b.drv.find_element(By.XPATH, f"//section[@class='decide']//form[.//input[@name='list'][@value='{list_name}']]")
    form.find_element(By.CSS_SELECTOR, "input[name=decision][value=approve]").click()
    # the script keeps the reason codes to those of the chosen decision
    enabled = [g.get_attribute("label") for g in form.find_elements(By.TAG_NAME, "optgroup")
               if g.get_attribute("disabled") is None]
    assert enabled == ["approve"]
    Select(form.find_element(By.NAME, "reason_code")).select_by_value("evidence_confirmed")
    form.find_element(By.NAME, "reason").send_keys(reason)
    b.click(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "Your decision was recorded in the audit log." in b.text()


def test_two_person_clearance_through_the_review_form(server, browsers, tmp_path):
    pros = browsers()
    pros.sign_in("prosecutor1")
    pros.get("/runs/r2/lists/custom_notifications")
    assert HOSTILE_CN in pros.text()                 # the hostile ID is shown as text
    pros.click(_person_link(pros, HOSTILE_CN))
    pros.wait("return !!document.querySelector('#ego canvas')")
    assert pros.drv.find_element(By.CSS_SELECTOR, "main h1").text == "Person " + HOSTILE_CN
    assert "Legal-risk summary" in pros.text()
    # vis-network has drawn the two-step network: a canvas with painted pixels, more than the ego's dot
    pros.drv.execute_script("document.getElementById('ego').scrollIntoView()")
    assert pros.wait("return (function () { var c = document.querySelector('#ego canvas');"
                     "var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;"
                     "for (var i = 3; i < d.length; i += 4) { if (d[i] > 0) { n++; } } return n > 3000; })()")
    shot = tmp_path / "workspace-candidate.png"
    pros.drv.execute_script("window.scrollTo(0, 0)")
    pros.screenshot(shot)
    assert shot.stat().st_size > 20000
    _keep_screenshot(shot, "workspace-candidate.png")
    _review_through_the_form(pros, "Record and ties confirmed against the case files.")
    assert "partly approved" in pros.text()
    # the supervisor, in a browser session of their own
    sup = browsers()
    sup.sign_in("supervisor1")
    sup.get("/runs/r2/person?id=" + quote(HOSTILE_CN, safe=""))
    assert "prosecutor1" in sup.text()               # the first approval shows among the decisions so far
    _review_through_the_form(sup, "Second approval after reading the evidence.")
    sup.get("/runs/r2/lists/custom_notifications")
    row = _person_link(sup, HOSTILE_CN).find_element(By.XPATH, "./ancestor::tr")
    assert row.find_element(By.CSS_SELECTOR, ".state").text == "cleared"
    # the prosecutor's list shows the same
    pros.get("/runs/r2/lists/custom_notifications")
    row = _person_link(pros, HOSTILE_CN).find_element(By.XPATH, "./ancestor::tr")
    assert row.find_element(By.CSS_SELECTOR, ".state").text == "cleared"
    log = AuditLog(server["audit_db"])
    assert log.verify().ok
    reviews = [e for e in log.entries(kind="review") if e.payload.get("person_id") == HOSTILE_CN]
    assert [(e.user, e.payload["decision"]) for e in reviews] == [("prosecutor1", "approve"),
                                                                   ("supervisor1", "approve")]
    assert {e.payload.get("reason_code") for e in reviews} == {"evidence_confirmed"}
    # opening the person page was a logged release naming the person
    assert any(HOSTILE_CN in e.payload.get("person_ids", []) and e.user == "prosecutor1"
               for e in log.disseminations())


# ---------------------------------------------------------------------------- outreach

def test_the_outreach_view(server, browsers, tmp_path):
    b = browsers()
    b.sign_in("outreach1")
    b.get("/runs/r2")
    assert "Call-in" not in b.text() and "Custom" not in b.text()
    b.get("/runs/r2/lists/service_referrals")
    headers = [th.text.strip().lower() for th in b.drv.find_elements(By.CSS_SELECTOR, "table.grid thead th")]
    assert "person id" in headers
    assert not set(headers) & set(ENFORCEMENT_HEADERS), headers
    body = b.text()
    assert "score" not in body.lower() and "legal" not in body.lower()
    assert HOSTILE_SR in body
    assert not b.drv.find_elements(By.CSS_SELECTOR, "a[href*='/person']")     # no person pages for outreach
    shot = tmp_path / "workspace-outreach.png"
    b.screenshot(shot, height=900)
    _keep_screenshot(shot, "workspace-outreach.png")
    # record an outcome for the hostile-ID referral through its form
    form = b.drv.find_element(By.XPATH, "//input[@name='person_id'][@value=%s]/ancestor::form"
                              % _xpath_literal(HOSTILE_SR))
    Select(form.find_element(By.NAME, "kind")).select_by_value("services_accepted")
    Select(form.find_element(By.NAME, "service")).select_by_value("mentoring")
    form.find_element(By.NAME, "notes").send_keys("met at the hospital")
    b.click(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "recorded=1" in b.drv.current_url
    assert "Recorded." in b.text() and "Services accepted (mentoring)" in b.text()
    log = AuditLog(server["audit_db"])
    iv = log.interventions()
    mine = iv[iv["person_id"] == HOSTILE_SR]
    assert list(mine["kind"]) == ["services_accepted"] and list(mine["run_id"]) == ["r2"]
    assert log.verify().ok
    # the enforcement lists and person pages by URL: a 403 page, nothing of the list
    for path in ("/runs/r2/lists/call_in", "/runs/r2/lists/custom_notifications",
                 "/runs/r2/person?id=" + quote(HOSTILE_SR, safe="")):
        b.get(path, expect_status=True)
        assert b.drv.find_element(By.CSS_SELECTOR, "main h1").text == "403", path
        assert HOSTILE_CN not in b.text()


# ---------------------------------------------------------------------------- resolution review

def test_an_analyst_decides_an_uncertain_pair_in_the_resolution_review(server, browsers):
    import pandas as pd
    pairs = pd.read_csv(server["runs"] / "r4" / "resolution_review.csv", dtype=str, keep_default_na=False)
    top = pairs.iloc[0]
    b = browsers()
    b.sign_in("analyst1")
    b.get("/runs/r4")
    b.click(b.drv.find_element(By.CSS_SELECTOR, "a[href='/runs/r4/resolution']"))
    first = b.drv.find_element(By.CSS_SELECTOR, "section.pair")
    assert f"{top['person_a']} — {top['person_b']}" in first.find_element(By.TAG_NAME, "h2").text
    cells = [td.text for td in first.find_elements(By.CSS_SELECTOR, "table.sidebyside td")]
    assert top["last_name_a"] in cells and top["last_name_b"] in cells
    steps = [tr.find_elements(By.TAG_NAME, "td")[0].text
             for tr in first.find_elements(By.CSS_SELECTOR, "table.waterfall tbody tr")]
    assert steps[0] == "prior" and "first name" in steps
    form = first.find_element(By.CSS_SELECTOR, "form.pair-decision")
    form.find_element(By.CSS_SELECTOR, "input[value='must_link']").click()
    form.find_element(By.NAME, "reason").send_keys("same booking photo and address")
    b.click(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "recorded=1" in b.drv.current_url and "Decision recorded" in b.text()
    first = b.drv.find_element(By.CSS_SELECTOR, "section.pair")
    assert "Decided: must link" in first.text and not first.find_elements(By.TAG_NAME, "form")
    log = AuditLog(server["audit_db"])
    mine = [e for e in log.entries(kind="resolution") if e.user == "analyst1"]
    assert [(e.payload["person_id_a"], e.payload["decision"]) for e in mine] == [(top["person_a"], "must_link")]
    assert log.verify().ok
    dec = pd.read_csv(server["resdata"] / "resolution_decisions.csv", dtype=str)
    assert dec[["person_id_a", "person_id_b", "decision"]].values.tolist() == [
        [top["person_a"], top["person_b"], "must_link"]]
    # an auditor reads the page (no form, no names); a prosecutor is refused
    au = browsers()
    au.sign_in("auditor1")
    au.get("/runs/r4/resolution")
    assert not au.drv.find_elements(By.CSS_SELECTOR, "form.pair-decision") and top["person_a"] not in au.text()
    pr = browsers()
    pr.sign_in("prosecutor1")
    pr.get("/runs/r4/resolution", expect_status=True)
    assert pr.drv.find_element(By.CSS_SELECTOR, "main h1").text == "403"


def _xpath_literal(s: str) -> str:
    """``s`` as an XPath 1.0 string literal (which has no escapes: quotes are joined with concat)."""
    if '"' not in s:
        return f'"{s}"'
    if "'" not in s:
        return f"'{s}'"
    return "concat(" + ", '\"', ".join(f'"{part}"' for part in s.split('"')) + ")"


# ---------------------------------------------------------------------------- hostile IDs everywhere

def test_hostile_ids_never_run_on_any_page(server, browsers):
    for user, role in USERS:
        b = browsers()
        b.sign_in(user)
        b.get("/runs/r2")
        lists = [a.get_attribute("href") for a in b.drv.find_elements(By.CSS_SELECTOR, "main a[href*='/lists/']")]
        assert lists, user
        for href in lists:
            b.drv.get(href)
            b.checked()
            for pid in (HOSTILE_CN, HOSTILE_SR):
                if role in ("analyst", "prosecutor", "supervisor") and pid in b.text():
                    b.click(_person_link(b, pid))
                    assert b.drv.find_element(By.CSS_SELECTOR, "main h1").text == "Person " + pid
                    b.drv.get(href)
                    b.checked()
        if role == "auditor":
            for path in ("/audit", "/audit/runs", "/audit/disseminations"):
                b.get(path)
                assert HOSTILE_CN not in b.text() and HOSTILE_SR not in b.text()
        b.quit()


# ---------------------------------------------------------------------------- blind review

def test_blind_review_hides_the_score_until_the_evidence_is_read(server, browsers):
    b = browsers()
    b.sign_in("prosecutor2")
    b.get("/runs/r3/lists/custom_notifications")
    first = b.drv.find_element(By.CSS_SELECTOR, "table.grid tbody a[href*='/person']")
    pid_shown = first.text
    b.click(first)
    assert b.drv.find_elements(By.ID, "blind-note") and not b.drv.find_elements(By.ID, "score")
    headers = [th.text for th in b.drv.find_elements(By.CSS_SELECTOR, "table.components thead th")]
    assert "Points" not in headers and "Value" in headers
    b.click(b.drv.find_element(By.ID, "reveal"))
    assert float(b.drv.find_element(By.CSS_SELECTOR, "#score strong").text) > 0
    assert "Points" in [th.text for th in b.drv.find_elements(By.CSS_SELECTOR, "table.components thead th")]
    log = AuditLog(server["audit_db"])
    assert any(e.payload.get("what", "").startswith("score revealed") and e.user == "prosecutor2"
               for e in log.disseminations())
    # the analyst is not a reviewer: no blind review for them on the same run
    a = browsers()
    a.sign_in("analyst1")
    a.get("/runs/r3/person?id=" + quote(pid_shown, safe=""))
    assert a.drv.find_elements(By.ID, "score") and not a.drv.find_elements(By.ID, "blind-note")
    # runs whose policy does not ask for it are not blind
    b.get("/runs/r2/person?id=" + quote(HOSTILE_CN, safe=""))
    assert b.drv.find_elements(By.ID, "score")
