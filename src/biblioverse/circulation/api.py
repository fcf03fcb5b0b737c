"""HTTP API of circulation: the rule matrix, loans, holds, transits and fees."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, RootModel
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.circulation import courier, errors, fees, holds, presence, rules, service
from biblioverse.circulation.matrix import POLICY_FIELDS, matrix
from biblioverse.circulation.models import CourierReturn, Fee, FeeTransaction, Hold, Loan
from biblioverse.circulation.schemas import (
    CheckinIn,
    CheckinOut,
    CheckoutIn,
    CourierIn,
    CourierItemOut,
    CourierOut,
    ExplainOut,
    FeeOut,
    FeesOut,
    HoldIn,
    HoldOut,
    LoanOut,
    PaymentIn,
    PickupIn,
    PolicyIO,
    PresenceIn,
    PresenceOut,
    PullOut,
    RenewIn,
    RuleIn,
    RuleOut,
    SuspendIn,
    TransactionOut,
    TransitOut,
    WaiverIn,
)
from biblioverse.deps import (
    CurrentActor,
    CurrentReader,
    CurrentStaff,
    DbSession,
    Now,
    Work,
    require_permission,
    staff_only,
)
from biblioverse.errors import FieldError, PermissionDenied, ValidationFailed
from biblioverse.fields import DbId

router = APIRouter(prefix="/circulation", tags=["circulation"])


class TransactionList(RootModel[list[TransactionOut]]):
    pass


RuleSetter = Annotated[Actor, Depends(require_permission(Permission.CIRCULATION_RULES))]


def _out(rule: rules.Rule, org_unit_id: int) -> RuleOut:
    p = rule.policy
    return RuleOut(
        id=rule.id,
        org_path=rule.org_path,
        org_unit_id=org_unit_id,
        reader_category=rule.reader_category,
        item_type=rule.item_type,
        name=rule.name,
        policy=PolicyIO(**{n: getattr(p, n) for n in POLICY_FIELDS}),
    )


def _by_id(session: DbSession, rule_id: int) -> RuleOut:
    unit_of = {u.path: u.id for u in libraries.unit_names(session).values()}
    rule = next(r for r in matrix(session) if r.id == rule_id)
    return _out(rule, unit_of[rule.org_path])


@router.get("/rules", summary="The circulation rule matrix (staff)")
def list_rules(session: DbSession, actor: CurrentStaff) -> list[RuleOut]:
    unit_of = {u.path: u.id for u in libraries.unit_names(session).values()}
    return [_out(r, unit_of[r.org_path]) for r in matrix(session)]


def _input(body: RuleIn) -> service.RuleInput:
    return service.RuleInput(
        org_unit_id=body.org_unit_id,
        reader_category=body.reader_category,
        item_type=body.item_type,
        name=body.name,
        policy=rules.Policy(
            **{
                **body.policy.model_dump(),
                "hold_pickup": rules.PickupPolicy(body.policy.hold_pickup),
            }
        ),
    )


@router.post(
    "/rules",
    status_code=status.HTTP_201_CREATED,
    summary="Add a row to the matrix (staff who set rules for that library)",
)
def create_rule(body: RuleIn, session: DbSession, actor: RuleSetter, now: Now) -> RuleOut:
    row = service.save_rule(session, actor, _input(body), at=now)
    return _by_id(session, row.id)


@router.put("/rules/{rule_id}", summary="Change a row of the matrix")
def update_rule(
    rule_id: DbId, body: RuleIn, session: DbSession, actor: RuleSetter, now: Now
) -> RuleOut:
    row = service.save_rule(session, actor, _input(body), rule_id=rule_id, at=now)
    return _by_id(session, row.id)


@router.get(
    "/explain",
    summary="Which rule applies to a reader borrowing a copy, and why (circulation staff, "
    "or readers for themselves)",
)
def explain(
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    reader_id: DbId,
    item_id: DbId,
    at_library: Annotated[DbId | None, Query(description="where the loan is made")] = None,
) -> ExplainOut:
    if actor.is_reader:
        if actor.id != reader_id:
            raise PermissionDenied("you may ask only about your own card")
    elif not actor.can(Permission.CIRCULATION_OPERATE):
        raise PermissionDenied("your roles do not include circulation")
    applied = service.explain(session, reader_id, item_id, at_unit_id=at_library, at=now)
    why = applied.explanation
    return ExplainOut(
        rule=_by_id(session, why.rule.id),
        reasons=applied.reasons(),
        considered=[r.id for r in why.candidates],
        lending_library_id=applied.lending_library.id,
        due_if_borrowed_now=applied.due,
        due_at_library_id=applied.at_library.id,
        lendable=applied.refusal is None,
        refusal=applied.refusal.code if applied.refusal else None,
    )


def _loan_out(loan: Loan) -> LoanOut:
    return LoanOut(
        id=loan.id,
        item_id=loan.item_id,
        reader_id=loan.reader_id,
        library_id=loan.org_unit_id,
        channel=loan.channel,
        loaned_at=loan.loaned_at,
        due_at=loan.due_at,
        renewals=loan.renewals,
        returned_at=loan.returned_at,
    )


def _checkin_out(done: service.Checkin) -> CheckinOut:
    r = done.routing
    return CheckinOut(
        loan=_loan_out(done.loan) if done.loan is not None else None,
        item_id=done.item.id,
        barcode=done.item.barcode,
        action=r.action.value,
        library_id=r.unit_id,
        hold_id=r.hold.id if r.hold is not None else None,
        transit_id=r.transit.id if r.transit is not None else None,
    )


IDEMPOTENT = (
    " Send an `Idempotency-Key` header to make a retry safe: the same key and request get "
    "the first answer again."
)


def _borrowing(actor: Actor, body: CheckoutIn) -> tuple[int, str]:
    """Whose card a check-out is on and through which channel; refuses who may not ask."""
    if actor.is_reader:
        if body.reader_id not in (None, actor.id):
            raise PermissionDenied("readers borrow on their own card only")
        return actor.id, "mobile"
    if actor.is_staff:
        if body.reader_id is None:
            raise ValidationFailed([FieldError("reader_id", "required", "Whose card?")])
        return body.reader_id, "api"
    raise PermissionDenied("devices lend through SIP2")


@router.post(
    "/checkout",
    status_code=status.HTTP_201_CREATED,
    response_model=LoanOut,
    summary="Lend a copy (circulation staff at their libraries; readers by phone, to "
    "themselves); a refusal answers 409 with its reason as the error code",
    description="Staff allowed to override may pass `override` with a reason to lend past "
    "an overridable refusal; the override is audited." + IDEMPOTENT,
)
async def checkout(body: CheckoutIn, work: Work) -> Response:
    def run(session: Session, actor: Actor) -> LoanOut:
        reader_id, channel = _borrowing(actor, body)
        here = None
        if channel == "mobile":
            settings = work.state.settings
            here = presence.where(
                session,
                settings.effective_secret_key,
                ticket=body.presence,
                address=work.address,
                networks=libraries.parse_networks(settings.library_networks),
                at=work.now,
            )
        loan = service.checkout(
            session,
            actor,
            reader_id=reader_id,
            barcode=body.barcode,
            rfid_tag=body.rfid_tag,
            at_unit_id=body.library_id,
            channel=channel,
            at=work.now,
            override=body.override,
            present_at=here.unit_id if here is not None else None,
        )
        return _loan_out(loan)

    return await work.run(
        run, status.HTTP_201_CREATED, allowed=lambda actor: _borrowing(actor, body)
    )


@router.post(
    "/presence",
    response_model=PresenceOut,
    summary="A reader's phone scanned a library's \"you are here\" sign: a ticket that it is "
    "in that library, for borrowing by phone there for a while (409 `not_in_library` if the "
    "code is not the library's now)",
)
def scanned_sign(
    body: PresenceIn, session: DbSession, actor: CurrentReader, now: Now, request: Request
) -> PresenceOut:
    settings = request.app.state.settings
    got = presence.scanned(
        session,
        settings.effective_secret_key,
        body.library_id,
        body.code,
        at=now,
        minutes=settings.presence_minutes,
    )
    if got is None:
        raise errors.NotInLibrary("this is not the code of that library's signs now")
    ticket, here = got
    assert here.until is not None
    return PresenceOut(library_id=here.unit_id, ticket=ticket, until=here.until)


@router.post(
    "/checkin",
    response_model=CheckinOut,
    summary="Take a copy back, or receive one in transit, at any member library "
    "(circulation staff); says where the copy goes next",
    description=IDEMPOTENT.strip(),
)
async def checkin(body: CheckinIn, work: Work) -> Response:
    def run(session: Session, actor: Actor) -> CheckinOut:
        done = service.checkin(
            session,
            actor,
            barcode=body.barcode,
            rfid_tag=body.rfid_tag,
            at_unit_id=body.library_id,
            at=work.now,
        )
        return _checkin_out(done)

    return await work.run(run, allowed=staff_only)


@router.post(
    "/loans/{loan_id}/renew",
    response_model=LoanOut,
    summary="Renew a loan (the reader, or circulation staff)",
    description=IDEMPOTENT.strip(),
)
async def renew(loan_id: DbId, work: Work, body: RenewIn | None = None) -> Response:
    override = body.override if body is not None else None

    def run(session: Session, actor: Actor) -> LoanOut:
        return _loan_out(service.renew(session, actor, loan_id, at=work.now, override=override))

    return await work.run(run)


# --- holds ----------------------------------------------------------------------------------


def _hold_out(session: DbSession, hold: Hold) -> HoldOut:
    return HoldOut(
        id=hold.id,
        reader_id=hold.reader_id,
        record_id=hold.record_id,
        item_id=hold.item_id,
        pickup_library_id=hold.pickup_unit_id,
        status=hold.status,
        priority=hold.priority,
        placed_at=hold.placed_at,
        suspended_until=hold.suspended_until,
        not_needed_after=hold.not_needed_after,
        trapped_item_id=hold.trapped_item_id,
        ready_at=hold.ready_at,
        expires_at=hold.expires_at,
        position=holds.queue_position(session, hold),
    )


def _whose(actor: Actor, reader_id: int | None) -> int:
    """The reader a request is about: readers themselves; staff name one."""
    if actor.is_reader:
        if reader_id not in (None, actor.id):
            raise PermissionDenied("readers see and act on their own card only")
        return actor.id
    if not actor.is_staff or not actor.can(Permission.CIRCULATION_OPERATE):
        raise PermissionDenied("your roles do not include circulation")
    if reader_id is None:
        raise ValidationFailed([FieldError("reader_id", "required", "Whose card?")])
    return reader_id


@router.post(
    "/holds",
    status_code=status.HTTP_201_CREATED,
    response_model=HoldOut,
    summary="Place a hold on a title or a copy, to collect at a member library",
    description="Readers for themselves; circulation staff name the reader. A refusal "
    "answers 409 with its reason as the error code." + IDEMPOTENT,
)
async def place_hold(body: HoldIn, work: Work) -> Response:
    def run(session: Session, actor: Actor) -> HoldOut:
        hold = holds.place(
            session,
            actor,
            reader_id=_whose(actor, body.reader_id),
            record_id=body.record_id,
            item_id=body.item_id,
            pickup_unit_id=body.pickup_library_id,
            at=work.now,
            override=body.override,
            not_needed_after=body.not_needed_after,
        )
        return _hold_out(session, hold)

    return await work.run(
        run, status.HTTP_201_CREATED, allowed=lambda actor: _whose(actor, body.reader_id)
    )


@router.get("/holds", summary="A reader's active holds with their queue positions")
def list_holds(
    session: DbSession,
    actor: CurrentActor,
    reader_id: Annotated[DbId | None, Query(description="staff: whose holds")] = None,
) -> list[HoldOut]:
    whose = _whose(actor, reader_id)
    return [_hold_out(session, line.hold) for line in holds.holds_for(session, actor, whose)]


@router.post("/holds/{hold_id}/cancel", summary="Cancel a hold")
def cancel_hold(hold_id: DbId, session: DbSession, actor: CurrentActor, now: Now) -> HoldOut:
    return _hold_out(session, holds.cancel(session, actor, hold_id, at=now))


@router.post(
    "/holds/{hold_id}/suspend",
    summary="Suspend a hold (keeps its place, others go first) until a date or resumed",
)
def suspend_hold(
    hold_id: DbId, body: SuspendIn, session: DbSession, actor: CurrentActor, now: Now
) -> HoldOut:
    return _hold_out(session, holds.suspend(session, actor, hold_id, until=body.until, at=now))


@router.post("/holds/{hold_id}/resume", summary="Resume a suspended hold")
def resume_hold(hold_id: DbId, session: DbSession, actor: CurrentActor, now: Now) -> HoldOut:
    return _hold_out(session, holds.resume(session, actor, hold_id, at=now))


@router.put("/holds/{hold_id}/pickup", summary="Collect at another library")
def change_pickup(
    hold_id: DbId, body: PickupIn, session: DbSession, actor: CurrentActor, now: Now
) -> HoldOut:
    hold = holds.change_pickup(session, actor, hold_id, body.pickup_library_id, now)
    return _hold_out(session, hold)


# --- courier returns --------------------------------------------------------------------


def _courier_out(line: courier.CourierLine) -> CourierOut:
    c = line.courier
    return CourierOut(
        id=c.id,
        reader_id=c.reader_id,
        library_id=c.to_unit_id,
        address=c.address,
        pickup_at=c.pickup_at,
        status=c.status,
        fee=line.fee,
        fee_charged=line.charged,
        requested_at=c.requested_at,
        collected_at=c.collected_at,
        closed_at=c.closed_at,
        items=[CourierItemOut(barcode=b, title=t) for b, t in line.titles],
    )


def _one_courier(session: DbSession, row: CourierReturn) -> CourierOut:
    return _courier_out(courier.lines(session, [row])[0])


@router.post(
    "/courier-returns",
    status_code=status.HTTP_201_CREATED,
    response_model=CourierOut,
    summary="Ask a courier to collect loans at an address and take them to the home library",
    description="The pickup time must fall in the courier's service hours, the opening "
    "hours of the reader's home library (else 422 on pickup_at). The logistics fee (the "
    "highest courier fee of the loans' rules) is quoted now and charged when the courier "
    "collects; fines stop at the pickup time asked for. Readers for their own loans; "
    "circulation staff of the reader's home library name the reader." + IDEMPOTENT,
)
async def request_courier(body: CourierIn, work: Work) -> Response:
    def run(session: Session, actor: Actor) -> CourierOut:
        row = courier.request(
            session,
            actor,
            reader_id=_whose(actor, body.reader_id),
            loan_ids=body.loan_ids,
            address=body.address,
            pickup_at=body.pickup_at,
            at=work.now,
        )
        return _one_courier(session, row)

    return await work.run(
        run, status.HTTP_201_CREATED, allowed=lambda actor: _whose(actor, body.reader_id)
    )


@router.get("/courier-returns", summary="A reader's courier returns, or those a library awaits")
def list_couriers(
    session: DbSession,
    actor: CurrentActor,
    reader_id: Annotated[DbId | None, Query(description="staff: whose requests")] = None,
    library_id: Annotated[
        DbId | None, Query(description="staff: requests waiting for the courier, to this library")
    ] = None,
) -> list[CourierOut]:
    if library_id is not None and actor.is_staff:
        unit = _desk_library(session, actor, library_id)
        return [_courier_out(x) for x in courier.to_collect(session, [unit.id])]
    whose = _whose(actor, reader_id)
    readers.require_access(session, actor, whose, readers.ReaderAccess.FULL)  # addresses
    return [_courier_out(x) for x in courier.of_reader(session, whose)]


@router.post("/courier-returns/{courier_id}/cancel", summary="Call the courier off")
def cancel_courier(
    courier_id: DbId, session: DbSession, actor: CurrentActor, now: Now
) -> CourierOut:
    return _one_courier(session, courier.cancel(session, actor, courier_id, at=now))


@router.post(
    "/courier-returns/{courier_id}/collect",
    summary="The courier has the parcel: the loans end, the copies travel (circulation staff)",
)
def collect_courier(
    courier_id: DbId, session: DbSession, actor: CurrentStaff, now: Now
) -> CourierOut:
    return _one_courier(session, courier.collect(session, actor, courier_id, at=now))


# --- transits and the pull list ---------------------------------------------------------


def _desk_library(session: DbSession, actor: Actor, library_id: int) -> libraries.OrgUnit:
    unit = libraries.get_unit(session, library_id)
    if not actor.can(Permission.CIRCULATION_OPERATE, unit.path):
        raise PermissionDenied("your roles do not include circulation at this library")
    return unit


def _transit_out(line: holds.TransitLine) -> TransitOut:
    t = line.transit
    return TransitOut(
        id=t.id,
        item_id=t.item_id,
        barcode=line.barcode,
        title=line.title,
        from_library_id=t.from_unit_id,
        to_library_id=t.to_unit_id,
        reason=t.reason,
        hold_id=t.hold_id,
        status=t.status,
        created_at=t.created_at,
        shipped_at=t.shipped_at,
        received_at=t.received_at,
    )


@router.get(
    "/transits",
    summary="Copies to send from a library, or on their way to it (circulation staff)",
)
def list_transits(
    session: DbSession,
    actor: CurrentStaff,
    library_id: DbId,
    direction: Literal["send", "receive"] = "send",
) -> list[TransitOut]:
    unit = _desk_library(session, actor, library_id)
    lines = holds.transits_at(session, [unit.id], incoming=direction == "receive")
    return [_transit_out(x) for x in lines]


@router.post("/transits/{transit_id}/ship", summary="Mark a transit as handed to logistics")
def ship_transit(transit_id: DbId, session: DbSession, actor: CurrentStaff, now: Now) -> TransitOut:
    t = holds.ship(session, actor, transit_id, at=now)
    item = catalog.get_item(session, t.item_id)
    title = catalog.get_record(session, item.record_id).title
    return _transit_out(holds.TransitLine(t, item.barcode, title))


@router.get(
    "/pull-list",
    summary="Waiting holds that copies on this library's shelves can fill: fetch and scan in",
)
def pull_list(session: DbSession, actor: CurrentStaff, library_id: DbId) -> list[PullOut]:
    unit = _desk_library(session, actor, library_id)
    return [
        PullOut(
            hold_id=p.hold.id,
            item_id=p.item.id,
            barcode=p.item.barcode,
            call_number=p.item.call_number,
            title=p.title,
            pickup_library_id=p.hold.pickup_unit_id,
        )
        for p in holds.pull_list(session, unit.id)
    ]


# --- fees -----------------------------------------------------------------------------------


def _fee_out(fee: Fee) -> FeeOut:
    return FeeOut(
        id=fee.id,
        kind=fee.kind,
        library_id=fee.org_unit_id,
        loan_id=fee.loan_id,
        item_id=fee.item_id,
        amount=fee.amount,
        paid=fee.paid,
        waived=fee.waived,
        balance=fee.balance,
        note=fee.note,
        created_at=fee.created_at,
    )


@router.get("/fees", summary="A reader's fees and what they owe in all")
def list_fees(
    session: DbSession,
    actor: CurrentActor,
    reader_id: Annotated[DbId | None, Query(description="staff: whose fees")] = None,
    all: Annotated[bool, Query(description="settled fees too")] = False,
) -> FeesOut:
    whose = _whose(actor, reader_id)
    return FeesOut(
        reader_id=whose,
        balance=fees.balance(session, whose),
        fees=[_fee_out(f) for f in fees.fees_for(session, actor, whose, open_only=not all)],
    )


def _transactions(rows: list[FeeTransaction]) -> list[TransactionOut]:
    return [
        TransactionOut(id=r.id, fee_id=r.fee_id, kind=r.kind, amount=r.amount, at=r.at)
        for r in rows
    ]


@router.post(
    "/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionList,
    summary="Take a payment at a desk; it settles the oldest fees first (circulation staff)",
    description=IDEMPOTENT.strip(),
)
async def pay(body: PaymentIn, work: Work) -> Response:
    def run(session: Session, actor: Actor) -> BaseModel:
        rows = fees.pay(session, actor, body.reader_id, body.amount, at=work.now, note=body.note)
        return TransactionList(_transactions(rows))

    return await work.run(run, status.HTTP_201_CREATED, allowed=staff_only)


@router.post(
    "/fees/{fee_id}/waive",
    status_code=status.HTTP_201_CREATED,
    summary="Waive a fee or part of it, with a reason (staff allowed to waive)",
)
def waive(
    fee_id: DbId, body: WaiverIn, session: DbSession, actor: CurrentStaff, now: Now
) -> TransactionOut:
    row = fees.waive(session, actor, fee_id, body.amount, note=body.note, at=now)
    return _transactions([row])[0]
