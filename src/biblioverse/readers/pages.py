"""The readers' pages: registering online, the file of one's own data, and the staff
console's list of reader cards with activation. A reader's settings form is changed through
accounts (it may need the current password), and the account page shows circulation: both
are there, and take the form's values from :func:`settings_values`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from biblioverse import i18n, libraries
from biblioverse.access import Actor, Permission
from biblioverse.deps import DbSession, Now
from biblioverse.errors import DuplicateValue, ValidationFailed
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.readers import service
from biblioverse.readers.errors import InvalidStatusChange
from biblioverse.readers.models import Reader
from biblioverse.readers.rules import Status, effective_status
from biblioverse.web.pages import (
    Csrf,
    PageActor,
    ReaderFile,
    StaffPage,
    redirect,
    render,
    staff_page,
    start_session,
)

router = APIRouter(include_in_schema=False)


def settings_values(reader: Reader) -> dict[str, str]:
    """The reader's settings as their form shows them."""
    return {
        "email": reader.email or "",
        "phone": reader.phone or "",
        "preferred_locale": reader.preferred_locale or i18n.get_locale(),
        "keep_history": "on" if reader.keep_history else "",
    }


# --- registering online --------------------------------------------------------------


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
    not_me: str = Field(default="", max_length=10)  # "on": not the reader already on file

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
    data = service.NewReader(
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
    # Someone already on file with this name and birth date may be registering again: say
    # so, without showing their card to whoever typed the name (ADR 0036).
    duplicate = form.not_me != "on" and bool(service.possible_duplicates(session, form.name, birth))
    try:
        if errors or duplicate:
            service.check_online_registration(session, data, at=now)
        else:
            reader = service.register_online(session, data, at=now)
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
            409 if duplicate and not errors else 422,
            homes=_home_choices(session),
            values=form.shown_again(),
            errors=errors,
            duplicate=duplicate and not errors,
            categories=_self_service_categories(),
        )
    session.flush()
    start_session(request, session, service.actor_of(reader))
    return redirect("/account?welcome=1")


# --- the reader's own data -------------------------------------------------------------


@router.get("/account/data.json")
def account_data(request: Request, session: DbSession, actor: ReaderFile, now: Now) -> Response:
    """Everything the library holds about the signed-in reader, as one JSON file to keep."""
    sections: list[service.ExportSection] = request.app.state.reader_export
    data = service.export_data(session, actor, at=now, sections=sections)
    card = data["reader"]["card_number"]
    return JSONResponse(
        data,
        headers={
            "Content-Disposition": f'attachment; filename="biblioverse-{card}.json"',
            "Cache-Control": "no-store",
        },
    )


# --- staff console: reader cards ---------------------------------------------------------

ReaderDesk = Annotated[
    Actor,
    Depends(staff_page(Permission.READERS_READ, N_("Your role does not include reader accounts."))),
]
READERS_PAGE = 50


def _reader_row_context(session: Session, now: dt.datetime) -> dict[str, Any]:
    return {
        "homes": {u.id: u for u in libraries.service_points(session)},
        "today": service.local_today(now),
        "effective": effective_status,
        "Status": Status,
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
    wanted = Status(status) if status in {s.value for s in Status} else None
    rows, total = service.search(
        session,
        who,
        q=q,
        status=wanted,
        today=service.local_today(now),
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
            reader = service.activate(session, who, reader_id, at=now)
        note = _("Activated. The card is valid from today.")
    except InvalidStatusChange:
        # Someone else got there first (another desk, another tab): show the card as it is.
        reader = service.get(session, reader_id)
        note = _("This card is no longer pending; it was changed elsewhere.")
    return render(
        request,
        "staff/_reader_row.html",
        who,
        r=reader,
        note=note,
        **_reader_row_context(session, now),
    )
