"""Page routes: public home, reader sign-in and registration, my account, staff console.

Pages sign in with a signed session cookie; every form carries the session's CSRF token
(htmx sends it as a header). Handlers stay thin: they parse the form, call one service and
render a template.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlparse

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biblioverse import accounts, audit, circulation, i18n, libraries, readers
from biblioverse.access import Actor, Permission, PrincipalKind
from biblioverse.accounts.api import LoginPolicy
from biblioverse.circulation.words import READER
from biblioverse.deps import DbSession, Now, ReadSession, client_address, principals
from biblioverse.errors import (
    DomainError,
    DuplicateValue,
    PermissionDenied,
    Throttled,
    ValidationFailed,
)
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.web.templating import globals_for, templates

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


# --- session, CSRF and the acting principal -----------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Every state-changing page request proves it came from our own form."""
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(str(expected), sent):
        raise PermissionDenied(_("The form has expired. Please reload the page and try again."))


Csrf = Depends(check_csrf)


def page_actor(request: Request, session: ReadSession) -> Actor | None:
    kind, pid = request.session.get("kind"), request.session.get("id")
    if not kind or not isinstance(pid, int):
        return None
    epoch = request.session.get("epoch", 0)
    actor = principals(request).actor_for(
        session, kind, pid, epoch=epoch if isinstance(epoch, int) else -1
    )
    if actor is None:
        request.session.clear()
    return actor


def start_session(request: Request, session: Session, actor: Actor) -> None:
    """A fresh page session for who just signed in (no fixation), in their current
    sign-in epoch: a later sign-out or new password anywhere ends it."""
    request.session.clear()
    epoch = principals(request).sign_in_epoch(session, actor.kind.value, actor.id)
    request.session.update({"kind": actor.kind.value, "id": actor.id, "epoch": epoch})
    csrf_token(request)


PageActor = Annotated[Actor | None, Depends(page_actor)]


def render(
    request: Request, template: str, actor: Actor | None = None, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    context = globals_for(
        request=request,
        actor=actor,
        csrf=csrf_token(request),
        path=request.url.path,
        path_qs=_path_with_query(request),
        **ctx,
    )
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    _page_headers(response, private=actor is not None)
    return response


def _path_with_query(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def _page_headers(response: Response, *, private: bool) -> None:
    # htmx asks the same URL for a fragment: caches (and the Back button) must keep the two
    # apart. A signed-in page holds personal data: no copy on a shared kiosk's disk.
    response.headers["Vary"] = "HX-Request, Cookie"
    if private:
        response.headers["Cache-Control"] = "no-store"


def _session_actor(request: Request) -> Actor | None:
    """Who the session says is signed in, without the database: enough for the header."""
    kind, pid = request.session.get("kind"), request.session.get("id")
    if isinstance(kind, str) and kind in {k.value for k in PrincipalKind} and isinstance(pid, int):
        return Actor(PrincipalKind(kind), pid)
    return None


# Module-level, so the catalog extractor sees them (it skips calls nested in calls).
DEFAULT_TITLE = N_("Something went wrong")
DEFAULT_MESSAGE = N_("Something went wrong on our side.")
ERROR_TITLES = {
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Conflict"),
    422: N_("Please check your input"),
    429: N_("Too many attempts"),
    503: N_("Busy, please try again"),
}
PLAIN_MESSAGES = {
    404: N_("The page you asked for does not exist."),
    405: N_("This page cannot be used that way."),
    422: N_("Some of what was sent is not valid. Please go back and check the form."),
    503: N_("The library system is busy. Please try again in a moment."),
}


def error_page(
    request: Request, status: int, message: str | None = None, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """An error for a browser: a whole page, or a short alert when htmx asked."""
    text = message or _(PLAIN_MESSAGES.get(status, DEFAULT_MESSAGE))
    title = _(ERROR_TITLES.get(status, DEFAULT_TITLE))
    template = "_flash.html" if request.headers.get("hx-request") else "error.html"
    response = templates.TemplateResponse(
        request,
        template,
        globals_for(
            request=request,
            actor=_session_actor(request),
            csrf=request.session.get("csrf", ""),
            path=request.url.path,
            path_qs=request.url.path,
            status=status,
            title=title,
            message=text,
        ),
        status_code=status,
        headers=headers,
    )
    _page_headers(response, private=True)
    return response


def _safe_next(url: str | None, default: str) -> str:
    """Only same-site paths: a sign-in link must not bounce a reader to another site."""
    if not url:
        return default
    parsed = urlparse(url)
    if parsed.scheme or parsed.netloc or not url.startswith("/") or url.startswith("//"):
        return default
    return url


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def signin_redirect(request: Request) -> RedirectResponse:
    return _redirect(f"/signin?next={quote(request.url.path)}")


# --- public --------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, actor: PageActor, now: Now) -> HTMLResponse:
    units = libraries.service_points(session)
    rows = [(u, libraries.status_at(u, now)) for u in units]
    return render(request, "home.html", actor, libraries=rows, now=now)


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/lang/{code}")
def switch_language(code: str, request: Request, next: str | None = None) -> Response:
    locale = i18n.normalise(code) or i18n.DEFAULT_LOCALE
    response = _redirect(_safe_next(next or request.headers.get("referer-path"), "/"))
    response.set_cookie("lang", locale, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(
    request: Request, actor: PageActor, next: str | None = None, kind: str = "reader"
) -> Response:
    if actor is not None:
        return _redirect("/staff" if actor.is_staff else "/account")
    return render(request, "signin.html", None, next=_safe_next(next, ""), kind=kind, error=None)


@router.post("/signin", response_class=HTMLResponse, dependencies=[Csrf])
def signin(
    request: Request,
    session: DbSession,
    now: Now,
    policy: LoginPolicy,
    login: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
    kind: Annotated[str, Form()] = "reader",
    next: Annotated[str, Form()] = "",
) -> Response:
    principal = PrincipalKind.STAFF if kind == "staff" else PrincipalKind.READER
    try:
        with accounts.failures_kept(session):
            actor = accounts.authenticate(
                session,
                kind=principal,
                login=login,
                secret=password,
                address=client_address(request),
                at=now,
                policy=policy,
            )
    except Throttled as exc:
        minutes = max(1, exc.retry_after_s // 60)
        msg = _("Too many failed attempts. Please wait %(minutes)s minutes.") % {"minutes": minutes}
        return render(
            request, "signin.html", None, 429, next=next, kind=kind, error=msg, login=login
        )
    except DomainError:
        msg = _("Wrong card number, user name or password.")
        return render(
            request, "signin.html", None, 401, next=next, kind=kind, error=msg, login=login
        )
    start_session(request, session, actor)
    default = "/staff" if actor.is_staff else "/account"
    return _redirect(_safe_next(next, default))


@router.post("/signout", dependencies=[Csrf])
def signout(request: Request, session: DbSession, actor: PageActor, now: Now) -> Response:
    if actor is not None:
        accounts.sign_out(session, actor, at=now)
    request.session.clear()
    return _redirect("/")


def _home_choices(session: Session) -> list[libraries.OrgUnit]:
    return libraries.service_points(session)


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request, session: DbSession, actor: PageActor) -> HTMLResponse:
    return render(
        request,
        "register.html",
        actor,
        homes=_home_choices(session),
        values={},
        errors={},
        categories=_self_service_categories(),
    )


def _self_service_categories() -> list[tuple[str, str]]:
    return [
        ("adult", _("Adult (18 and over)")),
        ("student", _("Student")),
        ("child", _("Child (under 14, with a guardian)")),
        ("visitor", _("Visitor (30 days)")),
    ]


class RegisterForm(BaseModel):
    """The registration form as posted; the service validates the values."""

    name: str = Field(default="", max_length=500)
    birth_date: str = Field(default="", max_length=40)
    category: str = Field(default="", max_length=40)
    home_library_id: str = Field(default="", max_length=20)
    email: str = Field(default="", max_length=500)
    phone: str = Field(default="", max_length=100)
    guardian_name: str = Field(default="", max_length=500)
    password: str = Field(default="", max_length=500)
    password2: str = Field(default="", max_length=500)
    pin: str = Field(default="", max_length=100)

    def shown_again(self) -> dict[str, str]:
        """What the form may show back after an error: never the secrets."""
        return self.model_dump(exclude={"password", "password2", "pin"})


# Sync handlers on purpose: FastAPI runs them in its thread pool. An async handler doing
# blocking database work would hold the event loop while SQLite waits for the write lock,
# and the request holding that lock could then never finish.
@router.post("/register", response_class=HTMLResponse, dependencies=[Csrf])
def register(
    request: Request, session: DbSession, now: Now, form: Annotated[RegisterForm, Form()]
) -> Response:
    errors: dict[str, str] = {}
    try:
        birth: dt.date | None = dt.date.fromisoformat(form.birth_date)
    except ValueError:
        birth = None  # the service names the field
    if form.password != form.password2:
        errors["password2"] = _("The two passwords differ.")
    data = readers.NewReader(
        name=form.name,
        birth_date=birth,
        category=form.category,
        home_library_id=int(form.home_library_id) if form.home_library_id.isdigit() else None,
        email=form.email,
        phone=form.phone or None,
        guardian_name=form.guardian_name or None,
        password=form.password,
        pin=form.pin or None,
        preferred_locale=i18n.get_locale(),
    )
    reader = None
    try:
        if errors:
            readers.check_online_registration(session, data, at=now)
        else:
            reader = readers.register_online(session, data, at=now)
    except ValidationFailed as exc:
        for e in exc.errors:
            errors.setdefault(e.field, i18n.field_message(e))
    except DuplicateValue:
        errors["email"] = _("This e-mail address is already registered. Please sign in instead.")
    if reader is None:
        return render(
            request,
            "register.html",
            None,
            422,
            homes=_home_choices(session),
            values=form.shown_again(),
            errors=errors,
            categories=_self_service_categories(),
        )
    session.flush()
    start_session(request, session, accounts.actor_for_reader(reader))
    return _redirect("/account?welcome=1")


# --- reader --------------------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
def account(
    request: Request,
    session: DbSession,
    actor: ReaderPage,
    now: Now,
    welcome: int = 0,
    renewed: int = 0,
    refused: Annotated[str, Query(max_length=40)] = "",
    held: int = 0,
    hold_changed: Annotated[str, Query(max_length=20)] = "",
    hold_refused: Annotated[str, Query(max_length=40)] = "",
    courier: int = 0,
    courier_cancelled: int = 0,
    courier_refused: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    reader = readers.get(session, actor.id)
    home = libraries.get_unit(session, reader.home_library_id)
    units = libraries.unit_names(session)
    today = readers.local_today(now)
    status = readers.effective_status(readers.Status(reader.status), reader.expires_on, today)
    return render(
        request,
        "account.html",
        actor,
        reader=reader,
        home=home,
        status=status.value,
        welcome=bool(welcome),
        saved=False,
        errors={},
        values=_settings_values(reader),
        loans=circulation.open_loans(session, reader.id),
        now=now,
        renewed=renewed,
        refusal=_(READER[refused]) if refused in READER else "",
        holds=circulation.holds.holds_of(session, reader.id),
        hold_notice=_(HOLD_NOTICES[hold_changed])
        if hold_changed in HOLD_NOTICES
        else (_("Your hold is placed.") if held else ""),
        hold_refusal=_(READER[hold_refused]) if hold_refused in READER else "",
        fees=circulation.fees.fees_of(session, reader.id),
        history=circulation.reading_history(session, reader.id) if reader.keep_history else [],
        notices=[
            circulation.notices.words(n, units, home.timezone)
            for n in circulation.notices.recent(session, reader.id)
        ],
        balance=circulation.fees.balance(session, reader.id),
        couriers=circulation.courier.of_reader(session, reader.id),
        courier_notice=_("The courier is booked.")
        if courier
        else (_("The courier is called off.") if courier_cancelled else ""),
        courier_refusal=_(READER[courier_refused]) if courier_refused in READER else "",
    )


HOLD_NOTICES = {
    "cancel": N_("Your hold is cancelled."),
    "suspend": N_("Your hold is suspended: it keeps its place, and others go first."),
    "resume": N_("Your hold is active again."),
}


@router.post("/account/loans/{loan_id}/renew", dependencies=[Csrf])
def renew_loan(
    loan_id: DbId, request: Request, session: DbSession, actor: ReaderPage, now: Now
) -> Response:
    try:
        with session.begin_nested():
            circulation.renew(session, actor, loan_id, at=now)
    except DomainError as exc:
        return _redirect(f"/account?refused={exc.code}#loans")
    return _redirect(f"/account?renewed={loan_id}#loans")


@router.get("/account/data.json")
def account_data(request: Request, session: DbSession, actor: ReaderFile, now: Now) -> Response:
    """Everything the library holds about the signed-in reader, as one JSON file to keep."""
    sections: list[readers.ExportSection] = request.app.state.reader_export
    data = readers.export_data(session, actor, at=now, sections=sections)
    card = data["reader"]["card_number"]
    return JSONResponse(
        data,
        headers={
            "Content-Disposition": f'attachment; filename="biblioverse-{card}.json"',
            "Cache-Control": "no-store",
        },
    )


class SettingsForm(BaseModel):
    email: str = Field(default="", max_length=500)
    phone: str = Field(default="", max_length=100)
    preferred_locale: str = Field(default="", max_length=20)
    keep_history: str | None = Field(default=None, max_length=10)
    current_password: str = Field(default="", max_length=128)


def _settings_values(reader: readers.Reader) -> dict[str, str]:
    return {
        "email": reader.email or "",
        "phone": reader.phone or "",
        "preferred_locale": reader.preferred_locale or i18n.get_locale(),
        "keep_history": "on" if reader.keep_history else "",
    }


@router.post("/account/settings", response_class=HTMLResponse, dependencies=[Csrf])
def account_settings(
    request: Request,
    session: DbSession,
    actor: ReaderPage,
    now: Now,
    policy: LoginPolicy,
    form: Annotated[SettingsForm, Form()],
) -> Response:
    change = readers.OwnChange(
        keep_history=form.keep_history == "on",
        phone=form.phone,
        email=form.email,
        preferred_locale=i18n.normalise(form.preferred_locale) or None,
    )
    errors: dict[str, str] = {}
    try:
        with accounts.failures_kept(session):
            accounts.change_own_account(
                session,
                actor,
                change,
                current_password=form.current_password,
                address=client_address(request),
                policy=policy,
                keep_token=None,
                at=now,
            )
    except ValidationFailed as exc:
        errors = {e.field: i18n.field_message(e) for e in exc.errors}
    except DuplicateValue:
        errors = {"email": _("This e-mail address is already registered.")}
    except Throttled:
        errors = {"current_password": _("Too many wrong passwords. Please wait and try again.")}
    reader = readers.get(session, actor.id)
    # After an error the form shows what the reader typed, not what is stored.
    values = (
        _settings_values(reader)
        if not errors
        else {
            "email": form.email,
            "phone": form.phone,
            "preferred_locale": form.preferred_locale,
            "keep_history": "on" if form.keep_history == "on" else "",
        }
    )
    return render(
        request,
        "_settings_form.html",
        actor,
        reader=reader,
        saved=not errors,
        errors=errors,
        values=values,
        status_code=200 if not errors else 422,
    )


# --- staff console -------------------------------------------------------------------


def places_for(session: Session, actor: Actor, permission: Permission) -> list[libraries.OrgUnit]:
    """The libraries (not the consortium) where the actor's roles include ``permission``:
    what a console page lets them choose from."""
    return [
        u
        for u in libraries.list_units(session)
        if u.kind != libraries.OrgKind.CONSORTIUM.value and actor.can(permission, u.path)
    ]


def chosen_of(places: list[libraries.OrgUnit], library: str) -> libraries.OrgUnit | None:
    """The library asked for (by id, as the query string has it), else the first."""
    return next((u for u in places if str(u.id) == library), places[0] if places else None)


class SignInFirst(Exception):
    """A page for signed-in people, asked by someone who is not: the app answers with the
    sign-in page (``json``: a 401, for a file a script asked for)."""

    def __init__(self, *, json: bool = False) -> None:
        super().__init__("sign in first")
        self.json = json


class PageForbidden(Exception):
    """Signed in, but this page is not for them: the app answers with a 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def staff_page(
    permission: Permission | None = None, refusal: str = ""
) -> Callable[[Actor | None], Awaitable[Actor]]:
    """A page dependency: signed-in staff whose roles include ``permission`` somewhere (the
    page's service then checks the library); else the sign-in page, or a page saying
    ``refusal`` (marked with N_, translated when it is said)."""

    async def dependency(actor: PageActor) -> Actor:
        if actor is None:
            raise SignInFirst()
        if not actor.is_staff:
            raise PageForbidden(_("The staff console is for library staff."))
        if permission is not None and not actor.can(permission):
            raise PageForbidden(_(refusal))
        return actor

    return dependency


async def reader_page(actor: PageActor) -> Actor:
    if actor is None or not actor.is_reader:
        raise SignInFirst()
    return actor


async def reader_file(actor: PageActor) -> Actor:
    if actor is None or not actor.is_reader:
        raise SignInFirst(json=True)
    return actor


ReaderDesk = Annotated[
    Actor,
    Depends(staff_page(Permission.READERS_READ, N_("Your role does not include reader accounts."))),
]
Auditor = Annotated[
    Actor,
    Depends(staff_page(Permission.AUDIT_READ, N_("Your role does not include the audit log."))),
]
# Who may open a page: each handler names one, and the app answers a refusal.
StaffPage = Annotated[Actor, Depends(staff_page())]
ReaderPage = Annotated[Actor, Depends(reader_page)]
ReaderFile = Annotated[Actor, Depends(reader_file)]


def _scope_names(session: Session, actor: Actor) -> list[tuple[str, str]]:
    names = []
    for g in actor.grants:
        unit = libraries.get_unit(session, g.org_unit_id)
        names.append((g.role.value, unit.name(i18n.get_locale())))
    return names


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request, session: DbSession, who: StaffPage, now: Now) -> Response:
    counts: dict[str, int] = {}
    if who.can(Permission.READERS_READ):
        unit_ids = libraries.units_within(session, who.scopes_for(Permission.READERS_READ))
        rows = session.execute(
            select(readers.Reader.status, func.count())
            .where(readers.Reader.home_library_id.in_(unit_ids))
            .group_by(readers.Reader.status)
        ).all()
        counts = {str(s): int(n) for s, n in rows}
    return render(
        request,
        "staff/console.html",
        who,
        grants=_scope_names(session, who),
        counts=counts,
        section="home",
    )


READERS_PAGE = 50


def _reader_row_context(session: Session, now: dt.datetime) -> dict[str, Any]:
    return {
        "homes": {u.id: u for u in libraries.service_points(session)},
        "today": readers.local_today(now),
        "effective": readers.effective_status,
        "Status": readers.Status,
    }


@router.get("/staff/readers", response_class=HTMLResponse)
def staff_readers(
    request: Request,
    session: DbSession,
    who: ReaderDesk,
    now: Now,
    q: Annotated[str, Query(max_length=200)] = "",
    status: str = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    wanted = readers.Status(status) if status in {s.value for s in readers.Status} else None
    rows, total = readers.search(
        session,
        who,
        q=q,
        status=wanted,
        today=readers.local_today(now),
        limit=READERS_PAGE,
        offset=(page - 1) * READERS_PAGE,
    )
    template = (
        "staff/_reader_rows.html" if request.headers.get("hx-request") else "staff/readers.html"
    )
    return render(
        request,
        template,
        who,
        rows=rows,
        total=total,
        q=q,
        status=wanted.value if wanted else "",
        page=page,
        pages=max(1, -(-total // READERS_PAGE)),
        first=(page - 1) * READERS_PAGE + 1 if rows else 0,
        last=(page - 1) * READERS_PAGE + len(rows),
        section="readers",
        **_reader_row_context(session, now),
    )


@router.post(
    "/staff/readers/{reader_id}/activate", response_class=HTMLResponse, dependencies=[Csrf]
)
def staff_activate(
    reader_id: DbId, request: Request, session: DbSession, who: StaffPage, now: Now
) -> Response:
    note = ""
    try:
        with session.begin_nested():
            reader = readers.activate(session, who, reader_id, at=now)
        note = _("Activated. The card is valid from today.")
    except readers.InvalidStatusChange:
        # Someone else got there first (another desk, another tab): show the card as it is.
        reader = readers.get(session, reader_id)
        note = _("This card is no longer pending; it was changed elsewhere.")
    return render(
        request,
        "staff/_reader_row.html",
        who,
        r=reader,
        note=note,
        **_reader_row_context(session, now),
    )


@router.get("/staff/libraries", response_class=HTMLResponse)
def staff_libraries(request: Request, session: DbSession, who: StaffPage, now: Now) -> Response:
    units = libraries.list_units(session)
    rows = [(u, libraries.locations_of(session, u.id)) for u in units]
    return render(request, "staff/libraries.html", who, rows=rows, section="libraries", now=now)


@router.get("/staff/audit", response_class=HTMLResponse)
def staff_audit(request: Request, session: DbSession, who: Auditor) -> Response:
    unit_ids = libraries.units_within(session, who.scopes_for(Permission.AUDIT_READ))
    rows = audit.entries(session, unit_ids=unit_ids, limit=200)
    staff_ids = {e.actor_id for e in rows if e.actor_kind == PrincipalKind.STAFF}
    return render(
        request,
        "staff/audit.html",
        who,
        rows=rows,
        staff_names=accounts.staff_names(session, staff_ids),
        section="audit",
    )


def api_docs_page() -> HTMLResponse:
    html = (STATIC_DIR / "swagger.html").read_text()
    return HTMLResponse(html)
