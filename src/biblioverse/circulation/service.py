"""Use cases of circulation: the rule matrix and which rule applies (more to come: loans,
holds, transits, fees)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.circulation import rules
from biblioverse.circulation.errors import RuleNotFound
from biblioverse.circulation.models import CirculationRule
from biblioverse.errors import DuplicateValue, FieldError, PermissionDenied, ValidationFailed

ANY = "*"
POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(rules.Policy))


def _policy(row: CirculationRule) -> rules.Policy:
    values = {name: getattr(row, name) for name in POLICY_FIELDS}
    values["hold_pickup"] = rules.PickupPolicy(row.hold_pickup)
    return rules.Policy(**values)


def matrix(session: Session) -> list[rules.Rule]:
    """Every row of the rule matrix, with its org unit's tree path."""
    paths = {u.id: u.path for u in libraries.unit_names(session).values()}
    return [
        rules.Rule(
            id=row.id,
            org_path=paths[row.org_unit_id],
            reader_category=None if row.reader_category == ANY else row.reader_category,
            item_type=None if row.item_type == ANY else row.item_type,
            policy=_policy(row),
            name=row.name,
        )
        for row in session.scalars(select(CirculationRule).order_by(CirculationRule.id))
    ]


@dataclass
class Applied:
    """The rule for a reader and a copy, why, and when a loan made now would be due."""

    explanation: rules.Explanation
    due: dt.datetime
    lending_library: libraries.UnitName
    at_library: libraries.UnitName


def explain(
    session: Session, reader_id: int, item_id: int, *, at_unit_id: int | None, at: dt.datetime
) -> Applied:
    """Which rule applies to this reader borrowing this copy. The copy's owning library sets
    the terms (it lends); the due date follows the calendar of the library where the loan is
    made (``at_unit_id``, the owning library if None), where the reader will most likely
    bring it back."""
    reader = readers.get(session, reader_id)
    item = catalog.get_item(session, item_id)
    units = libraries.unit_names(session)
    owner = units[item.org_unit_id]
    why = rules.resolve(matrix(session), owner.path, reader.category, item.item_type)
    where = libraries.get_unit(session, at_unit_id or item.org_unit_id)
    due = rules.due_at(why.rule.policy, at, libraries.schedule_of(where))
    return Applied(why, due, owner, units[where.id])


@dataclass
class RuleInput:
    org_unit_id: int
    reader_category: str | None = None
    item_type: str | None = None
    name: str = ""
    policy: rules.Policy = dataclasses.field(default_factory=rules.Policy)


def save_rule(
    session: Session,
    actor: Actor | None,
    data: RuleInput,
    *,
    rule_id: int | None = None,
    at: dt.datetime,
) -> CirculationRule:
    """Create a row of the matrix or change one; ``actor`` None is the system (the demo).
    Staff set rules for the units their role covers."""
    unit = libraries.get_unit(session, data.org_unit_id)
    if actor is not None and not actor.can(Permission.CIRCULATION_RULES, unit.path):
        raise PermissionDenied("you may not set circulation rules here")
    problems = [FieldError(f, "invalid", m) for f, m in rules.policy_errors(data.policy)]
    if data.reader_category not in (None, *(c.value for c in readers.Category)):
        problems.append(FieldError("reader_category", "invalid", "Not a reader category."))
    if data.item_type not in (None, *(t.value for t in catalog.ItemType)):
        problems.append(FieldError("item_type", "invalid", "Not an item type."))
    if problems:
        raise ValidationFailed(problems)
    cell = (data.org_unit_id, data.reader_category or ANY, data.item_type or ANY)
    clash = session.scalar(
        select(CirculationRule.id).where(
            CirculationRule.org_unit_id == cell[0],
            CirculationRule.reader_category == cell[1],
            CirculationRule.item_type == cell[2],
        )
    )
    if clash is not None and clash != rule_id:
        raise DuplicateValue("circulation rule", "cell", "/".join(map(str, cell)))
    if rule_id is None:
        row = CirculationRule()
        session.add(row)
    else:
        found = session.get(CirculationRule, rule_id)
        if found is None:
            raise RuleNotFound(rule_id)
        row = found
    row.org_unit_id, row.reader_category, row.item_type = cell
    row.name = data.name
    for name in POLICY_FIELDS:
        value = getattr(data.policy, name)
        setattr(row, name, value.value if isinstance(value, rules.PickupPolicy) else value)
    row.updated_at = at
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "circulation.rule.save",
            entity="circulation_rule",
            entity_id=row.id,
            org_unit_id=unit.id,
            at=at,
            details={"cell": list(cell), "name": data.name},
        )
    return row
