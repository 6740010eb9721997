"""The casework pages: sign in, the queue, a case, its decision and approval, the filing, people.

A Starlette application, server-rendered with Jinja2 (templates in ``casework/templates``, the style
inline: no file from the internet, no script at all). The scoring service mounts it on ``/cases``
(``amlscore serve``; :mod:`amlscore.cli.service_app`), and it runs alone too (tests, ``create_app``).

Who: only a named person (:mod:`amlscore.core.identity`) signs in: a session cookie (``HttpOnly``,
``SameSite=Strict``, random 256-bit token; the session is a row of the users database, kept by the token's
hash, so every worker and a restart know it) after name and password, or
``Authorization: Basic`` for scripts. A shared API key (``Bearer`` / ``X-API-Key``) names no person and
is refused with 403 on every path, whatever its role; so is a person whose role is ``channel``: no
risk level, explanation or case datum reaches them. Every form carries the session's CSRF token.
A revoked person's session ends at their next request.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from amlscore.casework.config import CaseworkConfig, load_casework_config
from amlscore.casework.deadlines import today_bank
from amlscore.casework.dispositions import export_dispositions
from amlscore.casework.filings import FilingInvalid, large_value_report_xml, suspicious_report_xml
from amlscore.casework.narrative import draft_narrative
from amlscore.casework.store import STATUSES, CaseStore, QueueFilter
from amlscore.casework.workflow import DECISIONS, MEASURES, Casework, CaseworkError, NotAllowed
from amlscore.core.audit import new_ulid
from amlscore.settings import default_data_dir, default_state_dir
from amlscore.core.identity import (
    CASE_ROLES,
    PERSON_ROLES,
    CredentialRefused,
    IdentityError,
    Person,
    Session,
    SignInLocked,
    UserStore,
    basic_credentials,
)

COOKIE = "aml_cases"
SESSION_SECONDS = 8 * 3600
PAGE_SIZE = 50
_TEMPLATES = Path(__file__).parent / "templates"


class _Refused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class CaseworkSite:
    """What the pages work on: the stores, opened at the first request (the app is built at import time)."""

    def __init__(self, state_dir: Path | None, data_dir: Path | None, config: CaseworkConfig | None) -> None:
        self._state_dir = Path(state_dir) if state_dir else None
        self._data_dir = Path(data_dir) if data_dir else None
        self._config = config
        self._lock = threading.Lock()
        self._work: Casework | None = None
        self._users: UserStore | None = None

    @property
    def state_dir(self) -> Path:
        # resolved at the first request: the service's process gets AML_STATE_DIR from `amlscore serve`
        return self._state_dir or default_state_dir()

    @property
    def data_dir(self) -> Path | None:
        return self._data_dir or default_data_dir()

    def _open(self) -> None:
        with self._lock:
            if self._work is None:
                config = self._config or load_casework_config()
                self._users = UserStore.in_state(self.state_dir)
                self._work = Casework(CaseStore.in_state(self.state_dir), config)

    @property
    def work(self) -> Casework:
        self._open()
        assert self._work is not None
        return self._work

    @property
    def users(self) -> UserStore:
        self._open()
        assert self._users is not None
        return self._users

    def close(self) -> None:
        with self._lock:
            if self._work is not None:
                self._work.store.close()
            if self._users is not None:
                self._users.close()
            self._work = self._users = None


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["score"] = lambda v: "" if v is None else f"{float(v):.1f}"
    env.filters["money"] = lambda v: "" if v in (None, "") else f"{float(v):,.2f}"
    env.filters["when"] = lambda v: "" if not v else str(v).replace("T", " ")[:19]
    return env


def create_app(state_dir: str | Path | None = None, data_dir: str | Path | None = None,
               config: CaseworkConfig | None = None) -> Starlette:
    """The casework pages over the state folder's stores (mount it, e.g. on ``/cases``).

    ``state_dir`` and ``data_dir`` default to ``AML_STATE_DIR`` / ``AML_DATA_DIR`` (:mod:`amlscore.settings`),
    read at the first request. Approved dispositions are written to ``<data_dir>/feedback/casework.csv``.
    """
    site = CaseworkSite(Path(state_dir) if state_dir else None, Path(data_dir) if data_dir else None, config)
    env = _env()

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(base=base(request), **ctx)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store",
                                                              "Content-Security-Policy": "default-src 'none'; "
                                                              "style-src 'unsafe-inline'; img-src 'self' data:; "
                                                              "form-action 'self'; frame-ancestors 'none'",
                                                              "X-Content-Type-Options": "nosniff"})

    def refused(request: Request, err: _Refused) -> Response:
        if "text/html" in request.headers.get("accept", "") or request.method == "GET":
            resp: Response = render(request, "error.html.j2", status=err.status, message=err.message, person=None)
        else:
            resp = JSONResponse({"error": err.message, "status": err.status}, status_code=err.status)
        if err.retry_after is not None:
            resp.headers["Retry-After"] = str(err.retry_after)
        return resp

    def session_of(request: Request) -> Session | None:
        return site.users.session(request.cookies.get(COOKIE))

    def who(request: Request) -> tuple[Person, Session | None]:
        """The signed-in person; refuses shared keys, unknown credentials and the channel role."""
        headers = request.headers
        creds = basic_credentials(headers.get("authorization"))
        if creds is None and (headers.get("authorization") or headers.get("x-api-key")):
            raise _Refused(403, "The casework pages need a named person: a shared API key names no one. "
                                "Sign in with your own name and password.")
        session = None
        if creds is not None:
            try:
                person = site.users.authenticate(*creds)
            except SignInLocked as exc:
                raise _Refused(429, str(exc), exc.retry_after) from None
            except CredentialRefused as exc:
                raise _Refused(401, str(exc)) from None
        else:
            session = session_of(request)
            if session is None:
                raise _Refused(401, "Sign in first.")
            found = site.users.person(session.name)  # a revoked person's session ends here
            if found is None:
                site.users.close_session(request.cookies.get(COOKIE))
                raise _Refused(401, "Your sign-in is no longer valid.")
            person = found
        if person.role not in CASE_ROLES:
            raise _Refused(403, f"The {person.role} role may not open the casework pages.")
        return person, session

    async def form_of(request: Request, session: Session | None) -> dict[str, Any]:
        form = await request.form()
        data: dict[str, Any] = {k: form.getlist(k) if k == "measures" else form.get(k) for k in form.keys()}
        if session is not None and not secrets.compare_digest(str(data.get("csrf") or ""), session.csrf):
            raise _Refused(403, "The form's security token does not match your session: reload the page.")
        return data

    def guarded(handler: Any, html_redirect: bool = True) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                person, session = who(request)
                return await handler(request, person, session)
            except _Refused as err:
                if err.status == 401 and html_redirect and request.method == "GET" and \
                        not request.headers.get("authorization"):
                    return RedirectResponse(f"{base(request)}/signin?{urlencode({'next': str(request.url.path)})}",
                                            status_code=303)
                return refused(request, err)
            except NotAllowed as exc:
                return refused(request, _Refused(403, str(exc)))
            except (CaseworkError, IdentityError, FilingInvalid) as exc:
                return refused(request, _Refused(getattr(exc, "status", 400), str(exc)))
        return endpoint

    # -- sign in / out ----------------------------------------------------------------------------
    async def signin_page(request: Request) -> Response:
        return render(request, "signin.html.j2", person=None, error=None, next=request.query_params.get("next", ""))

    async def signin(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name") or ""), str(form.get("password") or "")
        nxt = str(form.get("next") or "")
        try:
            person = site.users.authenticate(name, password)
        except SignInLocked as exc:
            minutes = max(1, round(exc.retry_after / 60))
            page = render(request, "signin.html.j2", status=429, person=None, next=nxt,
                          error=f"Too many failed sign-ins for this name: try again in about {minutes} minute(s).")
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        except CredentialRefused:
            return render(request, "signin.html.j2", status=401, person=None, error="Unknown name or wrong password.",
                          next=nxt)
        if person.role not in CASE_ROLES:
            return render(request, "signin.html.j2", status=403, person=None, next="",
                          error=f"The {person.role} role may not open the casework pages.")
        token, _ = site.users.open_session(person.name, SESSION_SECONDS)
        target = nxt if nxt.startswith(base(request) + "/") and "//" not in nxt else f"{base(request)}/"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                        path=base(request) or "/")
        return resp

    async def signout(request: Request) -> Response:
        site.users.close_session(request.cookies.get(COOKIE))
        resp = RedirectResponse(f"{base(request)}/signin", status_code=303)
        resp.delete_cookie(COOKIE, path=base(request) or "/")
        return resp

    # -- the queue --------------------------------------------------------------------------------
    async def queue(request: Request, person: Person, session: Session | None) -> Response:
        q = request.query_params
        statuses = tuple(s for s in q.getlist("status") if s in STATUSES) or ("open", "in_review", "decided", "approved")
        sort = q.get("sort") if q.get("sort") in ("deadline", "score") else "deadline"
        try:
            page = max(1, int(q.get("page", "1")))
        except ValueError:
            page = 1
        f = QueueFilter(statuses=statuses, customer_id=q.get("customer") or None, assignee=q.get("assignee") or None,
                        overdue_only=q.get("overdue") == "1", sort=sort, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        today = today_bank()
        rows, total = site.work.store.queue(f, today)
        counts = site.work.store.counts(today)
        lv = site.work.store.large_value_due(limit=10)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"total": total, "page": page, "cases": rows, "counts": counts})
        return render(request, "queue.html.j2", person=person, csrf=session.csrf if session else "", rows=rows,
                      total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)), f=f, counts=counts,
                      today=today.isoformat(), statuses=STATUSES, large_value=lv,
                      qs=urlencode([(k, v) for k, v in q.multi_items() if k != "page"]))

    # -- a case -----------------------------------------------------------------------------------
    async def case_page(request: Request, person: Person, session: Session | None) -> Response:
        case_id = request.path_params["case_id"]
        work = site.work
        case = work.store.case(case_id)
        if case is None:
            raise _Refused(404, f"There is no case {case_id!r}.")
        work.record_view(case_id, person)
        alerts = work.store.alerts_of(case_id)
        customer = work.store.customer(case["customer_id"])
        draft = case["narrative"] or draft_narrative(case, alerts, customer)
        people = [u for u in site.users.list() if u.revoked_at is None and u.role in CASE_ROLES]
        today = today_bank().isoformat()
        return render(request, "case.html.j2", person=person, csrf=session.csrf if session else "", case=case,
                      alerts=alerts, customer=customer, history=work.store.history(case_id), draft=draft,
                      decisions=DECISIONS, measures=MEASURES, people=people, today=today,
                      overdue=bool(case["due_date"] and case["due_date"] < today),
                      filing=work.store.filing(case_id), may_approve=person.role in ("reviewer", "admin"))

    async def move(request: Request, person: Person, session: Session | None) -> Response:
        case_id, what = request.path_params["case_id"], request.path_params["move"]
        data = await form_of(request, session)
        work = site.work
        if what == "triage":
            work.triage(case_id, person)
        elif what == "assign":
            target = site.users.person(str(data.get("assignee") or ""))
            if target is None:
                raise CaseworkError(f"There is no active person named {data.get('assignee')!r}.")
            work.assign(case_id, person, target)
        elif what == "comment":
            work.comment(case_id, person, str(data.get("text") or ""))
        elif what == "decide":
            work.decide(case_id, person, str(data.get("decision") or ""), str(data.get("reason") or ""),
                        narrative=str(data.get("narrative") or "").replace("\r\n", "\n"),
                        typology=str(data.get("typology") or "") or None,
                        measures=tuple(str(m) for m in data.get("measures") or ()))
        elif what == "approve":
            def build(case: dict[str, Any], alerts: list[dict[str, Any]]) -> bytes:
                return suspicious_report_xml(case, alerts, work.store.customer(case["customer_id"]), work.config)

            work.approve(case_id, person, str(data.get("note") or ""), filing_xml=build)
            if site.data_dir is not None:
                export_dispositions(work.store, site.data_dir)
        elif what == "send_back":
            work.send_back(case_id, person, str(data.get("reason") or ""))
        elif what == "file":
            work.file(case_id, person, str(data.get("reference") or ""))
        else:
            raise _Refused(404, f"There is no action {what!r} on a case.")
        return RedirectResponse(f"{base(request)}/case/{case_id}", status_code=303)

    async def filing_xml(request: Request, person: Person, session: Session | None) -> Response:
        case_id = request.path_params["case_id"]
        filing = site.work.store.filing(case_id)
        if filing is None:
            raise _Refused(404, f"Case {case_id} has no filing: a suspicious decision must be approved first.")
        site.work.record_download(case_id, person, filing["filing_id"])
        return Response(bytes(filing["xml"]), media_type="application/xml", headers={
            "Content-Disposition": f'attachment; filename="{filing["filing_id"]}.xml"', "Cache-Control": "no-store"})

    # -- large-value reports ----------------------------------------------------------------------
    async def large_value_report(request: Request, person: Person, session: Session | None) -> Response:
        await form_of(request, session)
        if person.role not in ("reviewer", "admin"):
            raise NotAllowed(f"The {person.role} role may not file large-value reports.")
        import json

        work = site.work
        with work.store._lock:
            rows = [dict(r) for r in work.store.db.execute(
                "SELECT txn_id, customer_id, due_date, txn_json FROM large_value WHERE filing_id IS NULL "
                "ORDER BY due_date, txn_id LIMIT 5000")]
        if not rows:
            raise CaseworkError("No large-value transaction is waiting for a report.")
        entries = [{"txn_id": r["txn_id"], "customer_id": r["customer_id"], "due_date": r["due_date"],
                    "txn": json.loads(r["txn_json"])} for r in rows]
        customers = {c: work.store.customer(c) or {} for c in {e["customer_id"] for e in entries}}
        report_id = f"LVR-{new_ulid()}"
        xml = large_value_report_xml(entries, customers, work.config, prepared_by=person.key_id, report_id=report_id)
        filing_id = work.freeze_large_value([e["txn_id"] for e in entries], xml, person)
        return Response(xml, media_type="application/xml", headers={
            "Content-Disposition": f'attachment; filename="{filing_id}.xml"', "Cache-Control": "no-store"})

    # -- people (admin) ---------------------------------------------------------------------------
    async def users_page(request: Request, person: Person, session: Session | None) -> Response:
        if person.role != "admin":
            raise NotAllowed("Only an admin may manage people.")
        rows = site.users.list()
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"users": [r.__dict__ for r in rows]})
        return render(request, "users.html.j2", person=person, csrf=session.csrf if session else "", users=rows,
                      roles=PERSON_ROLES, created=None)

    async def users_add(request: Request, person: Person, session: Session | None) -> Response:
        if person.role != "admin":
            raise NotAllowed("Only an admin may create people.")
        if request.headers.get("content-type", "").startswith("application/json"):
            data = await request.json()
        else:
            data = await form_of(request, session)
        name, role = str(data.get("name") or ""), str(data.get("role") or "")
        password = site.users.add(name, role, by=person.key_id, password=(data.get("password") or None),
                                  display_name=(data.get("display_name") or None))
        if request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"name": name, "role": role, "password": password}, status_code=201)
        return render(request, "users.html.j2", status=201, person=person, csrf=session.csrf if session else "",
                      users=site.users.list(), roles=PERSON_ROLES, created=(name, password))

    async def users_revoke(request: Request, person: Person, session: Session | None) -> Response:
        if person.role != "admin":
            raise NotAllowed("Only an admin may revoke people.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            await form_of(request, session)
        name = request.path_params["name"]
        site.users.revoke(name, by=person.key_id)
        site.users.close_sessions_of(name)
        if request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"name": name, "revoked": True})
        return RedirectResponse(f"{base(request)}/admin/users", status_code=303)

    routes = [
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/", guarded(queue), methods=["GET"]),
        Route("/case/{case_id}", guarded(case_page), methods=["GET"]),
        Route("/case/{case_id}/filing.xml", guarded(filing_xml), methods=["GET"]),
        Route("/case/{case_id}/{move}", guarded(move), methods=["POST"]),
        Route("/large-value/report", guarded(large_value_report), methods=["POST"]),
        Route("/admin/users", guarded(users_page), methods=["GET"]),
        Route("/admin/users", guarded(users_add), methods=["POST"]),
        Route("/admin/users/{name}/revoke", guarded(users_revoke), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.site = site
    return app

