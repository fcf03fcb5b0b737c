"""Use cases of smart shelves: applying readers' reports to copies' positions, the device
health counters, gates, and "where is this book".

One batch of reports is one transaction: load the positions the batch touches (a few
queries, whatever the number of reads), let the rules move copies on that board, write back
only what changed. A snapshot that finds every copy where it was writes one row (the
antenna's snapshot time), not one per copy.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from biblioverse import catalog, events, libraries
from biblioverse.access import Actor, Permission
from biblioverse.accounts import DeviceKey
from biblioverse.audit import log_action
from biblioverse.db import upsert_insert
from biblioverse.devices.rules import ErrorKind
from biblioverse.devices.service import Health, chunks, save_health
from biblioverse.errors import DuplicateValue, FieldError, PermissionDenied, ValidationFailed
from biblioverse.i18n import N_
from biblioverse.shelves.models import Antenna, GateEvent, ItemPosition, ShelfUse, UnknownTag
from biblioverse.shelves.rules import Board, Kind, Position, Report, State
from biblioverse.shelves.tagdata import barcode_of

SHELF_KINDS = ("shelf", "pad")
# Who else counts what a batch read, in its transaction: inventories register here, so that
# applying reads does not depend on them (shelves.inventory).
ReadObserver = Callable[
    [Session, "Sequence[tuple[Report, AntennaPlace]]", dict[str, int | None]], None
]
READ_OBSERVERS: list[ReadObserver] = []  # readers that report tags on antennas
TAG_CACHE_SECONDS = 30.0


# --- devices and antennas ------------------------------------------------------------


@dataclass(frozen=True)
class AntennaPlace:
    id: int
    shelf_id: int
    level: int
    side: str


@dataclass
class AntennaMap:
    """(device, antenna number) to the place it covers, for the devices allowed to report."""

    places: dict[tuple[int, int], AntennaPlace] = field(default_factory=dict)
    devices: dict[int, str] = field(default_factory=dict)  # live device id -> kind
    loaded_at: float = 0.0

    @classmethod
    def load(cls, session: Session) -> AntennaMap:
        out = cls(loaded_at=time.monotonic())
        for device_id, kind in session.execute(
            select(DeviceKey.id, DeviceKey.kind).where(DeviceKey.revoked_at.is_(None))
        ):
            out.devices[device_id] = kind
        for a in session.scalars(select(Antenna)):
            out.places[(a.device_id, a.antenna)] = AntennaPlace(a.id, a.shelf_id, a.level, a.side)
        return out


# --- tags to copies ------------------------------------------------------------------


@dataclass
class TagResolver:
    """Tag identifier to copy: by the tag the copy carries, else by the barcode a GIAI EPC
    holds. Remembered for a short while, since a flood of reads repeats the same tags."""

    ttl: float = TAG_CACHE_SECONDS
    _known: dict[str, int | None] = field(default_factory=dict)
    _since: float = field(default_factory=time.monotonic)

    def resolve(self, session: Session, tags: Iterable[str]) -> dict[str, int | None]:
        if time.monotonic() - self._since > self.ttl:
            self._known.clear()
            self._since = time.monotonic()
        wanted = [t for t in dict.fromkeys(tags) if t not in self._known]
        found: dict[str, int | None] = {}
        Item = catalog.Item
        for chunk in chunks(wanted):
            for item_id, tag in session.execute(
                select(Item.id, Item.rfid_tag).where(Item.rfid_tag.in_(chunk))
            ):
                if tag is not None:
                    found[tag] = item_id
        by_barcode = {}
        for tag in wanted:
            if tag not in found:
                barcode = barcode_of(tag)
                if barcode:
                    by_barcode[barcode] = tag
        for chunk in chunks(list(by_barcode)):
            for item_id, barcode in session.execute(
                select(Item.id, Item.barcode).where(Item.barcode.in_(chunk))
            ):
                found[by_barcode[barcode]] = item_id
        for tag in wanted:
            self._known[tag] = found.get(tag)
        return {t: self._known[t] for t in dict.fromkeys(tags)}


# --- health --------------------------------------------------------------------------


# --- applying reports ----------------------------------------------------------------


@dataclass
class Applied:
    reports: int = 0
    reads: int = 0
    moved: int = 0
    unknown_tags: int = 0
    uses: int = 0
    rejected: int = 0


def _load_board(
    session: Session,
    items: set[int],
    snapshot_antennas: set[int],
    antennas: set[int],
    lent: set[int],
) -> Board:
    board = Board(lent=lent)
    P = ItemPosition

    def keep(rows: Iterable[Any]) -> None:
        for item_id, antenna_id, state, seen_at, seen_seq, taken_at in rows:
            board.positions[item_id] = Position(
                antenna_id, State(state), seen_at, seen_seq, taken_at
            )
            if state == State.ON_SHELF:
                board.on_antenna.setdefault(antenna_id, set()).add(item_id)

    columns = (P.item_id, P.antenna_id, P.state, P.seen_at, P.seen_seq, P.taken_at)
    for chunk in chunks(sorted(items)):
        keep(session.execute(select(*columns).where(P.item_id.in_(chunk))))
    for chunk in chunks(sorted(snapshot_antennas)):
        keep(
            session.execute(
                select(*columns).where(P.antenna_id.in_(chunk), P.state == State.ON_SHELF.value)
            )
        )
    wanted = antennas | {p.antenna_id for p in board.positions.values()}
    for chunk in chunks(sorted(wanted)):
        for antenna_id, at, seq in session.execute(
            select(Antenna.id, Antenna.snapshot_at, Antenna.snapshot_seq).where(
                Antenna.id.in_(chunk)
            )
        ):
            if at is not None:
                board.snapshots[antenna_id] = (at, seq)
    return board


def apply_reports(
    session: Session,
    reports: Sequence[Report],
    *,
    at: dt.datetime,
    antennas: AntennaMap | None = None,
    resolver: TagResolver | None = None,
    health: dict[int, Health] | None = None,
) -> Applied:
    """Moves copies as the readers saw them, and adds what was learnt of each device to its
    health (with `health` already holding what parsing found wrong). Reports from unknown
    devices or antennas are counted and skipped."""
    antennas = antennas or AntennaMap.load(session)
    resolver = resolver or TagResolver()
    health = health if health is not None else {}
    result = Applied()
    usable: list[tuple[Report, AntennaPlace]] = []
    for r in reports:
        h = health.setdefault(r.device_id, Health())
        if r.device_id not in antennas.devices:
            result.rejected += 1  # no health row to count it on: the ingestor counts it
            continue
        h.messages += 1
        h.reads += r.reads
        h.last_seq = max(h.last_seq, r.seq)
        if h.last_message_at is None or r.ts > h.last_message_at:
            h.last_message_at = r.ts
        if r.skewed:
            h.error(ErrorKind.CLOCK_SKEW, "the reader's clock is ahead; our time was used", at)
        if r.kind is Kind.HEARTBEAT:
            h.heartbeat_at = max(h.heartbeat_at or r.ts, r.ts)
            continue
        assert r.antenna is not None
        place = antennas.places.get((r.device_id, r.antenna))
        if place is None:
            h.error(ErrorKind.UNKNOWN_ANTENNA, f"antenna {r.antenna} is on no shelf", at)
            result.rejected += 1
            continue
        usable.append((r, place))
        result.reports += 1
        result.reads += r.reads

    tags = [t for r, _ in usable for t in (*r.tags, *r.added, *r.removed)]
    copies = resolver.resolve(session, tags)
    items = {c for c in copies.values() if c is not None}
    lent: set[int] = set()  # read now, not cached: it changes with every loan
    for chunk in chunks(sorted(items)):
        lent.update(
            session.scalars(
                select(catalog.Item.id).where(
                    catalog.Item.id.in_(chunk), catalog.Item.status == "on_loan"
                )
            )
        )
    board = _load_board(
        session,
        items,
        {p.id for r, p in usable if r.kind is Kind.SNAPSHOT},
        {p.id for _, p in usable},
        lent,
    )
    unknown: dict[str, tuple[int, dt.datetime, int]] = {}

    def known(tag_list: Iterable[str], place: AntennaPlace, ts: dt.datetime) -> list[int]:
        out = []
        for tag in tag_list:
            c = copies.get(tag)
            if c is None:
                _, last, n = unknown.get(tag, (place.id, ts, 0))
                unknown[tag] = (place.id, max(last, ts), n + 1)
            else:
                out.append(c)
        return out

    for r, place in sorted(usable, key=lambda rp: (rp[0].order, rp[0].device_id)):
        if r.kind is Kind.SNAPSHOT:
            board.snapshot(place.id, known(r.tags, place, r.ts), r.order)
        else:
            for item_id in known(r.added, place, r.ts):
                board.place(item_id, place.id, r.order)
            for item_id in known(r.removed, place, r.ts):
                board.take(item_id, place.id, r.order)

    _write(session, board, antennas, unknown, at=at)
    for observe in READ_OBSERVERS:
        observe(session, usable, copies)
    save_health(session, health, antennas.devices)
    result.moved = board.moves
    result.unknown_tags = len(unknown)
    result.uses = len(board.uses)
    if board.moves or board.uses:
        events.record(
            session,
            "shelves.changed",
            {"moved": board.moves, "uses": len(board.uses)},
            at=at,
        )
    return result


def _write(
    session: Session,
    board: Board,
    antennas: AntennaMap,
    unknown: dict[str, tuple[int, dt.datetime, int]],
    *,
    at: dt.datetime,
) -> None:
    shelf_of = {p.id: p for p in antennas.places.values()}
    insert = upsert_insert(session)
    if board.changed:
        rows = []
        for item_id in sorted(board.changed):
            pos = board.positions[item_id]
            place = shelf_of[pos.antenna_id]
            rows.append(
                {
                    "item_id": item_id,
                    "antenna_id": pos.antenna_id,
                    "shelf_id": place.shelf_id,
                    "level": place.level,
                    "side": place.side,
                    "state": pos.state.value,
                    "seen_at": pos.ts,
                    "seen_seq": pos.seq,
                    "taken_at": pos.taken_at,
                }
            )
        stmt = insert(ItemPosition)
        stmt = stmt.on_conflict_do_update(
            index_elements=[ItemPosition.item_id],
            set_={
                c: stmt.excluded[c]
                for c in (
                    "antenna_id",
                    "shelf_id",
                    "level",
                    "side",
                    "state",
                    "seen_at",
                    "seen_seq",
                    "taken_at",
                )
            },
        )
        for start in range(0, len(rows), 2000):
            session.execute(stmt, rows[start : start + 2000])
    if board.snapshot_changed:
        session.execute(
            update(Antenna),
            [
                {
                    "id": a,
                    "snapshot_at": board.snapshots[a][0],
                    "snapshot_seq": board.snapshots[a][1],
                }
                for a in sorted(board.snapshot_changed)
            ],
        )
    if board.uses:
        session.add_all(
            ShelfUse(
                item_id=u.item_id,
                shelf_id=shelf_of[u.antenna_id].shelf_id,
                taken_at=u.taken_at,
                back_at=u.back_at,
            )
            for u in board.uses
        )
    if unknown:
        stmt = insert(UnknownTag)
        stmt = stmt.on_conflict_do_update(
            index_elements=[UnknownTag.tag],
            set_={
                "antenna_id": stmt.excluded.antenna_id,
                "last_seen": stmt.excluded.last_seen,
                "reads": UnknownTag.reads + stmt.excluded.reads,
            },
        )
        session.execute(
            stmt,
            [
                {"tag": t, "antenna_id": a, "first_seen": last, "last_seen": last, "reads": n}
                for t, (a, last, n) in sorted(unknown.items())
            ],
        )


# --- registering antennas --------------------------------------------------------------


def add_antenna(
    session: Session,
    actor: Actor | None,
    *,
    device_id: int,
    antenna: int,
    shelf_id: int,
    level: int,
    side: str = "A",
    at: dt.datetime,
) -> Antenna:
    """Maps one antenna of a shelf reader to a level and side of a shelf of the same library."""
    device = session.get(DeviceKey, device_id)
    shelf = session.get(libraries.Shelf, shelf_id)
    problems = []
    if device is None or device.revoked_at is not None:
        problems.append(FieldError("device_id", "invalid", N_("a registered device")))
    elif device.kind not in SHELF_KINDS:
        problems.append(FieldError("device_id", "invalid", N_("a shelf reader or an RFID pad")))
    if shelf is None:
        problems.append(FieldError("shelf_id", "invalid", N_("a shelf")))
    elif not 1 <= level <= shelf.levels:
        problems.append(
            FieldError(
                "level", "invalid", N_("1 to %(levels)d on this shelf"), {"levels": shelf.levels}
            )
        )
    if side not in ("A", "B") or (shelf is not None and side == "B" and shelf.sides == 1):
        problems.append(FieldError("side", "invalid", N_("A, or B on a two-sided shelf")))
    if not 0 <= antenna <= 255:
        problems.append(FieldError("antenna", "invalid", N_("0 to 255")))
    if device is not None and shelf is not None and device.org_unit_id != shelf.org_unit_id:
        problems.append(
            FieldError("shelf_id", "other_library", N_("a shelf of the device's library"))
        )
    if problems:
        raise ValidationFailed(problems)
    assert device is not None and shelf is not None
    unit = libraries.get_unit(session, shelf.org_unit_id)
    if actor is not None and not actor.can(Permission.DEVICES_MANAGE, unit.path):
        raise PermissionDenied("you may not manage devices of this library")
    taken = session.scalar(
        select(Antenna.id).where(Antenna.device_id == device_id, Antenna.antenna == antenna)
    )
    if taken is not None:
        raise DuplicateValue("antenna", "antenna", antenna)
    row = Antenna(device_id=device_id, antenna=antenna, shelf_id=shelf_id, level=level, side=side)
    session.add(row)
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "device.antenna",
            entity="device",
            entity_id=device_id,
            org_unit_id=unit.id,
            at=at,
            details={"antenna": antenna, "shelf": shelf.code, "level": level, "side": side},
        )
    return row


# --- gates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GateAnswer:
    tag: str
    allowed: bool
    reason: str  # on_loan, not_ours, not_checked_out
    item_id: int | None = None


def gate_check(
    session: Session, device: DeviceKey, tags: Sequence[str], *, at: dt.datetime
) -> list[GateAnswer]:
    """May these tags leave? A copy on loan may, a tag that is no copy of ours may (a
    reader's own book, another library's); anything else alarms, and the alarm is logged
    with the copy and published."""
    if device.kind != "gate":
        raise PermissionDenied("only a security gate asks this")
    copies = TagResolver(ttl=0).resolve(session, [t.upper() for t in tags])
    status: dict[int, str] = {}
    ids = [i for i in copies.values() if i is not None]
    for chunk in chunks(ids):
        for copy_id, item_status in session.execute(
            select(catalog.Item.id, catalog.Item.status).where(catalog.Item.id.in_(chunk))
        ):
            status[copy_id] = item_status
    answers = []
    for tag, item_id in copies.items():
        if item_id is None:
            answers.append(GateAnswer(tag, True, "not_ours"))
        elif status.get(item_id) == "on_loan":
            answers.append(GateAnswer(tag, True, "on_loan", item_id))
        else:
            answers.append(GateAnswer(tag, False, "not_checked_out", item_id))
            session.add(
                GateEvent(
                    device_id=device.id, at=at, tag=tag, item_id=item_id, reason="not_checked_out"
                )
            )
            # the building subscribes: an alarm the desk sees, acknowledges and resolves
            events.record(
                session,
                "gate.alarm",
                {"device_id": device.id, "tag": tag, "item_id": item_id, "at": at.isoformat()},
                at=at,
                urgent=True,
            )
    return answers


# --- where is this book ------------------------------------------------------------------


@dataclass(frozen=True)
class Whereabouts:
    source: str  # rfid, call_number, none
    shelf: libraries.Shelf | None
    level: int | None = None
    side: str | None = None
    seen_at: dt.datetime | None = None
    on_shelf: bool = True


def standing_on(session: Session, shelf_ids: Iterable[int]) -> dict[int, tuple[int, int, str]]:
    """The copies smart shelves read as standing on these shelves now: item id -> (shelf id,
    level, side)."""
    rows = session.execute(
        select(
            ItemPosition.item_id, ItemPosition.shelf_id, ItemPosition.level, ItemPosition.side
        ).where(
            ItemPosition.shelf_id.in_(list(shelf_ids)),
            ItemPosition.state == State.ON_SHELF.value,
        )
    )
    return {item: (shelf, level, side) for item, shelf, level, side in rows}


def where_is(session: Session, item: catalog.Item) -> Whereabouts:
    """Where a copy stands: where a shelf last read it, if it is there; else the shelf whose
    call-number range holds it, in its library."""
    pos = session.get(ItemPosition, item.id)
    if pos is not None and pos.state == State.ON_SHELF.value:
        antenna = session.get(Antenna, pos.antenna_id)
        seen = pos.seen_at
        if antenna is not None and antenna.snapshot_at is not None and antenna.snapshot_at > seen:
            seen = antenna.snapshot_at
        return Whereabouts(
            "rfid", session.get(libraries.Shelf, pos.shelf_id), pos.level, pos.side, seen
        )
    shelves = libraries.shelves_of(session, item.at_unit_id or item.org_unit_id)
    shelf = libraries.shelf_for(shelves, item.shelf_key)
    if shelf is not None:
        return Whereabouts(
            "call_number",
            shelf,
            seen_at=pos.seen_at if pos is not None else None,
            on_shelf=pos is None,
        )
    return Whereabouts("none", None, on_shelf=False)
