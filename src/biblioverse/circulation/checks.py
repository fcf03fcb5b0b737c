"""Checks shared by lending, renewing and holds, and staff overrides of their refusals."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from biblioverse import libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.circulation import errors, fees, rules


class Gate:
    """Raises refusals, or lets an overridable one pass when staff allowed to override gave
    a reason. What was overridden is audited by :meth:`audit` once the action succeeded."""

    def __init__(self, actor: Actor | None, override: str | None, unit: libraries.OrgUnit):
        self.reason = (override or "").strip()
        self.allowed = bool(
            self.reason
            and actor is not None
            and actor.is_staff
            and actor.can(Permission.CIRCULATION_OVERRIDE, unit.path)
        )
        self.actor, self.unit = actor, unit
        self.overridden: list[str] = []

    def refuse(self, refusal: errors.Refused) -> None:
        if self.allowed and refusal.overridable:
            self.overridden.append(refusal.code)
            return
        raise refusal

    def audit(
        self, session: Session, action: str, entity: str, entity_id: int, at: dt.datetime
    ) -> None:
        if not self.overridden or self.actor is None:
            return
        log_action(
            session,
            self.actor,
            "circulation.override",
            entity=entity,
            entity_id=entity_id,
            org_unit_id=self.unit.id,
            at=at,
            details={"action": action, "refusals": self.overridden, "reason": self.reason},
        )


def reader_may_borrow(
    session: Session, gate: Gate, reader: readers.Reader, policy: rules.Policy, at: dt.datetime
) -> None:
    """The card is active and in date, and the reader's unpaid fees are within the rule."""
    status = readers.Status(reader.status)
    if status is readers.Status.BLOCKED:
        gate.refuse(errors.ReaderBlocked("the card is blocked"))
    if status is readers.Status.PENDING:
        gate.refuse(errors.CardNotActive("the card waits for activation at a desk"))
    if status is readers.Status.EXPIRED or reader.expires_on < readers.local_today(at):
        gate.refuse(errors.CardExpired(f"the card expired on {reader.expires_on.isoformat()}"))
    owed = fees.balance(session, reader.id)
    if owed > policy.block_threshold:
        gate.refuse(
            errors.FeeLimitReached(
                f"unpaid fees of {owed} are above the limit of {policy.block_threshold}"
            )
        )
