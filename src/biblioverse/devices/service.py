"""What every device shares in the database: its health (messages, reads, errors, clock),
added to by each batch, and the statement helpers the ingesting contexts use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from biblioverse.devices.models import DeviceHealth
from biblioverse.devices.rules import ErrorKind

CHUNK = 900  # bound parameters per IN (...): SQLite allows 999 in older builds


def chunks(values: Sequence[object]) -> Iterable[Sequence[object]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


@dataclass
class Health:
    """What a batch learnt of each device, added to `device_health` in one statement each."""

    messages: int = 0
    reads: int = 0
    last_seq: int = 0
    last_message_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    last_error_at: dt.datetime | None = None

    def error(self, kind: ErrorKind | str, message: str, at: dt.datetime) -> None:
        self.errors[str(kind)] = self.errors.get(str(kind), 0) + 1
        self.last_error = f"{kind}: {message}"[:300]
        self.last_error_at = at


def save_health(session: Session, health: dict[int, Health], known: Iterable[int]) -> None:
    """Adds to the health rows of registered devices; what a stranger sent (a topic naming
    no device) is only counted by the ingestor."""
    known = set(known)
    for device_id, h in health.items():
        if device_id not in known:
            continue
        row = session.get(DeviceHealth, device_id, with_for_update=True)
        if row is None:
            row = DeviceHealth(
                device_id=device_id,
                last_seq=0,
                messages=0,
                reads=0,
                errors=0,
                error_counts={},
            )
            session.add(row)
        row.messages += h.messages
        row.reads += h.reads
        row.last_seq = max(row.last_seq, h.last_seq)
        if h.last_message_at and (
            row.last_message_at is None or h.last_message_at > row.last_message_at
        ):
            row.last_message_at = h.last_message_at
        if h.heartbeat_at and (row.heartbeat_at is None or h.heartbeat_at > row.heartbeat_at):
            row.heartbeat_at = h.heartbeat_at
        if h.errors:
            counts = dict(row.error_counts or {})
            for kind, n in h.errors.items():
                counts[kind] = counts.get(kind, 0) + n
            row.error_counts = counts
            row.errors += sum(h.errors.values())
            row.last_error = h.last_error
            row.last_error_at = h.last_error_at
