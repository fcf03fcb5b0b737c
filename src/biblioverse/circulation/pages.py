"""The circulation desk in the staff console: lend and take back copies by scanning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from biblioverse import catalog, i18n, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.circulation import errors, holds, rules, service
from biblioverse.circulation.matrix import matrix
from biblioverse.deps import DbSession, Now
from biblioverse.errors import DomainError
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.web.pages import Csrf, PageActor, error_page, render, staff_or_redirect

router = APIRouter(include_in_schema=False)

NO_READER = N_("No reader has this card number.")
NO_COPY = N_("No copy has this barcode.")

# What the desk says for each refusal, by the error's code.
REASONS = {
    errors.CardNotActive.code: N_("The card waits for activation at a desk."),
    errors.CardExpired.code: N_("The card has expired."),
    errors.ReaderBlocked.code: N_("The card is blocked."),
    errors.LoanLimitReached.code: N_("The card has reached its loan limit."),
    errors.ItemOnLoan.code: N_("This copy is already on loan."),
    errors.ItemNotLoanable.code: N_("This copy is not for loan."),
    errors.ChannelNotAllowed.code: N_("This copy is lent at a desk only."),
    errors.NotOnLoan.code: N_("This copy is not on loan."),
    errors.FeeLimitReached.code: N_("The reader's unpaid fees are above the limit."),
    errors.NotLentToReader.code: N_("The owning library does not lend this to this reader."),
    errors.ItemHeldForAnother.code: N_("This copy is held for another reader."),
    errors.RenewalLimitReached.code: N_("This loan has been renewed as often as allowed."),
    errors.RenewalHeld.code: N_("Another reader is waiting for this title."),
    catalog.ItemNotFound.code: NO_COPY,
    "forbidden": N_("Your role does not include lending at this library."),
}


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
    return _(REASONS.get(exc.code, REASONS.get(exc.kind, exc.message)))


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
