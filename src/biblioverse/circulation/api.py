"""HTTP API of circulation: the rule matrix, which rule applies, and loans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from biblioverse import libraries
from biblioverse.access import Actor, Permission
from biblioverse.circulation import rules, service
from biblioverse.circulation.models import Loan
from biblioverse.circulation.schemas import (
    CheckinIn,
    CheckoutIn,
    ExplainOut,
    LoanOut,
    PolicyIO,
    RuleIn,
    RuleOut,
)
from biblioverse.deps import CurrentActor, CurrentStaff, DbSession, Now, require_permission
from biblioverse.errors import FieldError, PermissionDenied, ValidationFailed
from biblioverse.fields import DbId

router = APIRouter(prefix="/circulation", tags=["circulation"])
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
        policy=PolicyIO(**{n: getattr(p, n) for n in service.POLICY_FIELDS}),
    )


def _by_id(session: DbSession, rule_id: int) -> RuleOut:
    unit_of = {u.path: u.id for u in libraries.unit_names(session).values()}
    rule = next(r for r in service.matrix(session) if r.id == rule_id)
    return _out(rule, unit_of[rule.org_path])


@router.get("/rules", summary="The circulation rule matrix (staff)")
def list_rules(session: DbSession, actor: CurrentStaff) -> list[RuleOut]:
    unit_of = {u.path: u.id for u in libraries.unit_names(session).values()}
    return [_out(r, unit_of[r.org_path]) for r in service.matrix(session)]


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
        reasons=why.reasons(),
        considered=[r.id for r in why.candidates],
        lending_library_id=applied.lending_library.id,
        due_if_borrowed_now=applied.due,
        due_at_library_id=applied.at_library.id,
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


@router.post(
    "/checkout",
    status_code=status.HTTP_201_CREATED,
    summary="Lend a copy (circulation staff at their libraries; readers by phone, to "
    "themselves); a refusal answers 409 with its reason as the error code",
)
def checkout(body: CheckoutIn, session: DbSession, actor: CurrentActor, now: Now) -> LoanOut:
    if actor.is_reader:
        reader_id, channel = actor.id, "mobile"
        if body.reader_id not in (None, actor.id):
            raise PermissionDenied("readers borrow on their own card only")
    elif actor.is_staff:
        if body.reader_id is None:
            raise ValidationFailed([FieldError("reader_id", "required", "Whose card?")])
        reader_id, channel = body.reader_id, "api"
    else:
        raise PermissionDenied("devices lend through SIP2")
    loan = service.checkout(
        session,
        actor,
        reader_id=reader_id,
        barcode=body.barcode,
        rfid_tag=body.rfid_tag,
        at_unit_id=body.library_id,
        channel=channel,
        at=now,
    )
    return _loan_out(loan)


@router.post("/checkin", summary="Take a copy back, at any member library (circulation staff)")
def checkin(body: CheckinIn, session: DbSession, actor: CurrentStaff, now: Now) -> LoanOut:
    loan = service.checkin(
        session,
        actor,
        barcode=body.barcode,
        rfid_tag=body.rfid_tag,
        at_unit_id=body.library_id,
        at=now,
    )
    return _loan_out(loan)


@router.post("/loans/{loan_id}/renew", summary="Renew a loan (the reader, or circulation staff)")
def renew(loan_id: DbId, session: DbSession, actor: CurrentActor, now: Now) -> LoanOut:
    return _loan_out(service.renew(session, actor, loan_id, at=now))
