"""Constants and helpers of the workspace tests (imported by conftest.py and the test modules)."""
from __future__ import annotations

HOSTILE_CN = '=HYPERLINK("http://x")<script>window.__xss=1</script>'
HOSTILE_SR = '"><img src=x onerror="window.__xss=2">/../x%2F'
PASSWORD = "correct horse battery staple"
ROLES = ("analyst", "prosecutor", "supervisor", "outreach", "auditor", "admin")


def sign_in(app, user: str, password: str = PASSWORD):
    """A TestClient signed in as ``user``, and its CSRF token."""
    from fastapi.testclient import TestClient
    c = TestClient(app, base_url="http://127.0.0.1")
    r = c.post("/login", data={"username": user, "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text
    token = c.get("/api/session").json()["csrf_token"]
    return c, token
