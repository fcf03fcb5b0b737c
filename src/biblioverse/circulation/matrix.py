"""The rule matrix as stored, and the rule for a reader and a copy."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, readers, reference
from biblioverse.circulation import rules
from biblioverse.circulation.models import CirculationRule

ANY = "*"
POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(rules.Policy))


def _policy(row: CirculationRule) -> rules.Policy:
    values = {name: getattr(row, name) for name in POLICY_FIELDS}
    values["hold_pickup"] = rules.PickupPolicy(row.hold_pickup)
    return rules.Policy(**values)


def matrix(session: Session) -> list[rules.Rule]:
    """Every row of the rule matrix, with its org unit's tree path, as this process keeps
    it (see :mod:`biblioverse.reference`); the list is shared: do not change it."""
    return reference.get(session, "circulation.matrix", _read_matrix)


def _read_matrix(session: Session) -> list[rules.Rule]:
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


class Matrix:
    """The matrix and the units' tree paths, for a unit of work that resolves rules (a
    check-out, a check-in looking through a queue, the nightly jobs)."""

    def __init__(self, session: Session) -> None:
        self.rows = matrix(session)
        self.units = libraries.unit_names(session)

    def rule(self, owner_unit_id: int, category: str, item_type: str) -> rules.Explanation:
        return rules.resolve(self.rows, self.units[owner_unit_id].path, category, item_type)

    def policy(self, item: catalog.Item, reader: readers.Reader) -> rules.Policy:
        return self.rule(item.org_unit_id, reader.category, item.item_type).rule.policy

    def path(self, unit_id: int) -> str:
        return self.units[unit_id].path
