"""Pure decisions of smart-shelf ingestion: reading a reader's message, and moving copies on
a board of positions. No I/O; the service loads the board, the rules change it, the service
writes back what changed.

Ordering. Every message carries the reader's clock (`ts`) and a sequence number (`seq`) that
grows with each message. A position remembers the (ts, seq) that set it, and an antenna the
(ts, seq) of its newest full snapshot; a report older than what it would change changes
nothing. So a repeated message is harmless, a late one cannot undo a newer one, and messages
may arrive in any order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from biblioverse.devices.rules import (
    PayloadError,
    read_header,
    whole_number,
)

MAX_TAGS = 5000  # per message: a full shelf reader with a dozen antennas stays under this
MAX_ANTENNA = 2**31 - 1  # the antennas' integer column
IN_LIBRARY_USE = dt.timedelta(hours=4)  # off the shelf longer than this is no browsing
MISSING_AFTER = dt.timedelta(days=2)  # a copy no antenna has read this long is missing
_TAG = re.compile(r"^[0-9A-Za-z]{4,64}$")


def misplaced(read_on: int | None, belongs_on: int | None) -> bool:
    """Mis-shelved, the one definition every report, reconciliation and inventory uses: read
    on a shelf that is not the one its call number belongs on (a copy that no shelf is for is
    misplaced on any). A read that names no shelf (a handheld away from the shelves)
    misplaces nothing. Which copies each report looks at is its own: see their docstrings."""
    return read_on is not None and read_on != belongs_on


class Scope(StrEnum):
    """What an inventory covers."""

    LIBRARY = "library"
    FLOOR = "floor"
    ZONE = "zone"
    SHELVES = "shelves"


class Kind(StrEnum):
    SNAPSHOT = "snapshot"
    DELTA = "delta"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class Report:
    device_id: int
    kind: Kind
    seq: int
    ts: dt.datetime
    antenna: int | None = None
    tags: tuple[str, ...] = ()  # a snapshot: every tag on the antenna now
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    skewed: bool = False  # the reader's clock was ahead; ts is our receiving time

    @property
    def order(self) -> tuple[dt.datetime, int]:
        return (self.ts, self.seq)

    @property
    def reads(self) -> int:
        return len(self.tags) + len(self.added) + len(self.removed)


def _tags(data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise PayloadError(name, "a list of tag identifiers")
    if len(value) > MAX_TAGS:
        raise PayloadError(name, f"{len(value)} tags; at most {MAX_TAGS} in one message")
    out: dict[str, None] = {}
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise PayloadError(f"{name}[{i}]", "4 to 64 letters or digits (an EPC or a UID)")
        out[tag.upper()] = None
    return tuple(out)


def parse_report(
    payload: bytes | str, *, device_id: int, received: dt.datetime, kind: str | None = None
) -> Report:
    """Reads one message of a reader; raises PayloadError naming the bad field. `kind` is
    given when the MQTT topic says it (`.../heartbeat`)."""
    data, seq, ts, skewed = read_header(payload, device_id=device_id, received=received)
    try:
        report_kind = Kind(str(kind or data.get("type")))
    except ValueError as exc:
        raise PayloadError("type", "snapshot, delta or heartbeat") from exc
    if report_kind is Kind.HEARTBEAT:
        return Report(device_id, report_kind, seq, ts, skewed=skewed)
    antenna = whole_number(data, "antenna", most=MAX_ANTENNA)
    if report_kind is Kind.SNAPSHOT:
        return Report(
            device_id, report_kind, seq, ts, antenna, tags=_tags(data, "tags"), skewed=skewed
        )
    added, removed = _tags(data, "added"), _tags(data, "removed")
    both = set(added) & set(removed)
    if both:
        raise PayloadError("removed", f"{sorted(both)[0]} is both added and removed")
    return Report(
        device_id, report_kind, seq, ts, antenna, added=added, removed=removed, skewed=skewed
    )


# --- the board ---------------------------------------------------------------------


class State(StrEnum):
    ON_SHELF = "on_shelf"
    OFF_SHELF = "off_shelf"


@dataclass
class Position:
    antenna_id: int
    state: State
    ts: dt.datetime
    seq: int
    taken_at: dt.datetime | None = None

    @property
    def order(self) -> tuple[dt.datetime, int]:
        return (self.ts, self.seq)


@dataclass(frozen=True)
class Use:
    item_id: int
    antenna_id: int
    taken_at: dt.datetime
    back_at: dt.datetime


@dataclass
class Board:
    """The positions a batch of reports touches, and the antennas' snapshot times.

    `lent` holds the copies that are on loan now: one put on a shelf was returned without a
    check-in, and is no use in the library."""

    positions: dict[int, Position] = field(default_factory=dict)
    snapshots: dict[int, tuple[dt.datetime, int]] = field(default_factory=dict)
    on_antenna: dict[int, set[int]] = field(default_factory=dict)  # loaded for snapshots
    lent: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)
    snapshot_changed: set[int] = field(default_factory=set)
    uses: list[Use] = field(default_factory=list)
    moves: int = 0

    _EPOCH = (dt.datetime.min.replace(tzinfo=dt.UTC), -1)

    def confirmed(self, item_id: int) -> tuple[dt.datetime, int]:
        """The newest (ts, seq) that said where this copy is: the read that set its position,
        or a later snapshot of its antenna that still held it."""
        pos = self.positions.get(item_id)
        if pos is None:
            return self._EPOCH
        if pos.state is State.ON_SHELF:
            snap = self.snapshots.get(pos.antenna_id)
            if snap is not None and snap > pos.order:
                return snap
        return pos.order

    def place(
        self,
        item_id: int,
        antenna_id: int,
        order: tuple[dt.datetime, int],
        *,
        by_snapshot: bool = False,
    ) -> None:
        if order <= self.confirmed(item_id):
            return
        pos = self.positions.get(item_id)
        if pos is not None and pos.state is State.ON_SHELF and pos.antenna_id == antenna_id:
            if not by_snapshot:  # a snapshot's time says it for every copy in one row
                pos.ts, pos.seq = order
                self.changed.add(item_id)
            return
        snap = self.snapshots.get(antenna_id)
        if snap is not None and snap > order:
            # a later snapshot of this antenna, which came first, did not hold the copy:
            # it was here then, and had gone by the snapshot (where to, a newer read may say)
            self._off(item_id, antenna_id, order, taken_at=snap[0])
            return
        ts, seq = order
        if (
            pos is not None
            and pos.taken_at is not None
            and item_id not in self.lent
            and ts - pos.taken_at <= IN_LIBRARY_USE
        ):
            self.uses.append(Use(item_id, antenna_id, pos.taken_at, ts))
        self.moves += 1
        if pos is not None and pos.antenna_id != antenna_id:
            self.on_antenna.get(pos.antenna_id, set()).discard(item_id)
        self.positions[item_id] = Position(antenna_id, State.ON_SHELF, ts, seq)
        self.on_antenna.setdefault(antenna_id, set()).add(item_id)
        self.changed.add(item_id)

    def take(self, item_id: int, antenna_id: int, order: tuple[dt.datetime, int]) -> None:
        """The antenna no longer reads the copy: it left the shelf, unless something newer
        says where it is. (Even if we last knew it elsewhere: it came here, then left.)"""
        if order <= self.confirmed(item_id):
            return
        self._off(item_id, antenna_id, order)

    def _off(
        self,
        item_id: int,
        antenna_id: int,
        order: tuple[dt.datetime, int],
        *,
        taken_at: dt.datetime | None = None,
    ) -> None:
        pos = self.positions.get(item_id)
        if pos is not None:
            self.on_antenna.get(pos.antenna_id, set()).discard(item_id)
        ts, seq = order
        self.positions[item_id] = Position(
            antenna_id, State.OFF_SHELF, ts, seq, taken_at=taken_at or ts
        )
        self.changed.add(item_id)

    def snapshot(
        self, antenna_id: int, items: Iterable[int], order: tuple[dt.datetime, int]
    ) -> None:
        present = set(items)
        for item_id in present:
            self.place(item_id, antenna_id, order, by_snapshot=True)
        for item_id in list(self.on_antenna.get(antenna_id, ())):
            last = self.confirmed(item_id)
            if item_id not in present and order > last:
                # gone from here by this snapshot; last seen when it was last confirmed here,
                # so that an older read elsewhere that arrives late may still place it
                self._off(item_id, antenna_id, last, taken_at=order[0])
        if order > self.snapshots.get(antenna_id, self._EPOCH):
            self.snapshots[antenna_id] = order
            self.snapshot_changed.add(antenna_id)


# --- missing copies -------------------------------------------------------------------


def last_read(
    state: str | None, seen_at: dt.datetime | None, snapshot_at: dt.datetime | None
) -> dt.datetime | None:
    """When an antenna last read the copy: the read that placed it or, while it stands
    there, a later snapshot of its antenna; for a copy taken off, the last read before it
    went (its position's time). None: never read."""
    if state is None or seen_at is None:
        return None
    if state == State.ON_SHELF and snapshot_at is not None and snapshot_at > seen_at:
        return snapshot_at
    return seen_at


def missing(read: dt.datetime | None, at: dt.datetime, after: dt.timedelta = MISSING_AFTER) -> bool:
    """The one rule of a missing copy, for the shelves page's count and the download alike
    (`reports.not_read_since` is it in SQL): of the copies that should stand on a smart
    shelf, one not read since `at - after`; a read exactly then still counts."""
    return read is None or read < at - after


def local_iso(value: dt.datetime, tz: str) -> str:
    """A time in a download as the screens show it: the library's time zone, to the minute,
    with its offset (ISO 8601, such as 2026-12-07T09:30+08:00)."""
    return value.astimezone(ZoneInfo(tz)).isoformat(timespec="minutes")
