"""The circulation desk in the staff console: lend and take back copies by scanning, the
rule matrix and which row applies, and a library's day of holds, transits and courier
pickups. The readers' own circulation pages are in :mod:`.pages`."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from biblioverse import catalog, i18n, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.circulation import courier, errors, holds, rules, service
from biblioverse.circulation.matrix import matrix
from biblioverse.circulation.words import NO_COPY, NO_READER, to_desk
from biblioverse.deps import DbSession, Now
from biblioverse.errors import (
    DomainError,
    DuplicateValue,
    PermissionDenied,
    ValidationFailed,
    status_of,
)
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.web.pages import (
    Csrf,
    error_page,
    render,
    staff_page,
)

router = APIRouter(include_in_schema=False)
CENT = Decimal("0.01")


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


@dataclass
class Slip:
    """A hold or transit slip to print and put in the copy."""

    heading: str
    big: str  # what the person sorting reads first: the reader, or the library
    rows: list[tuple[str, str]]


@dataclass
class Said:
    """What the desk shows after a scan."""

    result: list[str] = dataclasses.field(default_factory=list)
    refusal: str = ""
    refusal_more: list[str] = dataclasses.field(default_factory=list)
    offer_checkin: str = ""  # a copy on loan to someone else: take it back from here
    slip: Slip | None = None


def _page(
    request: Request,
    session: DbSession,
    who: Actor,
    form: DeskForm,
    *,
    status_code: int = 200,
    said: Said | None = None,
    overridable: DeskForm | None = None,
    focus: str = "",
) -> HTMLResponse:
    desks = _desks(session, who)
    chosen = next((u for u in desks if str(u.id) == form.library_id), desks[0] if desks else None)
    said = said or Said()
    return render(
        request,
        # htmx swaps only the working area; a plain form post gets the whole page
        "staff/_desk.html" if request.headers.get("hx-request") else "staff/desk.html",
        who,
        status_code,
        desks=desks,
        chosen=chosen,
        form=form,
        result=said.result,
        refusal=said.refusal,
        refusal_more=said.refusal_more,
        offer_checkin=said.offer_checkin,
        slip=said.slip,
        overridable=overridable,
        focus=focus or ("lend-barcode" if form.card_number else "lend-card"),
        section="desk",
    )


DeskOperator = Annotated[
    Actor,
    Depends(
        staff_page(Permission.CIRCULATION_OPERATE, N_("Your role does not include circulation."))
    ),
]


@router.get("/staff/desk", response_class=HTMLResponse)
def desk(request: Request, session: DbSession, who: DeskOperator, library: str = "") -> Response:
    return _page(request, session, who, DeskForm(library_id=library))


def _unit_id(session: DbSession, who: Actor, form: DeskForm) -> int:
    """The desk's library: the one chosen, else the first this person may lend at."""
    if form.library_id.isdigit():
        return int(form.library_id)
    desks = _desks(session, who)
    return desks[0].id if desks else 0


def _when(session: DbSession, unit_id: int, value: dt.datetime) -> str:
    return i18n.format_datetime(value, libraries.get_unit(session, unit_id).timezone)


def _on_loan_to(
    session: DbSession, who: Actor, barcode: str, card_number: str
) -> tuple[list[str], str]:
    """Whom a copy refused as already on loan is lent to, as much as this desk may know
    (ADR 0025: another library's desk sees the card's summary), and the barcode to offer
    taking back."""
    copy = service.copy_at_desk(session, barcode)
    if copy is None or copy.loan is None or copy.loan.returned_at is not None:
        return [], ""
    loan, reader = copy.loan, copy.reader
    units = libraries.unit_names(session)
    if reader is None:
        return [], barcode
    words = {
        "title": copy.title,
        "barcode": copy.item.barcode,
        "name": reader.name,
        "card": reader.card_number,
        "library": units[reader.home_library_id].name(i18n.get_locale()),
        "due": _when(session, loan.org_unit_id, loan.due_at),
        "lent": _when(session, loan.org_unit_id, loan.loaned_at),
        "at": units[loan.org_unit_id].name(i18n.get_locale()),
    }
    if reader.card_number == card_number.strip():
        return [_("%(name)s already has %(title)s on loan, due %(due)s.") % words], ""
    if readers.access(session, who, reader) is readers.ReaderAccess.FULL:
        lines = [
            _("%(title)s (%(barcode)s) is on loan to %(name)s, card %(card)s.") % words,
            _("Lent %(lent)s at %(at)s, due %(due)s.") % words,
        ]
    else:
        lines = [
            _("%(title)s (%(barcode)s) is on loan to %(name)s, card %(card)s, of %(library)s.")
            % words
        ]
    lines.append(_("If the copy is here, take it back first."))
    return lines, copy.item.barcode


@router.post("/staff/desk/checkout", response_class=HTMLResponse, dependencies=[Csrf])
def lend(
    request: Request,
    session: DbSession,
    who: DeskOperator,
    now: Now,
    form: Annotated[DeskForm, Form()],
) -> Response:
    reader = readers.by_card(session, form.card_number)
    if reader is None:
        return _page(
            request,
            session,
            who,
            form.model_copy(update={"barcode": "", "override": ""}),
            status_code=409,
            said=Said(refusal=_(NO_READER)),
            focus="lend-card",
        )
    barcode = form.barcode.strip()
    try:
        with session.begin_nested():
            loan = service.checkout(
                session,
                who,
                reader_id=reader.id,
                barcode=barcode,
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
        said = Said(refusal=to_desk(exc))
        if isinstance(exc, errors.ItemOnLoan):
            said.refusal_more, said.offer_checkin = _on_loan_to(
                session, who, barcode, form.card_number
            )
        return _page(
            request,
            session,
            who,
            kept,
            status_code=status_of(exc),
            said=said,
            overridable=again,
        )
    copy = service.copy_at_desk(session, barcode)
    result = [
        _("Lent: %(title)s (%(barcode)s) to %(name)s, card %(card)s.")
        % {
            "title": copy.title if copy else barcode,
            "barcode": barcode,
            "name": reader.name,
            "card": reader.card_number,
        },
        _("Due %(due)s.") % {"due": _when(session, loan.org_unit_id, loan.due_at)},
    ]
    # The card stays for the next copy; the barcode field empties for the next scan.
    return _page(
        request,
        session,
        who,
        form.model_copy(update={"barcode": "", "override": ""}),
        said=Said(result=result),
        focus="lend-barcode",
    )


@router.post("/staff/desk/checkin", response_class=HTMLResponse, dependencies=[Csrf])
def take_back(
    request: Request,
    session: DbSession,
    who: DeskOperator,
    now: Now,
    form: Annotated[DeskForm, Form()],
) -> Response:
    barcode = form.barcode.strip()
    kept = form.model_copy(update={"barcode": "", "override": ""})
    unit_id = _unit_id(session, who, form)
    try:
        with session.begin_nested():
            done = service.checkin(session, who, barcode=barcode, at_unit_id=unit_id, at=now)
    except errors.NotOnLoan as exc:
        said = _already_back(session, barcode) or Said(refusal=to_desk(exc))
        status = 200 if said.result else status_of(exc)
        return _page(
            request, session, who, kept, status_code=status, said=said, focus="return-barcode"
        )
    except DomainError as exc:
        return _page(
            request,
            session,
            who,
            kept,
            status_code=status_of(exc),
            said=Said(refusal=to_desk(exc)),
            focus="return-barcode",
        )
    said = _checkin_words(session, barcode, done, now)
    return _page(request, session, who, kept, said=said, focus="return-barcode")


def _already_back(session: DbSession, barcode: str) -> Said | None:
    """A copy on its shelf scanned in again: when and where its last loan ended."""
    copy = service.copy_at_desk(session, barcode)
    if copy is None or copy.loan is None or copy.loan.returned_at is None:
        return None
    where = copy.loan.returned_unit_id or copy.loan.org_unit_id
    words = {
        "title": copy.title,
        "barcode": copy.item.barcode,
        "when": _when(session, where, copy.loan.returned_at),
        "library": libraries.unit_names(session)[where].name(i18n.get_locale()),
    }
    return Said(
        result=[
            _("Already back: %(title)s (%(barcode)s) was taken back %(when)s at %(library)s.")
            % words,
            _("Nothing more to do: put it back on the shelf."),
        ]
    )


def _checkin_words(
    session: DbSession, barcode: str, done: service.Checkin, now: dt.datetime
) -> Said:
    """What the desk is told of a copy just scanned in: the title and the reader, the
    fine, and what to do with the copy (with a slip to print when it goes elsewhere)."""
    copy = service.copy_at_desk(session, barcode)
    title = copy.title if copy else barcode
    said = Said()
    words = {"title": title, "barcode": done.item.barcode}
    if done.again:
        said.result.append(_("Already scanned in: %(title)s (%(barcode)s).") % words)
    elif done.loan is not None:
        reader = readers.get(session, done.loan.reader_id) if done.loan.reader_id else None
        if reader is not None:
            said.result.append(
                _("Back: %(title)s (%(barcode)s), from %(name)s, card %(card)s.")
                % {**words, "name": reader.name, "card": reader.card_number}
            )
        else:
            said.result.append(_("Back: %(title)s (%(barcode)s).") % words)
        fine = service.fine_of(session, done.loan.id)
        said.result.append(
            _("Fine charged: %(amount)s.") % {"amount": i18n.format_money(fine)}
            if fine > 0
            else _("Back in time: no fine.")
        )
    else:
        said.result.append(_("Received: %(title)s (%(barcode)s).") % words)
    routing_line, slip = _routing(session, done, title, now)
    said.result.append(routing_line)
    said.slip = slip
    return said


def _routing(
    session: DbSession, done: service.Checkin, title: str, now: dt.datetime
) -> tuple[str, Slip | None]:
    """What the desk is told to do with a copy just scanned in, and its slip."""
    units = libraries.unit_names(session)
    locale = i18n.get_locale()
    routing = done.routing
    barcode = done.item.barcode
    if routing.action is holds.Action.HOLD_SHELF and routing.hold is not None:
        reader = readers.get(session, routing.hold.reader_id)
        who_for = {"name": reader.name, "card": reader.card_number}
        then = _("Put it on the hold shelf for %(name)s (card %(card)s).") % who_for
        rows = [
            (_("Title"), title),
            (_("Barcode"), barcode),
            (_("Card number"), reader.card_number),
        ]
        if routing.hold.expires_at is not None:
            rows.append((_("Keep until"), _when(session, routing.unit_id, routing.hold.expires_at)))
        return then, Slip(_("Hold slip"), reader.name, rows)
    if routing.action is holds.Action.TRANSIT:
        where = units[routing.unit_id].name(locale)
        for_hold = routing.hold is not None
        then = (
            _("Send it to %(library)s for a hold.") % {"library": where}
            if for_hold
            else _("Send it home to %(library)s.") % {"library": where}
        )
        sender = routing.transit.from_unit_id if routing.transit else None
        rows = [(_("Title"), title), (_("Barcode"), barcode)]
        if sender is not None:
            rows.append((_("From"), units[sender].name(locale)))
        rows.append((_("Why"), _("A hold to collect there") if for_hold else _("Going home")))
        rows.append((_("Sent"), _when(session, sender or routing.unit_id, now)))
        return then, Slip(_("Transit slip"), where, rows)
    return _("Put it back on the shelf."), None


@router.get("/staff/rules", response_class=HTMLResponse)
def rules_page(
    request: Request,
    session: DbSession,
    who: DeskOperator,
    now: Now,
    card_number: Annotated[str, Query(max_length=40)] = "",
    barcode: Annotated[str, Query(max_length=64)] = "",
    saved: int = 0,
) -> Response:
    """The rule matrix, and which row applies to a card and a copy, and why."""
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
            except errors.NoRule:
                problem = _("No rule applies: the consortium has no default rule.")
    return render(
        request,
        "staff/rules.html",
        who,
        matrix=matrix(session),
        by_path=by_path,
        applied=applied,
        refusal=to_desk(applied.refusal) if applied and applied.refusal else "",
        problem=problem,
        card_number=card_number,
        barcode=barcode,
        saved=saved,
        section="rules",
    )


# --- staff: editing the rule matrix ----------------------------------------------------------

INT_FIELDS = (
    "loan_days",
    "renewals",
    "max_loans",
    "max_holds",
    "hold_priority",
    "hold_shelf_days",
    "lost_after_days",
)
AMOUNT_FIELDS = ("fine_per_day", "fine_cap", "lost_fee", "block_threshold", "courier_fee")
BOOL_FIELDS = ("self_service", "mobile_checkout", "floating")


def _rule_values(rule: rules.Rule | None, unit_id: int | None) -> dict[str, str]:
    """The form's fields as text: a row of the matrix, or a new row's defaults."""
    policy = rule.policy if rule is not None else rules.Policy()
    values = {n: str(getattr(policy, n)) for n in (*INT_FIELDS, *AMOUNT_FIELDS)}
    values |= {n: "on" if getattr(policy, n) else "" for n in BOOL_FIELDS}
    values["loan_hours"] = str(policy.loan_hours or "")
    values["hold_pickup"] = policy.hold_pickup.value
    values["org_unit_id"] = str(unit_id or "")
    values["reader_category"] = (rule.reader_category if rule else None) or ""
    values["item_type"] = (rule.item_type if rule else None) or ""
    values["name"] = rule.name if rule else ""
    return values


def _parse_rule(values: dict[str, str]) -> tuple[service.RuleInput | None, dict[str, str]]:
    """The form's text as a row of the matrix, or the fields that are not numbers."""
    problems: dict[str, str] = {}
    ints: dict[str, int] = {}
    for name in (*INT_FIELDS, "loan_hours"):
        text = values.get(name, "").strip()
        if name == "loan_hours" and not text:
            continue
        try:
            ints[name] = int(text)
        except ValueError:
            problems[name] = _("A whole number.")
    amounts: dict[str, Decimal] = {}
    for name in AMOUNT_FIELDS:
        try:
            amounts[name] = Decimal(values.get(name, "").strip())
            if not amounts[name].is_finite() or amounts[name] != amounts[name].quantize(CENT):
                raise InvalidOperation
        except InvalidOperation:
            problems[name] = _("An amount with at most two decimals, like 0.50.")
    unit = values.get("org_unit_id", "")
    if not unit.isdigit():
        problems["org_unit_id"] = _("Choose a library.")
    pickup = values.get("hold_pickup", "")
    if pickup not in {p.value for p in rules.PickupPolicy}:
        problems["hold_pickup"] = _("Choose where holds may be collected.")
    if problems:
        return None, problems
    given: dict[str, Any] = {**ints, **amounts, **{n: values.get(n) == "on" for n in BOOL_FIELDS}}
    policy = rules.Policy(**given, hold_pickup=rules.PickupPolicy(pickup))
    return (
        service.RuleInput(
            int(unit),
            reader_category=values.get("reader_category") or None,
            item_type=values.get("item_type") or None,
            name=values.get("name", "").strip()[:200],
            policy=policy,
        ),
        {},
    )


def _rule_form(
    request: Request,
    session: DbSession,
    who: Actor,
    rule_id: int | None,
    values: dict[str, str],
    *,
    errors_: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "staff/rule_edit.html",
        who,
        status_code,
        rule_id=rule_id,
        values=values,
        errors=errors_ or {},
        places=[
            u
            for u in libraries.list_units(session)
            if who.can(Permission.CIRCULATION_RULES, u.path)
        ],
        categories=[c.value for c in readers.Category],
        item_types=[t.value for t in catalog.ItemType],
        section="rules",
    )


RuleSetter = Annotated[
    Actor,
    Depends(
        staff_page(
            Permission.CIRCULATION_RULES, N_("Your role does not include setting loan rules.")
        )
    ),
]


@router.get("/staff/rules/new", response_class=HTMLResponse)
def new_rule(request: Request, session: DbSession, who: RuleSetter) -> Response:
    return _rule_form(request, session, who, None, _rule_values(None, None))


@router.get("/staff/rules/{rule_id}", response_class=HTMLResponse)
def edit_rule(request: Request, rule_id: DbId, session: DbSession, who: RuleSetter) -> Response:
    rule = next((r for r in matrix(session) if r.id == rule_id), None)
    if rule is None:
        return error_page(request, 404, _("No such rule."))
    unit = next(u for u in libraries.unit_names(session).values() if u.path == rule.org_path)
    if not who.can(Permission.CIRCULATION_RULES, rule.org_path):
        return error_page(request, 403, _("Your role does not include setting loan rules."))
    return _rule_form(request, session, who, rule_id, _rule_values(rule, unit.id))


@router.post("/staff/rules/new", response_class=HTMLResponse, dependencies=[Csrf])
async def add_rule(request: Request, session: DbSession, who: RuleSetter, now: Now) -> Response:
    return await _save_rule(request, session, who, now, None)


@router.post("/staff/rules/{rule_id}", response_class=HTMLResponse, dependencies=[Csrf])
async def change_rule(
    request: Request, rule_id: DbId, session: DbSession, who: RuleSetter, now: Now
) -> Response:
    return await _save_rule(request, session, who, now, rule_id)


async def _save_rule(
    request: Request, session: DbSession, who: Actor, now: dt.datetime, rule_id: int | None
) -> Response:
    form = await request.form()
    values = {k: str(v)[:200] for k, v in form.items() if isinstance(v, str)}
    data, problems = _parse_rule(values)
    if data is not None:
        try:
            with session.begin_nested():
                row = service.save_rule(session, who, data, rule_id=rule_id, at=now)
            return RedirectResponse(f"/staff/rules?saved={row.id}", status_code=303)
        except ValidationFailed as exc:
            problems = {e.field: i18n.field_message(e) for e in exc.errors}
        except DuplicateValue:
            problems = {
                "org_unit_id": _(
                    "This library already has a rule for this item type and reader category: "
                    "edit that one."
                )
            }
        except PermissionDenied:
            problems = {"org_unit_id": _("You may not set loan rules for this library.")}
            return _rule_form(
                request, session, who, rule_id, values, errors_=problems, status_code=403
            )
        except errors.RuleNotFound:
            return error_page(request, 404, _("No such rule."))
    return _rule_form(request, session, who, rule_id, values, errors_=problems, status_code=422)


# --- staff: what to fetch, send, receive and clear ----------------------------------------


@router.get("/staff/transits", response_class=HTMLResponse)
def transits_page(
    request: Request,
    session: DbSession,
    who: DeskOperator,
    library: str = "",
    shipped: int = 0,
    collected: int = 0,
) -> Response:
    """A library's day of holds and logistics: copies to fetch from the shelves for holds,
    copies to send, courier pickups of its readers' returns, copies on their way here,
    and the hold shelf."""
    desks = _desks(session, who)
    chosen = next((u for u in desks if str(u.id) == library), desks[0] if desks else None)
    ctx: dict[str, Any] = {}
    if chosen is not None:
        ctx = {
            "pull": holds.pull_list(session, chosen.id),
            "to_send": holds.transits_at(session, [chosen.id], incoming=False),
            "coming": holds.transits_at(session, [chosen.id], incoming=True),
            "pickups": courier.to_collect(session, [chosen.id]),
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
        collected=collected,
        section="transits",
        **ctx,
    )


@router.post("/staff/transits/{transit_id}/ship", dependencies=[Csrf])
def ship_transit(
    request: Request,
    transit_id: DbId,
    session: DbSession,
    who: DeskOperator,
    now: Now,
    library: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return _logistics_step(
        request,
        session,
        who,
        lambda who: holds.ship(session, who, transit_id, at=now),
        f"library={library}&shipped=1",
    )


def _logistics_step(
    request: Request,
    session: DbSession,
    who: Actor,
    step: Callable[[Actor], object],
    then: str,
) -> Response:
    """A button of the holds and transits page: do the step, back to the page saying so."""
    try:
        with session.begin_nested():
            step(who)
    except DomainError as exc:
        return error_page(request, status_of(exc), to_desk(exc))
    return RedirectResponse(f"/staff/transits?{then}", status_code=303)


@router.post("/staff/couriers/{courier_id}/collect", dependencies=[Csrf])
def collect_courier(
    request: Request,
    courier_id: DbId,
    session: DbSession,
    who: DeskOperator,
    now: Now,
    library: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return _logistics_step(
        request,
        session,
        who,
        lambda who: courier.collect(session, who, courier_id, at=now),
        f"library={library}&collected=1",
    )
