"""The workspace web application (``fdnet serve``): server-rendered pages and a JSON API over run folders.

Every page and answer is built from run folders read through :mod:`fdnet.runfolder` (:mod:`.catalog`), shaped
by the role rules of :mod:`.access`, and every sign-in, decision, outreach outcome and release of person-level
data is written to the hash-chained audit log (:mod:`fdnet.audit.log`) before the answer leaves.

Security, in one place:

- sessions are server-side (:class:`~fdnet.workspace.accounts.Accounts`): the cookie holds a random id, the
  database only its hash; idle and absolute expiry; the cookie is ``HttpOnly`` and ``SameSite=Strict``
  (``Secure`` with ``https=True``);
- every write needs the session's CSRF token (a form field ``csrf_token`` or the header ``X-CSRF-Token``),
  and a cross-origin ``Origin`` header is refused on every POST;
- pages are Jinja2 templates with autoescaping on; JSON for scripts travels in ``application/json`` blocks,
  escaped by ``tojson``; the only scripts are files of the package (``script-src 'self'``, no inline script),
  no framing (``frame-ancestors 'none'``), no referrer, nothing cached;
- person IDs in URLs are percent-encoded path segments, and a run is found only by its folder's plain name.

>>> app = create_app(_doctest_runs())
>>> from fastapi.testclient import TestClient
>>> c = TestClient(app)
>>> c.get("/api/runs").status_code
401
>>> r = c.get("/", follow_redirects=False); r.status_code, r.headers["location"]
(303, '/login?next=/')
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import quote

import pandas as pd
from fastapi import Body, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..audit.log import AuditLog, DECISIONS
from ..errors import FdnetError, UsageError
from ..runfolder import LIST_NAMES
from . import access
from .catalog import Catalog, RunEntry

COOKIE = "fdnet_session"
STATIC_DIR = Path(__file__).parent / "static"
VIS_JS = Path(__file__).parent.parent / "report" / "static" / "vis-network.min.js"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",   # a same-origin POST keeps its Origin header (no-referrer makes it "null")
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}
NUMERIC = ("rank", "score", "group_rank", "rank_in_group")
_SAFE_NEXT = re.compile(r"^/(?![/\\])[^\s]*$")
OUTREACH_OUTCOMES = {
    "outreach_attempted": "Tried, not reached",
    "outreach_contacted": "Contacted",
    "services_accepted": "Services accepted",
    "services_declined": "Services declined",
}
SERVICES = ("", "mentoring", "employment", "housing", "mental_health", "substance_use", "relocation",
            "victim_services", "education", "other")
TRAIL_PAGE = 100


# ---------------------------------------------------------------------------- errors the handlers turn into answers

class NeedSignIn(Exception):
    """No valid session: pages redirect to /login, the API answers 401."""


class Refused(Exception):
    """A request the role may not make (403) or that names nothing there (404) or is malformed (400)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------- API schemas (OpenAPI at /api/openapi.json)

class SessionOut(BaseModel):
    user: str
    role: str
    csrf_token: str


class RunOut(BaseModel):
    run_id: str
    as_of: str
    ok: bool = Field(description="false when the folder no longer matches its manifest (nothing else is served)")
    lists: list[str] = Field(description="the lists of this run the role may see")


class RunsOut(BaseModel):
    runs: list[RunOut]


class ListOut(BaseModel):
    run_id: str
    list: str
    pseudonymised: bool
    rows: list[dict[str, Any]]


class ResolutionIn(BaseModel):
    """An analyst's decision on an uncertain pair of records (entity resolution)."""

    person_a: str = Field(min_length=1, max_length=200)
    person_b: str = Field(min_length=1, max_length=200)
    decision: Literal["must_link", "cannot_link"]
    reason: str = Field(min_length=1, max_length=4000)


def _form_model(model, data: dict):
    """A posted form's fields as ``model``: a field the model refuses is a 400 naming it, as the JSON API's
    are (an HTML form's values are not checked by FastAPI, so pydantic's error would otherwise be a 500)."""
    from pydantic import ValidationError
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Refused(400, "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}"
                                     for e in exc.errors())) from None


class ReviewIn(BaseModel):
    list: Literal["call_in", "custom_notifications", "service_referrals"]
    person_id: str = Field(min_length=1, max_length=512)
    decision: Literal["approve", "decline", "defer"]
    reason: str = Field(min_length=1, max_length=4000)
    reason_code: str | None = Field(default=None, max_length=64)


class OutreachIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=512)
    kind: Literal["outreach_attempted", "outreach_contacted", "services_accepted", "services_declined"]
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    service: str = Field(default="", max_length=64)
    notes: str = Field(default="", max_length=4000)


class EntryOut(BaseModel):
    seq: int
    kind: str
    created_at: str
    user: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str


class ErrorOut(BaseModel):
    detail: str


# ---------------------------------------------------------------------------- the application state

class Workspace:
    """What the app serves from: the runs, the audit log, the accounts, the templates."""

    def __init__(self, runs: str | Path, audit_db: str | None, *, idle_minutes: float, max_hours: float,
                 https: bool, pseudonym_key: bytes | None, today: Callable[[], str] | None,
                 sleep: Callable[[float], None] | None = None):
        import time
        from .accounts import Accounts
        self.catalog = Catalog(runs)
        self.log = AuditLog(audit_db).ensure()
        self.accounts = Accounts(self.log, idle_minutes=idle_minutes, max_hours=max_hours,
                                 sleep=sleep or time.sleep)
        self.accounts.expire_sessions()    # sessions that lapsed while no server ran end now (logged)
        self.https = https
        # Auditors see keyed pseudonyms; without a key file the key lives as long as this server process
        self.pseudonym_key = pseudonym_key or secrets.token_bytes(32)
        self.today = today or (lambda: datetime.now(timezone.utc).date().isoformat())
        self.env = Environment(loader=PackageLoader("fdnet.workspace", "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["q"] = lambda s: quote(str(s), safe="")
        self.env.globals["LIST_TITLES"] = access.LIST_TITLES
        self.env.globals["OUTCOMES"] = OUTREACH_OUTCOMES
        self.env.globals["SERVICES"] = SERVICES
        self._revealed: set[tuple[str, str, str]] = set()   # (session, run, person): blind review's opened evidence

    # -- identity ---------------------------------------------------------------------------
    def pseudo(self, role: str, run: RunEntry | None):
        """The :class:`~fdnet.export.pseudonym.Pseudonymiser` for what ``role`` is shown of person IDs in
        ``run`` (None: the IDs themselves). Outside a run (the audit trail) the default policy decides."""
        from ..policy import Review
        review = run.policy.review if run is not None else Review()
        if not access.pseudonymised(role, review):
            return None
        from ..export.pseudonym import Pseudonymiser
        return Pseudonymiser(self.pseudonym_key, ())

    def unpseudo(self, run: RunEntry, shown: str, pseudo) -> str | None:
        """The person ID behind ``shown`` (a pseudonym when ``pseudo``) among the run's listed people."""
        if pseudo is None:
            return shown if shown in run.listed() else None
        for pid in run.listed():
            if pseudo(pid) == shown:
                return pid
        return None

    def render(self, name: str, request: Request, session, status: int = 200, **ctx) -> HTMLResponse:
        ctx.setdefault("title", "fdnet workspace")
        html = self.env.get_template(name).render(request=request, session=session,
                                                  lists_for=access.lists_for, **ctx)
        return HTMLResponse(html, status_code=status)


def _doctest_runs() -> str:
    return tempfile.mkdtemp(prefix="fdnet-ws-doctest-")


# ---------------------------------------------------------------------------- helpers

def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _same_origin(request: Request) -> bool:
    """A POST whose ``Origin`` (or, without one, ``Referer``) names another site is refused."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin != "null"
    host = request.headers.get("host", "")
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/]+)", origin)
    return bool(m) and m.group(1).lower() == host.lower()


def _check_token(session, token: str | None) -> None:
    if not token or not hmac.compare_digest(str(token), session.csrf_token):
        raise Refused(403, "this write lacks the session's CSRF token (sign in again and resend it from the page)")


def _rows_for(ws: Workspace, run: RunEntry, role: str, list_name: str, pseudo) -> tuple[list[str], list[dict]]:
    """A list's rows as ``role`` sees them: the visible columns, numbers as numbers, IDs pseudonymised."""
    df = run.list_table(list_name)
    cols = access.visible_columns(role, list_name, list(df.columns))
    if role == "outreach" and "district" in cols and "district" not in df.columns:
        cols.remove("district")
    view = df[cols].copy() if cols else pd.DataFrame()
    if pseudo is not None and "person_id" in view.columns:
        ids = view["person_id"].tolist()
        from ..export.pseudonym import Pseudonymiser
        p = Pseudonymiser(ws.pseudonym_key, ids)
        view["person_id"] = [p(x) for x in ids]
        for c in ("reasons", "legal_risk"):
            if c in view.columns:
                view[c] = [p.text(x) if isinstance(x, str) else x for x in view[c].tolist()]
    rows = []
    records = view.to_dict(orient="records")
    for rec in records:
        out = {}
        for k, v in rec.items():
            if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
                out[k] = None
            elif k in NUMERIC:
                out[k] = _number(v)
            else:
                out[k] = str(v)
        rows.append(out)
    return cols, rows


def _number(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return int(f) if f.is_integer() else f


def _statuses(ws: Workspace, run: RunEntry, list_names, person_ids: list[str]) -> dict[str, dict]:
    """list -> person -> review state, for each reviewed list of ``list_names``
    (:func:`fdnet.workspace.decisions.statuses`); the review entries and the runs' dates are read once."""
    from .decisions import statuses
    reviewed = [n for n in list_names if n in run.policy.review.approvals]
    if not reviewed:
        return {}
    entries, as_of, today = ws.log.entries(kind="review"), ws.catalog.as_of_by_dir(), ws.today()
    return {n: statuses(entries, run_dir=run.path, run_as_of=run.as_of, list_name=n, person_ids=person_ids,
                        review=run.policy.review, today=today, runs_as_of=as_of) for n in reviewed}


def _status_dict(st) -> dict:
    if st is None:
        return {}
    return {"state": st.state, "needed": list(st.needed), "carried_from": st.carried_from, "expires": st.expires,
            "approvals": [{"user": a.user, "role": a.role, "at": a.at, "run_id": a.run_id, "expires": a.expires}
                          for a in st.approvals]}


def _entry_dict(e) -> dict:
    d = e.to_dict()
    return {k: d[k] for k in ("seq", "kind", "created_at", "user", "subject", "payload", "prev_hash", "entry_hash")}


def _pseudo_payload(payload: Any, p) -> Any:
    """An audit payload with every person ID (``person_id``, ``person_ids``) replaced by its pseudonym."""
    if p is None:
        return payload
    if isinstance(payload, dict):
        out = {}
        for k, v in payload.items():
            if k == "person_id" and isinstance(v, str):
                out[k] = p(v)
            elif k == "person_ids" and isinstance(v, list):
                out[k] = [p(x) if isinstance(x, str) else x for x in v]
            else:
                out[k] = _pseudo_payload(v, p)
        return out
    if isinstance(payload, list):
        return [_pseudo_payload(v, p) for v in payload]
    return payload


def _pseudo_explanation(ex: dict, key: bytes | None) -> dict:
    """An explanations.jsonl object with every person ID in it pseudonymised under ``key`` (for auditors;
    None: unchanged)."""
    if key is None:
        return ex
    from ..export.pseudonym import Pseudonymiser
    ids: set[str] = set()

    def collect(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("person_id", "co_offender") and isinstance(v, str):
                    ids.add(v)
                elif k in ("path", "between", "core_co_offenders") and isinstance(v, list):
                    ids.update(x for x in v if isinstance(x, str))
                else:
                    collect(v)
        elif isinstance(o, list):
            for v in o:
                collect(v)
    collect(ex)
    q = Pseudonymiser(key, ids)

    def swap(o):
        if isinstance(o, dict):
            out = {}
            for k, v in o.items():
                if k in ("person_id", "co_offender") and isinstance(v, str):
                    out[k] = q(v)
                elif k in ("path", "between", "core_co_offenders") and isinstance(v, list):
                    out[k] = [q(x) if isinstance(x, str) else x for x in v]
                elif isinstance(v, str):
                    out[k] = q.text(v)
                else:
                    out[k] = swap(v)
            return out
        if isinstance(o, list):
            return [swap(v) for v in o]
        return o
    return swap(ex)


# ---------------------------------------------------------------------------- the app

def create_app(runs: str | Path, audit_db: str | None = None, *, idle_minutes: float = 30, max_hours: float = 12,
               https: bool = False, pseudonym_key: bytes | None = None,
               today: Callable[[], str] | None = None, sleep: Callable[[float], None] | None = None) -> FastAPI:
    """The workspace over the run folders in ``runs``, logging to the audit database ``audit_db``.

    ``today`` (a function returning an ISO date) and ``sleep`` (the failed-sign-in delay) exist for tests.
    """
    ws = Workspace(runs, audit_db, idle_minutes=idle_minutes, max_hours=max_hours, https=https,
                   pseudonym_key=pseudonym_key, today=today, sleep=sleep)
    app = FastAPI(title="fdnet workspace", version=_version(), openapi_url=None, docs_url=None, redoc_url=None,
                  description="The JSON API of fdnet's workspace (CONTRACT §4). Every call needs a session "
                              "(POST /login); every write the header X-CSRF-Token from GET /api/session.")
    app.state.ws = ws

    # -- headers, errors ---------------------------------------------------------------------
    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if ws.https:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(NeedSignIn)
    async def _need_sign_in(request: Request, exc: NeedSignIn):
        if wants_json(request):
            return JSONResponse({"detail": "sign in first (POST /login)"}, status_code=401)
        nxt = request.url.path + (("?" + request.url.query) if request.url.query else "")
        return RedirectResponse("/login?next=" + quote(nxt, safe="/"), status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        if wants_json(request):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        session = _session_or_none(request)
        return ws.render("error.html", request, session, status=exc.status, message=exc.message,
                         title=f"{exc.status}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if wants_json(request) and _session_or_none(request) is None:
            return JSONResponse({"detail": "sign in first (POST /login)"}, status_code=401)
        if wants_json(request):
            return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)
        return ws.render("error.html", request, _session_or_none(request), status=exc.status_code,
                         message=str(exc.detail), title=str(exc.status_code))

    @app.exception_handler(FdnetError)
    async def _fdnet_error(request: Request, exc: FdnetError):
        # bad input that reached fdnet's own checks (an unknown kind, a malformed value): a clear 400
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return ws.render("error.html", request, _session_or_none(request), status=400, message=str(exc), title="400")

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        msgs = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body')}: {e.get('msg')}"
                         for e in exc.errors())
        if wants_json(request):
            return JSONResponse({"detail": msgs or "invalid request"}, status_code=422)
        return ws.render("error.html", request, _session_or_none(request), status=400, message=msgs, title="400")

    # -- sessions -----------------------------------------------------------------------------
    def _session_or_none(request: Request):
        try:
            return ws.accounts.session(request.cookies.get(COOKIE))
        except FdnetError:
            return None

    def need(request: Request, *roles: str):
        s = _session_or_none(request)
        if s is None:
            raise NeedSignIn()
        if roles and s.role not in roles:
            raise Refused(403, f"the {s.role} role may not open this")
        return s

    def need_write(request: Request, token: str | None, *roles: str):
        if not _same_origin(request):
            raise Refused(403, "a write from another site is refused")
        s = need(request, *roles)
        _check_token(s, token)
        return s

    def run_of(run_id: str) -> RunEntry:
        run = ws.catalog.get(run_id)
        if run is None:
            raise Refused(404, "no such run")
        if not run.ok:
            raise Refused(409, f"run {run_id} no longer matches its manifest and is not served: {run.problem}")
        return run

    def release(s, run: RunEntry | None, pids, what: str, pseudonymised: bool) -> None:
        pids = sorted({str(p) for p in pids})
        if pids:
            ws.log.record_release(s.user, s.role, run.path if run is not None else None, pids,
                                  access.PURPOSE.get(s.role, s.role), what, pseudonymised)

    # -- sign-in --------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/"):
        return ws.render("login.html", request, None, next=next if _SAFE_NEXT.match(next or "") else "/",
                         title="Sign in")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        if not _same_origin(request):
            raise Refused(403, "a sign-in from another site is refused")
        form = await request.form()
        name, pw = str(form.get("username") or ""), str(form.get("password") or "")
        nxt = str(form.get("next") or "/")
        if not _SAFE_NEXT.match(nxt):
            nxt = "/"
        from starlette.concurrency import run_in_threadpool
        old = request.cookies.get(COOKIE)
        if old:
            await run_in_threadpool(ws.accounts.sign_out, old, reason="signed in again")
        try:
            s = await run_in_threadpool(ws.accounts.sign_in, name, pw, client=_client(request))
        except UsageError:
            s = None
        if s is None:
            return ws.render("login.html", request, None, status=401, next=nxt, title="Sign in",
                             error="That user name and password were not accepted.")
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(COOKIE, s.sid, httponly=True, samesite="strict", secure=ws.https, path="/")
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request):
        # Ending a session changes no data; SameSite=Strict keeps another site from sending the cookie
        if not _same_origin(request):
            raise Refused(403, "a sign-out from another site is refused")
        sid = request.cookies.get(COOKIE)
        if sid:
            ws.accounts.sign_out(sid)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- static files (the package's own; no CDN) ----------------------------------------------------
    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        files = {"workspace.css": ("text/css", STATIC_DIR / "workspace.css"),
                 "workspace.js": ("text/javascript", STATIC_DIR / "workspace.js"),
                 "vis-network.min.js": ("text/javascript", VIS_JS)}
        if name not in files:
            raise Refused(404, "no such file")
        kind, path = files[name]
        return Response(path.read_bytes(), media_type=kind, headers={"Cache-Control": "private, max-age=3600"})

    # -- pages ------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request):
        s = need(request)
        if s.role == "admin":
            return RedirectResponse("/admin/users", status_code=303)
        runs = ws.catalog.runs() if access.lists_for(s.role) else []
        return ws.render("home.html", request, s, runs=runs, title="Runs")

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run_id: str):
        s = need(request, "analyst", "prosecutor", "supervisor", "outreach", "auditor")
        run = run_of(run_id)
        counts = {n: len(run.list_table(n)) for n in access.lists_for(s.role)}
        changes = None
        ch = run.changes()
        if ch is not None and s.role != "outreach":
            seen = access.lists_for(s.role)
            ch = ch[ch["list"].isin(list(seen))] if "list" in ch.columns else ch.iloc[0:0]
            changes = {n: {c: int(((ch["list"] == n) & (ch["change"] == c)).sum()) for c in ("entered", "left")}
                       for n in seen}
        disparity = None
        if s.role in ("analyst", "auditor") and run.rf.has("disparity.csv"):
            d = run.rf.table("disparity")
            if d is not None and len(d):
                disparity = d[d["flag"].fillna("").astype(str) != ""].to_dict(orient="records")
        resolution_pairs = None
        if s.role in ("analyst", "auditor") and run.rf.has("resolution_review.csv"):
            resolution_pairs = len(run.rf.table("resolution_review"))
        return ws.render("run.html", request, s, run=run, counts=counts, changes=changes, disparity=disparity,
                         resolution_pairs=resolution_pairs, manifest=run.rf.manifest, title=f"Run {run.run_id}")

    @app.get("/runs/{run_id}/lists/{list_name}", response_class=HTMLResponse, include_in_schema=False)
    def list_page(request: Request, run_id: str, list_name: str):
        s = need(request)
        run = run_of(run_id)
        if list_name not in LIST_NAMES:
            raise Refused(404, "no such list")
        if not access.may_see_list(s.role, list_name):
            raise Refused(403, f"the {s.role} role may not see {list_name}")
        pseudo = ws.pseudo(s.role, run)
        cols, rows = _rows_for(ws, run, s.role, list_name, pseudo)
        ids = run.list_table(list_name)["person_id"].tolist()
        states = _statuses(ws, run, [list_name], ids).get(list_name, {}) if s.role != "outreach" else {}
        entered = set()
        ch = run.changes()
        if ch is not None and s.role != "outreach" and {"list", "change", "person_id"} <= set(ch.columns):
            entered = set(ch.loc[(ch["list"] == list_name) & (ch["change"] == "entered"), "person_id"].tolist())
        release(s, run, ids, f"GET /runs/{run.run_id}/lists/{list_name}", pseudo is not None)
        # the reasons sentence is on the person's page; ranked_by is the same on every row (said above the table)
        show = [c for c in cols if c not in ("reasons", "ranked_by")] if s.role != "outreach" else cols
        ranked_by = ""
        if "ranked_by" in cols and len(run.list_table(list_name)):
            ranked_by = str(run.list_table(list_name)["ranked_by"].iloc[0])
        if run.policy.review.blind and s.role in ("prosecutor", "supervisor"):
            show = [c for c in show if c not in ("score", "probability_shooting")]   # blind review: evidence first
        rows_out = []
        for pid, row in zip(ids, rows):
            rows_out.append({"pid": pid, "shown": row.get("person_id", pid), "row": row,
                             "status": states.get(pid), "new": pid in entered})
        outcomes: dict[str, list[dict]] = {}
        if s.role == "outreach":
            for e in ws.log.entries(kind="outreach", run_dir=run.path):
                pl = e.payload
                outcomes.setdefault(str(pl.get("person_id", "")), []).append(
                    {"date": pl.get("date", ""), "kind": pl.get("kind", ""), "service": pl.get("service", ""),
                     "user": e.user})
        template = "outreach.html" if s.role == "outreach" else "list.html"
        return ws.render(template, request, s, run=run, list_name=list_name, cols=show, rows=rows_out,
                         outcomes=outcomes, ranked_by=ranked_by,
                         has_changes=ch is not None, reviewed=list_name in run.policy.review.approvals,
                         may_review=_may_review(s.role, list_name), today=ws.today(),
                         title=f"{access.LIST_TITLES[list_name]} — {run.run_id}")

    def _may_review(role: str, list_name: str) -> bool:
        from .decisions import may_review
        return may_review(role, list_name)

    @app.get("/runs/{run_id}/person", response_class=HTMLResponse, include_in_schema=False)
    def person_page(request: Request, run_id: str, id: str = "", reveal: int = 0):
        # the ID travels as a query parameter: decoded exactly once whatever it holds ('/', '%', '..')
        shown = id
        s = need(request, *access.PERSON_PAGE_ROLES)
        run = run_of(run_id)
        pseudo = ws.pseudo(s.role, run)
        pid = ws.unpseudo(run, shown, pseudo)
        on = run.listed().get(pid, []) if pid is not None else []
        seen_lists = [n for n in on if access.may_see_list(s.role, n)]
        if pid is None or not seen_lists:
            raise Refused(404, "nobody by that ID is on a list this role may see in this run")
        ex = run.rf.explanation(pid) or {}
        blind = bool(run.policy.review.blind) and s.role in ("prosecutor", "supervisor")
        key = (_session_key(s), run.run_id, pid)
        if reveal and blind:
            ws._revealed.add(key)
            release(s, run, [pid], f"score revealed /runs/{run.run_id}/person", pseudo is not None)
        hide_score = blind and key not in ws._revealed
        rows = {n: run.row(n, pid) for n in seen_lists}
        for n, r in rows.items():
            if r is not None and pseudo is not None:
                r["person_id"] = pseudo(pid)
        exv = _pseudo_explanation(ex, ws.pseudonym_key if pseudo is not None else None)
        if s.role in ("prosecutor", "supervisor"):
            # enforcement reviewers see what counts for the lists they review: never the service side
            # (victimization, the contagion hazard, demographics), the total or the service score
            mine = set(access.lists_for(s.role))
            exv = {k: v for k, v in exv.items() if k not in ("score", "service_score")}
            exv["components"] = [c for c in exv.get("components", [])
                                 if set(c.get("counts_for") or []) & mine]
        if hide_score:
            exv = {k: v for k, v in exv.items() if k not in ("score", "enforcement_score", "service_score",
                                                            "probability_shooting")}
            exv["components"] = [{k: v for k, v in c.items() if k not in ("points", "rule")}
                                 for c in exv.get("components", [])]
        found = _statuses(ws, run, seen_lists, [pid])
        statuses = {n: found.get(n, {}).get(pid) for n in seen_lists}
        history = []
        for n in seen_lists:
            st = statuses.get(n)
            if st is not None:
                history += [dict(h, list=n) for h in st.history]
        history.sort(key=lambda h: h.get("seq", 0))
        ego = _ego(ws, run, pid, ex, hide_score, pseudo)
        release(s, run, [pid] + ego.get("_ids", []), f"GET /runs/{run.run_id}/person", pseudo is not None)
        ego.pop("_ids", None)
        codes = {d: list(run.policy.review.reason_codes.get(d, [])) for d in DECISIONS}
        return ws.render("person.html", request, s, run=run, pid=pid, shown=pseudo(pid) if pseudo else pid,
                         lists=seen_lists, rows=rows, ex=exv, ego=ego, hide_score=hide_score, blind=blind,
                         statuses=statuses, history=history, reason_codes=codes,
                         reviewable=[n for n in seen_lists if _may_review(s.role, n)],
                         title=f"Person {pseudo(pid) if pseudo else pid}")

    @app.post("/runs/{run_id}/review", include_in_schema=False)
    async def review_form(request: Request, run_id: str):
        form = await request.form()
        s = need_write(request, str(form.get("csrf_token") or ""), "prosecutor", "supervisor")
        body = _form_model(ReviewIn, {k: form.get(k) or None for k in ("list", "person_id", "decision", "reason",
                                                                       "reason_code")})
        from starlette.concurrency import run_in_threadpool
        await run_in_threadpool(_review, s, run_id, body)
        return RedirectResponse(f"/runs/{quote(run_id, safe='')}/person?id={quote(body.person_id, safe='')}"
                                "&reviewed=1", status_code=303)

    @app.post("/runs/{run_id}/outreach", include_in_schema=False)
    async def outreach_form(request: Request, run_id: str):
        form = await request.form()
        s = need_write(request, str(form.get("csrf_token") or ""), "outreach")
        body = _form_model(OutreachIn, {k: form.get(k) or ("" if k in ("service", "notes") else None)
                                        for k in ("person_id", "kind", "date", "service", "notes")})
        from starlette.concurrency import run_in_threadpool
        await run_in_threadpool(_outreach, s, run_id, body)
        return RedirectResponse(f"/runs/{quote(run_id, safe='')}/lists/service_referrals?recorded=1",
                                status_code=303)

    def _review(s, run_id: str, body: ReviewIn):
        run = run_of(run_id)
        if not access.may_see_list(s.role, body.list) or not _may_review(s.role, body.list):
            raise Refused(403, f"the {s.role} role does not review {body.list}")
        if run.row(body.list, body.person_id) is None:
            raise Refused(404, f"that person is not on {body.list} in run {run_id}")
        codes = run.policy.review.reason_codes.get(body.decision, [])
        if body.reason_code is not None and body.reason_code not in codes:
            raise Refused(400, f"reason_code must be one of {', '.join(codes)} for {body.decision}")
        try:
            return ws.log.record_review(run.path, body.person_id, body.decision, body.reason, reviewer=s.user,
                                        list_name=body.list, role=s.role, reason_code=body.reason_code)
        except UsageError as exc:
            raise Refused(400, str(exc)) from None

    def _outreach(s, run_id: str, body: OutreachIn):
        run = run_of(run_id)
        if run.row("service_referrals", body.person_id) is None:
            raise Refused(404, f"that person is not on service_referrals in run {run_id}")
        if body.service and body.service not in SERVICES:
            raise Refused(400, f"service must be one of {', '.join(x for x in SERVICES if x)}")
        try:
            return ws.log.record_outreach(run.path, body.person_id, body.kind, body.date, s.user,
                                          service=body.service, notes=body.notes, role=s.role)
        except UsageError as exc:
            raise Refused(400, str(exc)) from None

    # -- clerical review of entity resolution -----------------------------------------------------------
    @app.get("/runs/{run_id}/resolution", response_class=HTMLResponse, include_in_schema=False)
    def resolution_page(request: Request, run_id: str, page: int = 0, recorded: int = 0):
        from . import resolution as res
        s = need(request, "analyst", "auditor")
        run = run_of(run_id)
        if not run.rf.has("resolution_review.csv"):
            raise Refused(404, f"run {run_id} was made without entity resolution: no pairs to review")
        pairs = res.review_pairs(run)
        dec, problem = res.current_decisions(run)
        decided = {(a, b): d for a, b, d in zip(dec["person_id_a"], dec["person_id_b"], dec["decision"])}
        page = max(int(page), 0)
        view = pairs.iloc[page * res.PAGE:(page + 1) * res.PAGE]
        pseudo = ws.pseudo(s.role, run)
        fields = res.FIELDS if s.role == "analyst" else res.AUDITOR_FIELDS
        rows = []
        for r in view.to_dict(orient="records"):          # one page of pairs (at most PAGE)
            a, b = str(r["person_a"]), str(r["person_b"])
            rows.append({
                "a": a, "b": b, "shown_a": pseudo(a) if pseudo else a, "shown_b": pseudo(b) if pseudo else b,
                "p": r.get("match_probability", ""), "w": r.get("match_weight", ""),
                "fields": [(f, r.get(f"{f}_a", ""), r.get(f"{f}_b", "")) for f in fields
                           if f"{f}_a" in r or f"{f}_b" in r],
                "waterfall": res.split_waterfall(r.get("waterfall", "")),
                "decided": decided.get((min(a, b), max(a, b)), ""),
            })
        ids = [x for r in rows for x in (r["a"], r["b"])]
        release(s, run, ids, f"GET /runs/{run.run_id}/resolution", pseudo is not None)
        pol = run.policy.resolution
        return ws.render("resolution.html", request, s, run=run, rows=rows, total=len(pairs), page=page,
                         pages=(len(pairs) + res.PAGE - 1) // res.PAGE, problem=problem, recorded=recorded,
                         may_decide=s.role == "analyst" and not problem, high=pol.high, review=pol.review,
                         decisions_file=f"{pol.decisions_file}.csv", n_decided=len(dec),
                         title=f"Resolution review — {run.run_id}")

    @app.post("/runs/{run_id}/resolution", include_in_schema=False)
    async def resolution_form(request: Request, run_id: str):
        form = await request.form()
        s = need_write(request, str(form.get("csrf_token") or ""), "analyst")
        body = _form_model(ResolutionIn, {k: form.get(k) or None for k in ("person_a", "person_b", "decision",
                                                                            "reason")})
        from starlette.concurrency import run_in_threadpool
        await run_in_threadpool(_resolution, s, run_id, body)
        return RedirectResponse(f"/runs/{quote(run_id, safe='')}/resolution?recorded=1", status_code=303)

    def _resolution(s, run_id: str, body: "ResolutionIn"):
        from . import resolution as res
        run = run_of(run_id)
        pairs = res.review_pairs(run)
        a, b = min(body.person_a, body.person_b), max(body.person_a, body.person_b)
        hit = pairs[(pairs["person_a"].astype(str) == a) & (pairs["person_b"].astype(str) == b)]
        if not len(hit):
            raise Refused(404, f"{a} and {b} are not an uncertain pair of run {run_id} (resolution_review.csv)")
        dec, problem = res.current_decisions(run)
        if problem:
            raise Refused(409, problem)
        if ((dec["person_id_a"] == a) & (dec["person_id_b"] == b)).any():
            raise Refused(409, f"{a} and {b} are decided already")
        path = res.decisions_path(run)
        try:
            p = float(hit["match_probability"].iloc[0])
        except (TypeError, ValueError):
            p = None
        try:
            entry = ws.log.record_resolution(run.path, a, b, body.decision, body.reason, reviewer=s.user,
                                             role=s.role, decisions_file=str(path), match_probability=p)
            res.append_decision(run, a, b, body.decision, s.user, ws.today(), body.reason)
        except FileExistsError as exc:
            raise Refused(409, str(exc)) from None
        except UsageError as exc:
            raise Refused(400, str(exc)) from None
        return entry

    # -- the auditor's pages ---------------------------------------------------------------------------------
    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, before: int | None = None, kind: str = ""):
        s = need(request, "auditor")
        page = ws.log.entries(kind=kind or None, before=before, last=TRAIL_PAGE)[::-1]
        p = ws.pseudo("auditor", None)
        rows = [dict(_entry_dict(e), payload=_pseudo_payload(e.payload, p)) for e in page]
        rep = ws.log.verify()
        older = page[-1].seq if page and page[-1].seq > 1 else None
        return ws.render("audit.html", request, s, rows=rows, chain=rep, kind=kind, older=older,
                         kinds=ws.log.kinds(), title="Audit trail")

    @app.get("/audit/runs", response_class=HTMLResponse, include_in_schema=False)
    def audit_runs(request: Request):
        s = need(request, "auditor")
        from ..verify import verify_run
        out = []
        for run in ws.catalog.runs():
            try:
                rep = verify_run(run.path, rerun=False, audit_db=ws.log.url)
                checks = [(c.name, c.ok, c.detail) for c in rep.checks]
                failed = [c.name for c in rep.checks if c.ok is False]
                if not failed:
                    status = "verified"
                elif failed == ["audit log"]:
                    status = ("files verified; the run is not recorded in this audit log "
                              f"(fdnet audit record-run {run.path})")
                else:
                    status = "FAILED"
            except UsageError as exc:
                checks, status = [("folder", False, str(exc))], "FAILED"
            out.append({"run": run, "status": status, "checks": checks})
        return ws.render("audit_runs.html", request, s, runs=out, title="Runs: verify status")

    @app.get("/audit/disseminations", response_class=HTMLResponse, include_in_schema=False)
    def disseminations_page(request: Request):
        s = need(request, "auditor")
        p = ws.pseudo("auditor", None)
        rows = [dict(_entry_dict(e), payload=_pseudo_payload(e.payload, p)) for e in ws.log.disseminations()][::-1]
        return ws.render("disseminations.html", request, s, rows=rows[:1000], total=len(rows),
                         title="Dissemination log")

    @app.get("/audit/disseminations.csv", include_in_schema=False)
    def disseminations_csv(request: Request):
        need(request, "auditor")
        from ..tables import csv_bytes
        p = ws.pseudo("auditor", None)
        recs = []
        for e in ws.log.disseminations():
            pl = _pseudo_payload(e.payload, p)
            recs.append({"seq": e.seq, "created_at": e.created_at, "user": e.user, "role": pl.get("role", ""),
                         "purpose": pl.get("purpose", ""), "what": pl.get("what", ""),
                         "run_dir": pl.get("run_dir") or "", "pseudonymised_for_viewer": pl.get("pseudonymised"),
                         "people": len(pl.get("person_ids", [])), "person_ids": ";".join(pl.get("person_ids", [])),
                         "entry_hash": e.entry_hash})
        cols = ["seq", "created_at", "user", "role", "purpose", "what", "run_dir", "pseudonymised_for_viewer",
                "people", "person_ids", "entry_hash"]
        data = csv_bytes(pd.DataFrame(recs, columns=cols), numbers=("seq", "people"))
        return Response(data, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="disseminations.csv"'})

    # -- admin ----------------------------------------------------------------------------------------------
    @app.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    def users_page(request: Request):
        s = need(request, "admin")
        return ws.render("users.html", request, s, users=ws.accounts.users(), roles=access.ROLES, title="Users")

    @app.post("/admin/users", include_in_schema=False)
    async def users_write(request: Request):
        form = await request.form()
        s = need_write(request, str(form.get("csrf_token") or ""), "admin")
        action = str(form.get("action") or "")
        name = str(form.get("name") or "")
        from starlette.concurrency import run_in_threadpool
        try:
            if action == "add":
                await run_in_threadpool(ws.accounts.add, name, str(form.get("role") or ""),
                                        str(form.get("password") or ""), by=s.user)
            elif action in ("disable", "enable"):
                if name == s.user and action == "disable":
                    raise Refused(400, "you cannot disable your own account")
                await run_in_threadpool(getattr(ws.accounts, action), name, by=s.user)
            else:
                raise Refused(400, "unknown action")
        except UsageError as exc:
            raise Refused(400, str(exc)) from None
        return RedirectResponse("/admin/users", status_code=303)

    # -- the JSON API (CONTRACT §4) ----------------------------------------------------------------------------
    api_errors = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
                  422: {"model": ErrorOut}}

    @app.get("/api/session", response_model=SessionOut, responses=api_errors, tags=["session"])
    def api_session(request: Request):
        """Who is signed in, their role, and the CSRF token every write must send as ``X-CSRF-Token``."""
        s = need(request)
        return SessionOut(user=s.user, role=s.role, csrf_token=s.csrf_token)

    @app.get("/api/runs", response_model=RunsOut, responses=api_errors, tags=["runs"])
    def api_runs(request: Request):
        """The runs the user may see (none for admin), newest as-of first, with the lists the role may see."""
        s = need(request)
        if not access.lists_for(s.role):
            return RunsOut(runs=[])
        return RunsOut(runs=[RunOut(run_id=r.run_id, as_of=r.as_of, ok=r.ok,
                                    lists=list(access.lists_for(s.role)) if r.ok else [])
                             for r in ws.catalog.runs()])

    @app.get("/api/runs/{run_id}/lists/{list_name}", response_model=ListOut,
             responses={**api_errors, 409: {"model": ErrorOut}}, tags=["runs"])
    def api_list(request: Request, run_id: str, list_name: str):
        """A list's rows as the role may see them (outreach: no score, no group, no reasons; auditors:
        pseudonymised person IDs), each with its review state on reviewed lists. 403 for a list the role may
        not see. Logged as a release of person-level data."""
        s = need(request)
        if list_name not in LIST_NAMES:
            raise Refused(404, "no such list")
        if not access.may_see_list(s.role, list_name):
            raise Refused(403, f"the {s.role} role may not see {list_name}")
        run = run_of(run_id)
        pseudo = ws.pseudo(s.role, run)
        _, rows = _rows_for(ws, run, s.role, list_name, pseudo)
        ids = run.list_table(list_name)["person_id"].tolist()
        if s.role != "outreach":
            st = _statuses(ws, run, [list_name], ids).get(list_name)
            if st:
                for pid, row in zip(ids, rows):
                    row["review"] = _status_dict(st.get(pid))
        release(s, run, ids, f"GET /api/runs/{run.run_id}/lists/{list_name}", pseudo is not None)
        return ListOut(run_id=run.run_id, list=list_name, pseudonymised=pseudo is not None, rows=rows)

    @app.post("/api/runs/{run_id}/reviews", status_code=201, response_model=EntryOut,
              responses={**api_errors, 400: {"model": ErrorOut}, 409: {"model": ErrorOut}}, tags=["reviews"])
    def api_review(request: Request, run_id: str, body: ReviewIn = Body(...)):
        """Record a decision (approve, decline or defer, with a reason) on a candidate; needs the header
        ``X-CSRF-Token``. Prosecutors review custom_notifications; supervisors call_in and custom_notifications.
        Answers the audit entry written."""
        s = need_write(request, request.headers.get("x-csrf-token"))
        if not _may_review(s.role, body.list):
            raise Refused(403, f"the {s.role} role does not review {body.list}")
        return EntryOut(**_entry_dict(_review(s, run_id, body)))

    @app.post("/api/runs/{run_id}/outreach", status_code=201, response_model=EntryOut,
              responses={**api_errors, 400: {"model": ErrorOut}, 409: {"model": ErrorOut}}, tags=["outreach"])
    def api_outreach(request: Request, run_id: str, body: OutreachIn = Body(...)):
        """Record an outreach attempt or outcome for a service referral (outreach role; header
        ``X-CSRF-Token``). Read back as interventions by ``fdnet evaluate``."""
        s = need_write(request, request.headers.get("x-csrf-token"), "outreach")
        return EntryOut(**_entry_dict(_outreach(s, run_id, body)))

    @app.get("/api/audit/entries", response_model=list[EntryOut], responses={**api_errors, 400: {"model": ErrorOut}},
             tags=["audit"])
    def api_audit(request: Request, kind: str | None = None, after: int = 0, limit: int = 500):
        """Audit entries after sequence number ``after`` (auditor role), person IDs pseudonymised."""
        need(request, "auditor")
        limit = max(1, min(int(limit), 5000))
        p = ws.pseudo("auditor", None)
        try:
            got = ws.log.entries(kind=kind)
        except UsageError as exc:      # an unknown kind
            raise Refused(400, str(exc)) from None
        out = [e for e in got if e.seq > after][:limit]
        return [EntryOut(**dict(_entry_dict(e), payload=_pseudo_payload(e.payload, p))) for e in out]

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(request: Request):
        need(request)
        return JSONResponse(app.openapi())

    return app


def _session_key(s) -> str:
    """A session's key for in-memory state (blind review's reveals): the SHA-256 of its id, never the id."""
    return hashlib.sha256(s.sid.encode()).hexdigest()


def _ego(ws: Workspace, run: RunEntry, pid: str, ex: dict, hide_score: bool, pseudo) -> dict:
    """The two-step ego network of ``pid`` from the run's edges, as the page's script draws it."""
    from ..report.networks import ego_data
    try:
        data = ego_data(run.edge_view(), [pid], scores=run.score_view(), explanations={pid: ex},
                        listed={pid: [(n, 0) for n in run.listed().get(pid, [])]})
    except Exception:    # a run whose edges cannot be drawn still shows its evidence
        return {"people": [], "edges": [], "egos": [], "groups": [], "group": [], "score": [], "_ids": []}
    data["_ids"] = [p for p in data.get("people", []) if p != pid]
    if hide_score:
        data["score"] = [0 for _ in data.get("score", [])]
        for e in data.get("egos", []):
            e["c"], e["s"] = [], []
    if pseudo is not None:
        data["people"] = [pseudo(p) for p in data["people"]]
    return data


def _version() -> str:
    try:
        from .. import __version__
        return __version__
    except ImportError:
        return "unknown"
