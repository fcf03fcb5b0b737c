"""HTTP API of circulation: the rule matrix and which rule applies to a reader and a copy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from biblioverse import libraries
from biblioverse.access import Actor, Permission
from biblioverse.circulation import rules, service
from biblioverse.circulation.schemas import ExplainOut, PolicyIO, RuleIn, RuleOut
from biblioverse.deps import CurrentActor, CurrentStaff, DbSession, Now, require_permission
from biblioverse.errors import PermissionDenied
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
