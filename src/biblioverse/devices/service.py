"""What every device shares in the database: its health (messages, reads, errors, clock),
added to by each batch, the statement helpers the ingesting contexts use, and the registry
of every kind as the devices page lists it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import accounts, libraries
from biblioverse.access import Actor
from biblioverse.devices.models import DeviceHealth
from biblioverse.devices.rules import ErrorKind, Status, newest, status

__all__ = [
    "CHUNK",
    "Detail",
    "DetailSource",
    "Health",
    "Line",
    "Status",
    "chunks",
    "registry",
    "save_health",
]

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


# --- the registry as the console lists it ---------------------------------------------


@dataclass(frozen=True)
class Detail:
    """What a device context knows of one of its devices beyond its health row (a SIP2
    login's counts), given to the devices page by the function it registers in
    `create_app()` (`app.state.device_details`, ADR 0038)."""

    messages: int = 0
    errors: int = 0
    last_error: str | None = None
    last_seen: dt.datetime | None = None
    label: str = ""  # such as the SIP2 login
    disabled: bool = False  # may not log in, though its key still holds
    location: str = ""  # where it stands, as its context keeps it
    href: str | None = None  # the context's own page of the device


DetailSource = Callable[[Session, Sequence[int]], Mapping[int, Detail]]


@dataclass(frozen=True)
class Line:
    """A device as the devices page lists it."""

    device: accounts.DeviceKey
    library: libraries.UnitName
    timezone: str
    status: Status
    last_seen: dt.datetime | None
    messages: int
    errors: int
    last_error: str | None
    last_error_at: dt.datetime | None
    error_counts: Mapping[str, int]
    detail: Detail | None


def registry(
    session: Session,
    actor: Actor,
    *,
    at: dt.datetime,
    silent_after: dt.timedelta,
    sources: Sequence[DetailSource] = (),
    device_id: int | None = None,
) -> list[Line]:
    """Every device of every kind in the libraries the actor manages devices of (or the one
    asked for, which raises `accounts.DeviceNotFound` outside them), with its health."""
    rows = (
        [accounts.get_device_key(session, actor, device_id)]
        if device_id is not None
        else accounts.device_keys(session, actor)
    )
    ids = [r.id for r in rows]
    health: dict[int, DeviceHealth] = {}
    for part in chunks(ids):
        for row in session.scalars(select(DeviceHealth).where(DeviceHealth.device_id.in_(part))):
            health[row.device_id] = row
    details: dict[int, Detail] = {}
    for source in sources:
        details.update(source(session, ids))
    names = libraries.unit_names(session)
    zones: dict[int, str] = {}
    out = []
    for r in rows:
        if r.org_unit_id not in zones:
            zones[r.org_unit_id] = libraries.get_unit(session, r.org_unit_id).timezone
        h, d = health.get(r.id), details.get(r.id)
        seen = newest(
            r.last_seen_at,
            h.last_message_at if h else None,
            h.heartbeat_at if h else None,
            d.last_seen if d else None,
        )
        out.append(
            Line(
                device=r,
                library=names.get(r.org_unit_id) or libraries.unit_name(session, r.org_unit_id),
                timezone=zones[r.org_unit_id],
                status=status(
                    retired=r.revoked_at is not None,
                    last_seen=seen,
                    now=at,
                    silent_after=silent_after,
                ),
                last_seen=seen,
                messages=(h.messages if h else 0) + (d.messages if d else 0),
                errors=(h.errors if h else 0) + (d.errors if d else 0),
                last_error=(d.last_error if d and d.last_error else None)
                or (h.last_error if h else None),
                last_error_at=h.last_error_at if h else None,
                error_counts=dict(h.error_counts or {}) if h else {},
                detail=d,
            )
        )
    return out
