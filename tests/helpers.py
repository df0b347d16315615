"""Small builders for test input folders."""
from __future__ import annotations

from pathlib import Path

INCIDENTS = """incident_id,date,offense,nibrs_code,gun,fatal,violent,district
I01,2024-01-05,aggravated assault,13A,true,false,true,1
I02,2024-01-20,robbery,120,false,false,true,1
I03,2024-02-11,burglary,220,false,false,false,2
I04,2024-03-02,aggravated assault,13A,yes,no,1,2
I05,2024-03-15,drug possession,35A,no,no,0,3
I06,2024-04-01,aggravated assault,13A,1,1,true,3
"""

INVOLVEMENTS = """incident_id,person_id,role
I01,P1,suspect
I01,P2,arrestee
I01,V1,victim
I02,P2,offender
I02,P3,offender
I02,W1,witness
I03,P3,offender
I03,P4,offender
I04,P4,suspect
I04,P1,victim
I05,P5,offender
I05,P6,offender
I06,P6,suspect
I06,V2,victim
"""

PERSONS = """person_id,birth_year,sex,supervision,deceased,incarcerated
P1,1998,M,probation,false,false
P2,2001,M,none,false,false
P3,2009,M,none,false,false
P4,1995,F,parole,false,false
P5,1990,M,none,false,true
P6,1999,M,pretrial,false,false
V2,2000,F,none,true,false
"""

GROUPS = """person_id,group,source,date
P1,Eastside,gang_unit,2023-06-01
P2,Eastside,gang_unit,2023-06-01
P5,Northside,field_interview,2023-09-01
"""

RELATIONS = """group_a,group_b,relation,date
Eastside,Northside,conflict,2023-10-01
"""


def write_folder(root: Path, *, incidents: str = INCIDENTS, involvements: str = INVOLVEMENTS,
                 persons: str | None = PERSONS, groups: str | None = GROUPS,
                 relations: str | None = RELATIONS, extra: dict[str, str | bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    files = {"incidents.csv": incidents, "involvements.csv": involvements, "persons.csv": persons,
             "groups.csv": groups, "group_relations.csv": relations}
    files.update(extra or {})
    for name, text in files.items():
        if text is None:
            continue
        p = root / name
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8", newline="")
    return root


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def webdriver_or_skip(what: str):
    """``selenium.webdriver`` when Debian's chromium and chromium-driver are installed; otherwise the
    calling test module is skipped, saying why, or fails where FDNET_REQUIRE_BROWSER is set (CI).
    Selenium is always given the driver's path, so selenium-manager never downloads anything."""
    import os

    import pytest
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        why = ("needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
               "apt-get install -y chromium chromium-driver")
        if os.environ.get("FDNET_REQUIRE_BROWSER"):
            pytest.fail(f"FDNET_REQUIRE_BROWSER is set but {what} " + why, pytrace=False)
        pytest.skip(why, allow_module_level=True)
    if os.environ.get("FDNET_REQUIRE_BROWSER"):
        from selenium import webdriver
        return webdriver
    return pytest.importorskip("selenium.webdriver")


def headless_chrome(webdriver):
    """Debian's Chromium, headless, offline-ready, with browser and network logs: the one set-up of the
    browser tests (the report's and the evaluation page's)."""
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1000",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-default-apps", "--disable-sync"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    drv.execute_cdp_cmd("Network.enable", {})
    drv.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    return drv
