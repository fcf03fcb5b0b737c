"""The audit log of staff actions: who did what, when, on which record.

Entries name records by id and list the fields that changed, never secrets and never a
reader's personal data in clear, so the log can be kept longer than the data it speaks of.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from biblioverse.access import Actor
from biblioverse.db import Base, JSONType, UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


def log_action(
    session: Session,
    actor: Actor,
    action: str,
    *,
    entity: str,
    entity_id: object,
    org_unit_id: int | None,
    at: dt.datetime,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=at,
            actor_kind=actor.kind.value,
            actor_id=actor.id,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            org_unit_id=org_unit_id,
            details=details or {},
        )
    )


def entries(
    session: Session, *, unit_ids: list[int] | None, limit: int = 100, before_id: int | None = None
) -> list[AuditEntry]:
    """Newest first; ``unit_ids`` None means every unit (a consortium admin)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if unit_ids is not None:
        q = q.where(AuditEntry.org_unit_id.in_(unit_ids))
    if before_id is not None:
        q = q.where(AuditEntry.id < before_id)
    return list(session.scalars(q))
