"""Domain events through a transactional outbox.

A service records an event in the same transaction as the change it describes; after the
commit, :func:`dispatch_pending` hands unpublished events to the subscribers and marks
them published. Subscribers (real-time pages, the search index, notifications) never reach
into another context's tables. In-process dispatch is the default; a Redis fan-out can
subscribe here too when several workers run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from biblioverse.db import Base, JSONType, UTCDateTime, utcnow

log = logging.getLogger(__name__)


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


Subscriber = Callable[[str, dict[str, Any]], None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def record(session: Session, topic: str, payload: dict[str, Any], *, at: dt.datetime) -> None:
    session.add(OutboxEvent(topic=topic, payload=payload, created_at=at, published_at=None))
    session.info["outbox_pending"] = True


def has_pending(session: Session) -> bool:
    """Whether this session recorded events (so a request without any skips the relay)."""
    return bool(session.info.pop("outbox_pending", False))


def subscribe(topic: str, handler: Subscriber) -> None:
    """Register a handler for a topic ("*" for all). Handlers must be idempotent."""
    _subscribers[topic].append(handler)


def dispatch_pending(
    session: Session,
    *,
    limit: int = 500,
    handlers: Mapping[str, Sequence[Subscriber]] | None = None,
) -> int:
    """Publish committed events in order; returns how many were published. ``handlers`` are
    the app's own subscribers (an app's search index), beside the process-wide ones."""
    rows = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(limit)
        # Several workers may relay at once: each takes rows the others have not locked.
        .with_for_update(skip_locked=True)
    ).all()
    for event in rows:
        local = handlers or {}
        for handler in [
            *_subscribers.get(event.topic, []),
            *_subscribers.get("*", []),
            *local.get(event.topic, []),
        ]:
            try:
                handler(event.topic, event.payload)
            except Exception:  # a broken subscriber must not block the others
                log.exception("subscriber failed for event %s", event.id)
        event.published_at = utcnow()
    return len(rows)
