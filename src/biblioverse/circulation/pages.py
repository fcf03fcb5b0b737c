"""A reader's own circulation pages: their account (loans, holds, fees, notices, courier
returns, settings) with renewals, holds placed and changed, courier returns booked, and
borrowing by phone. The desk's pages are in :mod:`.console`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from biblioverse import catalog, i18n, libraries, readers
from biblioverse.access import Actor
from biblioverse.circulation import courier as courier_returns  # /account has ?courier=
from biblioverse.circulation import errors, fees, holds, notices, presence, service
from biblioverse.circulation.words import READER, to_reader
from biblioverse.deps import DbSession, Now, client_address
from biblioverse.errors import DomainError, ValidationFailed, status_of
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.readers.pages import settings_values
from biblioverse.web.pages import Csrf, ReaderPage, redirect, render

router = APIRouter(include_in_schema=False)


# --- the account page ---------------------------------------------------------------------


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
        values=settings_values(reader),
        loans=service.open_loans(session, reader.id),
        now=now,
        renewed=renewed,
        refusal=_(READER[refused]) if refused in READER else "",
        holds=holds.holds_of(session, reader.id),
        hold_notice=_(HOLD_NOTICES[hold_changed])
        if hold_changed in HOLD_NOTICES
        else (_("Your hold is placed.") if held else ""),
        hold_refusal=_(READER[hold_refused]) if hold_refused in READER else "",
        fees=fees.fees_of(session, reader.id),
        history=service.reading_history(session, reader.id) if reader.keep_history else [],
        notices=[
            notices.words(n, units, home.timezone) for n in notices.recent(session, reader.id)
        ],
        balance=fees.balance(session, reader.id),
        couriers=courier_returns.of_reader(session, reader.id),
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
            service.renew(session, actor, loan_id, at=now)
    except DomainError as exc:
        return redirect(f"/account?refused={exc.code}#loans")
    return redirect(f"/account?renewed={loan_id}#loans")


# --- holds ------------------------------------------------------------------------------


class HoldForm(BaseModel):
    pickup_library_id: str = Field(default="", max_length=20)
    not_needed_after: str = Field(default="", max_length=40)


@router.get("/catalog/records/{record_id}/hold", response_class=HTMLResponse)
def hold_page(request: Request, record_id: DbId, session: DbSession, actor: ReaderPage) -> Response:
    """Reserve a title: choose where to collect it."""
    return _hold_page(request, session, actor, record_id)


def _hold_page(
    request: Request,
    session: DbSession,
    actor: Actor,
    record_id: int,
    *,
    refusal: str = "",
    status_code: int = 200,
    errors_: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    record = catalog.get_record(session, record_id)
    reader = readers.get(session, actor.id)
    mine = next(
        (h for h in holds.holds_of(session, reader.id) if h.hold.record_id == record.id), None
    )
    return render(
        request,
        "hold.html",
        actor,
        status_code,
        record=record,
        places=libraries.service_points(session),
        home_id=reader.home_library_id,
        mine=mine,
        refusal=refusal,
        errors=errors_ or {},
        values=values or {},
    )


@router.post("/catalog/records/{record_id}/hold", response_class=HTMLResponse, dependencies=[Csrf])
def place_hold(
    request: Request,
    record_id: DbId,
    session: DbSession,
    actor: ReaderPage,
    now: Now,
    form: Annotated[HoldForm, Form()],
) -> Response:
    if not form.pickup_library_id.isdigit():
        words = _("Choose a library to collect it at.")
        return _hold_page(request, session, actor, record_id, refusal=words, status_code=409)
    values = form.model_dump()
    wanted_until: dt.date | None = None
    try:
        text = form.not_needed_after.strip()
        wanted_until = dt.date.fromisoformat(text) if text else None
    except ValueError:
        problem = {"not_needed_after": _("A date as YYYY-MM-DD, or leave it empty.")}
        return _hold_page(
            request, session, actor, record_id, status_code=422, errors_=problem, values=values
        )
    try:
        with session.begin_nested():
            hold = holds.place(
                session,
                actor,
                reader_id=actor.id,
                record_id=record_id,
                pickup_unit_id=int(form.pickup_library_id),
                at=now,
                not_needed_after=wanted_until,
            )
    except ValidationFailed as exc:
        problem = {e.field: i18n.field_message(e) for e in exc.errors}
        return _hold_page(
            request, session, actor, record_id, status_code=422, errors_=problem, values=values
        )
    except DomainError as exc:
        refusal = to_reader(exc)
        return _hold_page(
            request, session, actor, record_id, refusal=refusal, status_code=status_of(exc)
        )
    return RedirectResponse(f"/account?held={hold.id}#holds", status_code=303)


@router.post("/account/holds/{hold_id}/{step}", dependencies=[Csrf])
def change_hold(
    request: Request,
    hold_id: DbId,
    step: Literal["cancel", "suspend", "resume"],
    session: DbSession,
    actor: ReaderPage,
    now: Now,
) -> Response:
    """Cancel, suspend (until resumed) or resume one of the reader's holds."""
    try:
        with session.begin_nested():
            if step == "cancel":
                holds.cancel(session, actor, hold_id, at=now)
            elif step == "suspend":
                holds.suspend(session, actor, hold_id, until=None, at=now)
            else:
                holds.resume(session, actor, hold_id, at=now)
    except DomainError as exc:
        return RedirectResponse(f"/account?hold_refused={exc.code}#holds", status_code=303)
    return RedirectResponse(f"/account?hold_changed={step}#holds", status_code=303)


# --- courier returns ----------------------------------------------------------------------

COURIER_FIELDS = {
    "loan_ids": N_("Choose at least one book to send back."),
    "address": N_("Give the address to collect from (5 to 500 characters)."),
    "pickup_at": N_("Choose a time from now to 30 days ahead."),
}


def _courier_page(
    request: Request,
    session: DbSession,
    actor: Actor,
    now: dt.datetime,
    *,
    values: dict[str, Any] | None = None,
    errors_: dict[str, str] | None = None,
    refusal: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    reader = readers.get(session, actor.id)
    home = libraries.get_unit(session, reader.home_library_id)
    loans = service.open_loans(session, reader.id)
    booked = courier_returns.booked_loans(session, reader.id)
    free = [x for x in loans if x.loan.id not in booked]
    tz = ZoneInfo(home.timezone)
    tomorrow = (now.astimezone(tz) + dt.timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    return render(
        request,
        "courier.html",
        actor,
        status_code,
        home=home,
        loans=free,
        booked=len(loans) - len(free),
        fee=courier_returns.quote(session, reader.id, [x.loan.id for x in free]),
        values=values
        or {"pickup_at": tomorrow.strftime("%Y-%m-%dT%H:%M"), "address": "", "loan_ids": set()},
        errors=errors_ or {},
        refusal=refusal,
        earliest=now.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
    )


@router.get("/account/courier", response_class=HTMLResponse)
def courier_page(request: Request, session: DbSession, actor: ReaderPage, now: Now) -> Response:
    """Send books back by courier: choose them, the address and the time."""
    return _courier_page(request, session, actor, now)


@router.post("/account/courier", response_class=HTMLResponse, dependencies=[Csrf])
async def book_courier(
    request: Request, session: DbSession, actor: ReaderPage, now: Now
) -> Response:
    form = await request.form()
    address = str(form.get("address", ""))[:600]
    when = str(form.get("pickup_at", ""))[:40]
    chosen = {int(v) for v in form.getlist("loan_id") if isinstance(v, str) and v.isdigit()}
    values = {"address": address, "pickup_at": when, "loan_ids": chosen}
    reader = readers.get(session, actor.id)
    tz = ZoneInfo(libraries.get_unit(session, reader.home_library_id).timezone)
    try:
        pickup = dt.datetime.fromisoformat(when).replace(tzinfo=tz)
    except ValueError:
        pickup = now - dt.timedelta(days=1)  # refused below as a time in the past
    try:
        with session.begin_nested():
            row = courier_returns.request(
                session,
                actor,
                reader_id=actor.id,
                loan_ids=sorted(chosen),
                address=address,
                pickup_at=pickup,
                at=now,
            )
    except ValidationFailed as exc:
        problems = {
            e.field: i18n.field_message(e)
            if e.code == "outside_service_hours"
            else _(COURIER_FIELDS[e.field])
            for e in exc.errors
        }
        return _courier_page(
            request, session, actor, now, values=values, errors_=problems, status_code=422
        )
    except DomainError as exc:
        refusal = to_reader(exc)
        return _courier_page(
            request, session, actor, now, values=values, refusal=refusal, status_code=status_of(exc)
        )
    return RedirectResponse(f"/account?courier={row.id}#courier", status_code=303)


@router.post("/account/courier/{courier_id}/cancel", dependencies=[Csrf])
def cancel_courier(
    request: Request, courier_id: DbId, session: DbSession, actor: ReaderPage, now: Now
) -> Response:
    try:
        with session.begin_nested():
            courier_returns.cancel(session, actor, courier_id, at=now)
    except DomainError as exc:
        return RedirectResponse(f"/account?courier_refused={exc.code}#courier", status_code=303)
    return RedirectResponse("/account?courier_cancelled=1#courier", status_code=303)


# --- borrowing by phone -----------------------------------------------------------------


class BorrowForm(BaseModel):
    barcode: str = Field(default="", max_length=64)


def _here(request: Request, session: DbSession, now: dt.datetime) -> presence.Presence | None:
    """The library this phone is in (its network, or a sign scanned a little while ago)."""
    settings = request.app.state.settings
    ticket = request.session.get(presence.SESSION_KEY)
    return presence.where(
        session,
        settings.effective_secret_key,
        ticket=ticket if isinstance(ticket, str) else None,
        address=client_address(request),
        networks=libraries.parse_networks(settings.library_networks),
        at=now,
    )


def keep_sign(
    request: Request, session: Session, unit_id: int, code: str, now: dt.datetime
) -> presence.Presence | None:
    """A "you are here" sign scanned: if its code is the library's, this phone is there for
    a while (the ticket in the page session, kept across a sign-in)."""
    settings = request.app.state.settings
    got = presence.scanned(
        session,
        settings.effective_secret_key,
        unit_id,
        code,
        at=now,
        minutes=settings.presence_minutes,
    )
    if got is None:
        return None
    request.session[presence.SESSION_KEY] = got[0]
    return got[1]


def _borrow_page(
    request: Request,
    session: DbSession,
    actor: Actor,
    here: presence.Presence | None,
    *,
    result: str = "",
    refusal: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    unit = libraries.get_unit(session, here.unit_id) if here is not None else None
    return render(
        request,
        "borrow.html",
        actor,
        status_code,
        here=here,
        here_unit=unit,
        here_until=(
            i18n.format_time(here.until, unit.timezone)
            if here is not None and here.until is not None and unit is not None
            else ""
        ),
        result=result,
        refusal=refusal,
    )


NOT_HERE = N_(
    "To borrow with your phone, scan a “You are here” sign in the library (at the entrance, "
    "the desk or the lifts), or connect to the library's Wi-Fi."
)


@router.get("/borrow", response_class=HTMLResponse)
def borrow_page(
    request: Request,
    session: DbSession,
    actor: ReaderPage,
    now: Now,
    library: Annotated[str, Query(max_length=20)] = "",
    here: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Borrow with the phone, in the library where you stand: scan the copy's barcode with
    the camera (or type it). ``library`` and ``here``: a sign's code scanned on the way."""
    found = _here(request, session, now)
    if library.isdigit() and here and int(library) < 2**31:
        found = keep_sign(request, session, int(library), here, now) or found
    return _borrow_page(request, session, actor, found)


@router.post("/borrow", response_class=HTMLResponse, dependencies=[Csrf])
def borrow(
    request: Request,
    session: DbSession,
    actor: ReaderPage,
    now: Now,
    form: Annotated[BorrowForm, Form()],
) -> Response:
    barcode = form.barcode.strip()
    here = _here(request, session, now)
    if here is None:
        return _borrow_page(request, session, actor, None, refusal=_(NOT_HERE), status_code=409)
    try:
        with session.begin_nested():
            loan = service.checkout(
                session,
                actor,
                reader_id=actor.id,
                barcode=barcode,
                at_unit_id=here.unit_id,
                channel="mobile",
                at=now,
                present_at=here.unit_id,
            )
    except errors.ItemElsewhere as exc:
        where = libraries.get_unit(session, int(exc.details["library_id"]))
        refusal = _("This copy belongs to %(library)s: borrow it there.") % {
            "library": where.name(i18n.get_locale())
        }
        return _borrow_page(request, session, actor, here, refusal=refusal, status_code=409)
    except DomainError as exc:
        refusal = to_reader(exc)
        return _borrow_page(
            request, session, actor, here, refusal=refusal, status_code=status_of(exc)
        )
    title = catalog.get_record(session, catalog.get_item(session, loan.item_id).record_id).title
    unit = libraries.get_unit(session, loan.org_unit_id)
    result = _("You borrowed %(title)s. Due %(due)s.") % {
        "title": title,
        "due": i18n.format_datetime(loan.due_at, unit.timezone, "short"),
    }
    return _borrow_page(request, session, actor, here, result=result)
