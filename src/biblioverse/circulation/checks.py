"""Checks shared by lending, renewing and holds, and staff overrides of their refusals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from biblioverse import libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.circulation import errors, fees, rules
from biblioverse.circulation.models import Loan
from biblioverse.errors import PermissionDenied


def ensure_serves_readers(actor: Actor | None) -> None:
    """Staff, readers and self-service machines lend, renew and hold; no other device."""
    if actor is not None and not actor.acts_for_readers():
        raise PermissionDenied(f"a {actor.device_kind} does not lend, renew or hold copies")


class Gate:
    """Raises refusals, or lets an overridable one pass when staff allowed to override gave
    a reason. What was overridden is audited by :meth:`audit` once the action succeeded."""

    def __init__(
        self,
        actor: Actor | None,
        override: str | None,
        unit: libraries.UnitName | libraries.OrgUnit | None,
    ):
        self.reason = (override or "").strip()
        self.allowed = bool(
            self.reason
            and actor is not None
            and unit is not None
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
        if not self.overridden or self.actor is None or self.unit is None:
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
    session: Session,
    gate: Gate,
    reader: readers.Reader,
    policy: rules.Policy,
    at: dt.datetime,
    *,
    owed: Decimal | None = None,
) -> None:
    """The card is active and in date, and the reader's unpaid fees (``owed``, read here if
    the caller has not) are within the rule."""
    status = readers.Status(reader.status)
    if status is readers.Status.BLOCKED:
        gate.refuse(errors.ReaderBlocked("the card is blocked"))
    if status is readers.Status.PENDING:
        gate.refuse(errors.CardNotActive("the card waits for activation at a desk"))
    if status is readers.Status.EXPIRED or reader.expires_on < readers.local_today(at):
        gate.refuse(errors.CardExpired(f"the card expired on {reader.expires_on.isoformat()}"))
    if owed is None:
        owed = fees.balance(session, reader.id)
    if owed > policy.block_threshold:
        gate.refuse(
            errors.FeeLimitReached(
                f"unpaid fees of {owed} are above the limit of {policy.block_threshold}"
            )
        )


class Noting(Gate):
    """A gate that notes refusals instead of raising them: to tell what a card may do."""

    def __init__(self) -> None:
        super().__init__(None, None, None)
        self.codes: list[str] = []

    def refuse(self, refusal: errors.Refused) -> None:
        self.codes.append(refusal.code)


@dataclass(frozen=True)
class Standing:
    """Where a reader's card stands, for a self-service machine's patron status: what the
    card may do, and why not. The limits are those of the rule for books at the reader's home
    library (a machine asks about the card, not about one copy)."""

    refusals: tuple[str, ...]  # codes of the refusals a loan would meet now
    owed: Decimal
    fee_limit: Decimal
    loans: int
    loan_limit: int
    overdue: int
    hold_limit: int


def standing(
    session: Session, reader: readers.Reader, policy: rules.Policy, at: dt.datetime
) -> Standing:
    noted = Noting()
    reader_may_borrow(session, noted, reader, policy, at)
    refusals = noted.codes
    loans, overdue = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Loan.due_at < at, 1), else_=0)), 0),
        ).where(Loan.reader_id == reader.id, Loan.returned_at.is_(None))
    ).one()
    if policy.max_loans and loans >= policy.max_loans:
        refusals.append(errors.LoanLimitReached.code)
    return Standing(
        refusals=tuple(refusals),
        owed=fees.balance(session, reader.id),
        fee_limit=policy.block_threshold,
        loans=int(loans),
        loan_limit=policy.max_loans,
        overdue=int(overdue),
        hold_limit=policy.max_holds,
    )
