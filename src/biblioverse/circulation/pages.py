"""The circulation desk in the staff console: lend and take back copies by scanning."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from biblioverse import catalog, i18n, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.circulation import errors, holds, rules, service
from biblioverse.circulation.matrix import matrix
from biblioverse.circulation.words import DESK, NO_COPY, NO_READER, READER
from biblioverse.deps import DbSession, Now
from biblioverse.errors import DomainError
from biblioverse.fields import DbId
from biblioverse.i18n import gettext as _
from biblioverse.web.pages import (
    Csrf,
    PageActor,
    error_page,
    render,
    signin_redirect,
    staff_or_redirect,
)

router = APIRouter(include_in_schema=False)


class DeskForm(BaseModel):
    library_id: str = Field(default="", max_length=20)
    card_number: str = Field(default="", max_length=40)
    barcode: str = Field(default="", max_length=64)
    override: str = Field(default="", max_length=200)  # why staff lend past a refusal


def _desks(session: DbSession, actor: Actor) -> list[libraries.OrgUnit]:
    return [
        u
        for u in libraries.service_points(session)
        if actor.can(Permission.CIRCULATION_OPERATE, u.path)
    ]


def _page(
    request: Request,
    session: DbSession,
    who: Actor,
    form: DeskForm,
    *,
    status_code: int = 200,
    result: str = "",
    refusal: str = "",
    overridable: DeskForm | None = None,
) -> HTMLResponse:
    desks = _desks(session, who)
    chosen = next((u for u in desks if str(u.id) == form.library_id), desks[0] if desks else None)
    return render(
        request,
        "staff/desk.html",
        who,
        status_code,
        desks=desks,
        chosen=chosen,
        form=form,
        result=result,
        refusal=refusal,
        overridable=overridable,
        section="desk",
    )


def _operator(request: Request, actor: Actor | None) -> Actor | Response:
    who = staff_or_redirect(request, actor)
    if isinstance(who, Response):
        return who
    if not who.can(Permission.CIRCULATION_OPERATE):
        return error_page(request, 403, _("Your role does not include circulation."))
    return who


@router.get("/staff/desk", response_class=HTMLResponse)
def desk(request: Request, session: DbSession, actor: PageActor, library: str = "") -> Response:
    who = _operator(request, actor)
    if isinstance(who, Response):
        return who
    return _page(request, session, who, DeskForm(library_id=library))


def _unit_id(session: DbSession, who: Actor, form: DeskForm) -> int:
    """The desk's library: the one chosen, else the first this person may lend at."""
    if form.library_id.isdigit():
        return int(form.library_id)
    desks = _desks(session, who)
    return desks[0].id if desks else 0


def _reason(exc: DomainError) -> str:
    return _(DESK.get(exc.code, DESK.get(exc.kind, exc.message)))


@router.post("/staff/desk/checkout", response_class=HTMLResponse, dependencies=[Csrf])
def lend(
    request: Request,
    session: DbSession,
    actor: PageActor,
    now: Now,
    form: Annotated[DeskForm, Form()],
) -> Response:
    who = _operator(request, actor)
    if isinstance(who, Response):
        return who
    reader = readers.by_card(session, form.card_number)
    if reader is None:
        return _page(request, session, who, form, status_code=409, refusal=_(NO_READER))
    try:
        with session.begin_nested():
            loan = service.checkout(
                session,
                who,
                reader_id=reader.id,
                barcode=form.barcode.strip(),
                at_unit_id=_unit_id(session, who, form),
                at=now,
                override=form.override or None,
            )
    except DomainError as exc:
        kept = form.model_copy(update={"barcode": "", "override": ""})
        # Staff who may override see the refusal with a way past it, reason required.
        unit = libraries.get_unit(session, _unit_id(session, who, form))
        again = (
            form.model_copy(update={"override": ""})
            if isinstance(exc, errors.Refused)
            and exc.overridable
            and who.can(Permission.CIRCULATION_OVERRIDE, unit.path)
            else None
        )
        return _page(
            request, session, who, kept, status_code=409, refusal=_reason(exc), overridable=again
        )
    unit = libraries.get_unit(session, loan.org_unit_id)
    result = _("%(barcode)s lent to %(name)s, due %(due)s.") % {
        "barcode": form.barcode.strip(),
        "name": reader.name,
        "due": i18n.format_datetime(loan.due_at, unit.timezone, "short"),
    }
    # The card stays for the next copy; the barcode field empties for the next scan.
    return _page(request, session, who, form.model_copy(update={"barcode": ""}), result=result)


@router.post("/staff/desk/checkin", response_class=HTMLResponse, dependencies=[Csrf])
def take_back(
    request: Request,
    session: DbSession,
    actor: PageActor,
    now: Now,
    form: Annotated[DeskForm, Form()],
) -> Response:
    who = _operator(request, actor)
    if isinstance(who, Response):
        return who
    try:
        with session.begin_nested():
            done = service.checkin(
                session,
                who,
                barcode=form.barcode.strip(),
                at_unit_id=_unit_id(session, who, form),
                at=now,
            )
    except DomainError as exc:
        kept = form.model_copy(update={"barcode": ""})
        return _page(request, session, who, kept, status_code=409, refusal=_reason(exc))
    result = _routing_words(session, form.barcode.strip(), done)
    return _page(request, session, who, form.model_copy(update={"barcode": ""}), result=result)


def _routing_words(session: DbSession, barcode: str, done: service.Checkin) -> str:
    """What the desk is told to do with a copy just scanned in."""
    units = libraries.unit_names(session)
    locale = i18n.get_locale()
    back = _("%(barcode)s is back.") % {"barcode": barcode} if done.loan else ""
    routing = done.routing
    if routing.action is holds.Action.HOLD_SHELF and routing.hold is not None:
        reader = readers.get(session, routing.hold.reader_id)
        then = _("Put it on the hold shelf for %(name)s (card %(card)s).") % {
            "name": reader.name,
            "card": reader.card_number,
        }
    elif routing.action is holds.Action.TRANSIT:
        where = units[routing.unit_id].name(locale)
        then = (
            _("Send it to %(library)s for a hold.") % {"library": where}
            if routing.hold is not None
            else _("Send it home to %(library)s.") % {"library": where}
        )
    else:
        then = _("Put it back on the shelf.")
    return f"{back} {then}".strip()


@router.get("/staff/rules", response_class=HTMLResponse)
def rules_page(
    request: Request,
    session: DbSession,
    actor: PageActor,
    now: Now,
    card_number: Annotated[str, Query(max_length=40)] = "",
    barcode: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The rule matrix, and which row applies to a card and a copy, and why."""
    who = _operator(request, actor)
    if isinstance(who, Response):
        return who
    units = libraries.unit_names(session)
    by_path = {u.path: u for u in units.values()}
    applied, problem = None, ""
    if card_number.strip() and barcode.strip():
        reader = readers.by_card(session, card_number)
        item = session.scalar(select(catalog.Item).where(catalog.Item.barcode == barcode.strip()))
        if reader is None:
            problem = _(NO_READER)
        elif item is None:
            problem = _(NO_COPY)
        else:
            try:
                applied = service.explain(session, reader.id, item.id, at_unit_id=None, at=now)
            except rules.NoRule:
                problem = _("No rule applies: the consortium has no default rule.")
    return render(
        request,
        "staff/rules.html",
        who,
        matrix=matrix(session),
        by_path=by_path,
        applied=applied,
        problem=problem,
        card_number=card_number,
        barcode=barcode,
        section="rules",
    )


# --- readers: holds and borrowing by phone -----------------------------------------------


class HoldForm(BaseModel):
    pickup_library_id: str = Field(default="", max_length=20)


@router.get("/catalog/records/{record_id}/hold", response_class=HTMLResponse)
def hold_page(request: Request, record_id: DbId, session: DbSession, actor: PageActor) -> Response:
    """Reserve a title: choose where to collect it."""
    if actor is None or not actor.is_reader:
        return signin_redirect(request)
    return _hold_page(request, session, actor, record_id)


def _hold_page(
    request: Request,
    session: DbSession,
    actor: Actor,
    record_id: int,
    *,
    refusal: str = "",
    status_code: int = 200,
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
    )


@router.post("/catalog/records/{record_id}/hold", response_class=HTMLResponse, dependencies=[Csrf])
def place_hold(
    request: Request,
    record_id: DbId,
    session: DbSession,
    actor: PageActor,
    now: Now,
    form: Annotated[HoldForm, Form()],
) -> Response:
    if actor is None or not actor.is_reader:
        return signin_redirect(request)
    if not form.pickup_library_id.isdigit():
        words = _("Choose a library to collect it at.")
        return _hold_page(request, session, actor, record_id, refusal=words, status_code=409)
    try:
        with session.begin_nested():
            hold = holds.place(
                session,
                actor,
                reader_id=actor.id,
                record_id=record_id,
                pickup_unit_id=int(form.pickup_library_id),
                at=now,
            )
    except DomainError as exc:
        refusal = _(READER[exc.code]) if exc.code in READER else _reason(exc)
        return _hold_page(request, session, actor, record_id, refusal=refusal, status_code=409)
    return RedirectResponse(f"/account?held={hold.id}#holds", status_code=303)


@router.post("/account/holds/{hold_id}/{step}", dependencies=[Csrf])
def change_hold(
    request: Request,
    hold_id: DbId,
    step: Literal["cancel", "suspend", "resume"],
    session: DbSession,
    actor: PageActor,
    now: Now,
) -> Response:
    """Cancel, suspend (until resumed) or resume one of the reader's holds."""
    if actor is None or not actor.is_reader:
        return signin_redirect(request)
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


# --- staff: what to fetch, send, receive and clear ----------------------------------------


@router.get("/staff/transits", response_class=HTMLResponse)
def transits_page(
    request: Request, session: DbSession, actor: PageActor, library: str = "", shipped: int = 0
) -> Response:
    """A library's day of holds and logistics: copies to fetch from the shelves for holds,
    copies to send, copies on their way here, and the hold shelf."""
    who = _operator(request, actor)
    if isinstance(who, Response):
        return who
    desks = _desks(session, who)
    chosen = next((u for u in desks if str(u.id) == library), desks[0] if desks else None)
    ctx: dict[str, Any] = {}
    if chosen is not None:
        ctx = {
            "pull": holds.pull_list(session, chosen.id),
            "to_send": holds.transits_at(session, [chosen.id], incoming=False),
            "coming": holds.transits_at(session, [chosen.id], incoming=True),
            "shelf": holds.hold_shelf(session, chosen.id),
        }
    return render(
        request,
        "staff/transits.html",
        who,
        desks=desks,
        chosen=chosen,
        units=libraries.unit_names(session),
        shipped=shipped,
        section="transits",
        **ctx,
    )


@router.post("/staff/transits/{transit_id}/ship", dependencies=[Csrf])
def ship_transit(
    request: Request,
    transit_id: DbId,
    session: DbSession,
    actor: PageActor,
    now: Now,
    library: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    who = _operator(request, actor)
    if isinstance(who, Response):
        return who
    try:
        with session.begin_nested():
            holds.ship(session, who, transit_id, at=now)
    except DomainError as exc:
        return error_page(request, 409, _reason(exc))
    return RedirectResponse(f"/staff/transits?library={library}&shipped=1", status_code=303)


class BorrowForm(BaseModel):
    library_id: str = Field(default="", max_length=20)
    barcode: str = Field(default="", max_length=64)


def _borrow_page(
    request: Request,
    session: DbSession,
    actor: Actor,
    form: BorrowForm,
    *,
    result: str = "",
    refusal: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    reader = readers.get(session, actor.id)
    places = libraries.service_points(session)
    chosen = form.library_id or str(reader.home_library_id)
    return render(
        request,
        "borrow.html",
        actor,
        status_code,
        places=places,
        chosen=chosen,
        result=result,
        refusal=refusal,
    )


@router.get("/borrow", response_class=HTMLResponse)
def borrow_page(
    request: Request, session: DbSession, actor: PageActor, library: str = ""
) -> Response:
    """Borrow with the phone: scan the copy's barcode with the camera (or type it) in the
    library where you stand."""
    if actor is None or not actor.is_reader:
        return signin_redirect(request)
    return _borrow_page(request, session, actor, BorrowForm(library_id=library))


@router.post("/borrow", response_class=HTMLResponse, dependencies=[Csrf])
def borrow(
    request: Request,
    session: DbSession,
    actor: PageActor,
    now: Now,
    form: Annotated[BorrowForm, Form()],
) -> Response:
    if actor is None or not actor.is_reader:
        return signin_redirect(request)
    barcode = form.barcode.strip()
    if not form.library_id.isdigit():
        words = _("Choose the library you are in.")
        return _borrow_page(request, session, actor, form, refusal=words, status_code=409)
    try:
        with session.begin_nested():
            loan = service.checkout(
                session,
                actor,
                reader_id=actor.id,
                barcode=barcode,
                at_unit_id=int(form.library_id),
                channel="mobile",
                at=now,
            )
    except DomainError as exc:
        refusal = _(READER[exc.code]) if exc.code in READER else _reason(exc)
        return _borrow_page(request, session, actor, form, refusal=refusal, status_code=409)
    title = catalog.get_record(session, catalog.get_item(session, loan.item_id).record_id).title
    unit = libraries.get_unit(session, loan.org_unit_id)
    result = _("You borrowed %(title)s. Due %(due)s.") % {
        "title": title,
        "due": i18n.format_datetime(loan.due_at, unit.timezone, "short"),
    }
    return _borrow_page(request, session, actor, form, result=result)
