"""Collection checks from the shelves' reads: mis-shelved copies (and where they belong),
missing copies, copies on loan standing on a shelf, unknown tags, and use in the library.

The heavy comparisons run in the database: a copy's shelf-order key against the range of the
shelf it stands on (or of every shelf of its library, for copies that should be on one),
with the range's bounds as plain string comparisons the indexes serve. Python only dresses
the rows that are reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries
from biblioverse.shelves.models import Antenna, ItemPosition, ShelfUse, UnknownTag
from biblioverse.shelves.rules import MISSING_AFTER, last_read
from biblioverse.shelves.rules import misplaced as is_misplaced

Item = catalog.Item
Shelf = libraries.Shelf
Record = catalog.Record
SHOULD_STAND = ("available",)  # statuses of copies that should stand on their shelf


def _fits(key: Any) -> ColumnElement[bool]:
    """The copy's key lies in the shelf's range (its last call number and all that extends it):
    this shelf is the one it belongs on."""
    return and_(key >= Shelf.first_key, key < Shelf.end_key)


def misplaced_on(read_on: Any, belongs_on: Any) -> ColumnElement[bool]:
    """`rules.misplaced` in SQL, for counting in the database: ``read_on`` a shelf column
    (None when no shelf was named), ``belongs_on`` the shelf its call number belongs on."""
    return and_(read_on.is_not(None), read_on != belongs_on)


@dataclass(frozen=True)
class Row:
    item_id: int
    barcode: str
    title: str
    call_number: str | None
    shelf: str | None  # where it is (or was last read)
    level: int | None
    seen_at: dt.datetime | None
    belongs: str | None = None  # the shelf its call number belongs on


def _last_seen(
    pos_seen: dt.datetime | None, snap: dt.datetime | None, on: bool
) -> dt.datetime | None:
    if on and snap is not None and (pos_seen is None or snap > pos_seen):
        return snap
    return pos_seen


def _on_shelves(
    session: Session, unit_id: int, *where: ColumnElement[bool], limit: int
) -> list[tuple[Row, str | None]]:
    """Copies standing on the library's shelves that meet `where`, with their keys."""
    P = ItemPosition
    rows = session.execute(
        select(
            Item.id,
            Item.barcode,
            Record.title,
            Item.call_number,
            Item.shelf_key,
            Shelf.code,
            P.level,
            P.seen_at,
            Antenna.snapshot_at,
        )
        .join(P, P.item_id == Item.id)
        .join(Shelf, Shelf.id == P.shelf_id)
        .join(Antenna, Antenna.id == P.antenna_id)
        .join(Record, Record.id == Item.record_id)
        .where(Shelf.org_unit_id == unit_id, P.state == "on_shelf", *where)
        .order_by(Shelf.code, P.level, Item.shelf_key)
        .limit(limit)
    )
    return [
        (Row(i, b, t, c, code, level, _last_seen(seen, snap, True)), key)
        for i, b, t, c, key, code, level, seen, snap in rows
    ]


def misplaced(session: Session, unit_id: int, *, limit: int = 500) -> list[Row]:
    """Copies misplaced (`rules.misplaced`), whatever their status, with the shelf they
    belong on: standing on a shelf that is not the one whose range holds their call number,
    which the database tells by the range of the shelf they stand on."""
    here = libraries.shelves_of(session, unit_id)
    out = []
    for row, key in _on_shelves(
        session, unit_id, Item.shelf_key.is_not(None), ~_fits(Item.shelf_key), limit=limit
    ):
        home = libraries.shelf_for(here, key)
        out.append(replace(row, belongs=home.code if home else None))
    return out


def _smart_shelves(session: Session, unit_ids: Sequence[int]) -> list[Any]:
    """(id, library, code, first key, end key) of the shelves that have antennas."""
    return list(
        session.execute(
            select(Shelf.id, Shelf.org_unit_id, Shelf.code, Shelf.first_key, Shelf.end_key)
            .where(Shelf.org_unit_id.in_(unit_ids), Shelf.id.in_(select(Antenna.shelf_id)))
            .order_by(Shelf.code)
        )
    )


def expected_on(
    unit_id: int, first: str, end: str, statuses: Sequence[str] = SHOULD_STAND
) -> list[ColumnElement[bool]]:
    """Copies that should stand on the shelf from `first` to `end`. One index range over the
    copies' keys per shelf: every engine plans that well, where a range join of copies to
    shelves tempts SQLite into copies x shelves. The other conditions are written so that no
    index but the key's looks useful to the planner."""
    return [
        Item.shelf_key >= first,
        Item.shelf_key < end,
        Item.org_unit_id + 0 == unit_id,
        Item.at_unit_id.is_(None),
        Item.status.concat("").in_(statuses),
    ]


def not_read_since(since: dt.datetime) -> ColumnElement[bool]:
    """`rules.missing` in SQL, over a copy outer-joined to its position and the position's
    antenna: no position, or the last read (`rules.last_read`) before `since`."""
    P = ItemPosition
    return or_(
        P.item_id.is_(None),
        and_(
            P.seen_at < since,
            or_(
                P.state != "on_shelf",
                Antenna.snapshot_at.is_(None),
                Antenna.snapshot_at < since,
            ),
        ),
    )


def missing(
    session: Session,
    unit_id: int,
    *,
    at: dt.datetime,
    after: dt.timedelta = MISSING_AFTER,
    limit: int | None = 500,
) -> list[Row]:
    """Copies that should stand on a smart shelf (available, with a call number in the range
    of a shelf that has antennas) and that no antenna has read for `after`: the rows the
    shelves page counts (`reconcile(...).missing`). `limit` None: all of them."""
    P = ItemPosition
    since = at - after
    out: list[Row] = []
    for _, unit, code, first, end in _smart_shelves(session, [unit_id]):
        rows = session.execute(
            select(
                Item.id,
                Item.barcode,
                Record.title,
                Item.call_number,
                P.level,
                P.seen_at,
                P.state,
                Antenna.snapshot_at,
            )
            .join(Record, Record.id == Item.record_id)
            .outerjoin(P, P.item_id == Item.id)
            .outerjoin(Antenna, Antenna.id == P.antenna_id)
            .where(*expected_on(unit, first, end), not_read_since(since))
            .order_by(Item.shelf_key, Item.id)
            .limit(None if limit is None else limit - len(out))
        )
        for item_id, barcode, title, call, level, seen, state, snap in rows:
            last = last_read(state, seen, snap)
            out.append(Row(item_id, barcode, title, call, None, level, last, code))
        if limit is not None and len(out) >= limit:
            break
    return out


def lent_on_shelf(session: Session, unit_id: int, *, limit: int = 500) -> list[Row]:
    """Copies on loan that a shelf reads: returned to the shelf, never checked in."""
    return [row for row, _ in _on_shelves(session, unit_id, Item.status == "on_loan", limit=limit)]


@dataclass(frozen=True)
class Unknown:
    tag: str
    shelf: str
    level: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    reads: int


def unknown_tags(session: Session, unit_id: int, *, limit: int = 500) -> list[Unknown]:
    rows = session.execute(
        select(UnknownTag, Shelf.code, Antenna.level)
        .join(Antenna, Antenna.id == UnknownTag.antenna_id)
        .join(Shelf, Shelf.id == Antenna.shelf_id)
        .where(Shelf.org_unit_id == unit_id)
        .order_by(UnknownTag.last_seen.desc())
        .limit(limit)
    )
    return [
        Unknown(u.tag, code, level, u.first_seen, u.last_seen, u.reads) for u, code, level in rows
    ]


@dataclass(frozen=True)
class Use:
    item_id: int
    barcode: str
    title: str
    shelf: str
    times: int
    last: dt.datetime


def in_library_use(
    session: Session, unit_id: int, *, since: dt.datetime, limit: int = 500
) -> list[Use]:
    """Copies taken from a shelf and put back without a loan, most used first."""
    times = func.count(ShelfUse.id)
    rows = session.execute(
        select(Item.id, Item.barcode, Record.title, Shelf.code, times, func.max(ShelfUse.back_at))
        .join(Item, Item.id == ShelfUse.item_id)
        .join(Record, Record.id == Item.record_id)
        .join(Shelf, Shelf.id == ShelfUse.shelf_id)
        .where(Shelf.org_unit_id == unit_id, ShelfUse.back_at >= since)
        .group_by(Item.id, Item.barcode, Record.title, Shelf.code)
        .order_by(times.desc(), Item.barcode)
        .limit(limit)
    )
    return [Use(*row) for row in rows]


# --- the whole collection at once -----------------------------------------------------------


@dataclass(frozen=True)
class Reconciliation:
    """Every copy of a library against the shelves: the counts of an inventory."""

    expected: int  # copies that should stand on a smart shelf
    found: int  # of those, read on a shelf
    correct: int  # read on the shelf their call number belongs on
    misplaced: int  # read on another shelf
    missing: int  # expected, not read since the cut-off (`rules.missing`, as `missing()`)
    unexpected: int  # read on a shelf but not expected there (on loan, in transit, withdrawn ...)


def reconcile(
    session: Session,
    unit_ids: Sequence[int],
    *,
    at: dt.datetime,
    after: dt.timedelta = MISSING_AFTER,
) -> Reconciliation:
    """Counts for a branch (or several): one query per smart shelf, and one more. Looks at
    the copies that should stand on a smart shelf (`SHOULD_STAND`); misplaced is
    `rules.misplaced` of the ones seen lately."""
    P = ItemPosition
    since = at - after
    seen_recently = or_(P.seen_at >= since, Antenna.snapshot_at >= since)
    expected = found = correct = missing_ = 0
    for shelf_id, unit_id, _, first, end in _smart_shelves(session, unit_ids):
        e, f, c, m = session.execute(
            select(
                func.count(),
                func.count(P.item_id).filter(and_(P.state == "on_shelf", seen_recently)),
                func.count(P.item_id).filter(
                    and_(P.state == "on_shelf", seen_recently, ~misplaced_on(P.shelf_id, shelf_id))
                ),
                # counted, not found - expected: a copy read lately, then taken off the
                # shelf (read in the library) is neither found on a shelf nor missing
                func.count().filter(not_read_since(since)),
            )
            .select_from(Item)
            .outerjoin(P, P.item_id == Item.id)
            .outerjoin(Antenna, Antenna.id == P.antenna_id)
            .where(*expected_on(unit_id, first, end))
        ).one()
        expected, found, correct, missing_ = expected + e, found + f, correct + c, missing_ + m
    unexpected = session.scalar(
        select(func.count())
        .select_from(P)
        .join(Item, Item.id == P.item_id)
        .join(Shelf, Shelf.id == P.shelf_id)
        .join(Antenna, Antenna.id == P.antenna_id)
        .where(
            Shelf.org_unit_id.in_(unit_ids),
            P.state == "on_shelf",
            seen_recently,
            Item.status.not_in(SHOULD_STAND),
        )
    )
    return Reconciliation(
        expected=expected,
        found=found,
        correct=correct,
        misplaced=found - correct,
        missing=missing_,
        unexpected=unexpected or 0,
    )


@dataclass(frozen=True)
class Move:
    barcode: str
    title: str
    shelf: str
    level: int
    on_shelf: bool
    at: dt.datetime
    belongs: str | None  # None: it stands where it belongs


def recent_moves(session: Session, unit_id: int, *, limit: int = 12) -> list[Move]:
    """The copies most recently put on or taken from a shelf of the library."""
    P = ItemPosition
    here = libraries.shelves_of(session, unit_id)
    rows = session.execute(
        select(
            Item.barcode,
            Record.title,
            Item.shelf_key,
            Shelf.id,
            Shelf.code,
            P.level,
            P.state,
            P.seen_at,
        )
        .join(P, P.item_id == Item.id)
        .join(Shelf, Shelf.id == P.shelf_id)
        .join(Record, Record.id == Item.record_id)
        .where(Shelf.org_unit_id == unit_id)
        .order_by(P.seen_at.desc(), P.item_id.desc())
        .limit(limit)
    )
    out = []
    for barcode, title, key, shelf_id, code, level, state, seen in rows:
        home = libraries.shelf_for(here, key)
        belongs = home.code if home is not None and is_misplaced(shelf_id, home.id) else None
        out.append(Move(barcode, title, code, level, state == "on_shelf", seen, belongs))
    return out


@dataclass(frozen=True)
class ShelfCount:
    shelf_id: int
    code: str
    location_id: int
    first_call: str
    last_call: str
    smart: bool
    on_shelf: int
    misplaced: int


def shelf_counts(session: Session, unit_id: int) -> list[ShelfCount]:
    """Each shelf of the library with the copies standing on it, and how many of those
    belong elsewhere."""
    P = ItemPosition
    smart = set(session.scalars(select(Antenna.shelf_id).distinct()))
    counts: dict[int, int] = {
        shelf: n
        for shelf, n in session.execute(
            select(P.shelf_id, func.count())
            .join(Shelf, Shelf.id == P.shelf_id)
            .where(Shelf.org_unit_id == unit_id, P.state == "on_shelf")
            .group_by(P.shelf_id)
        )
    }
    wrong: dict[int, int] = {
        shelf: n
        for shelf, n in session.execute(
            select(P.shelf_id, func.count())
            .join(Shelf, Shelf.id == P.shelf_id)
            .join(Item, Item.id == P.item_id)
            .where(
                Shelf.org_unit_id == unit_id,
                P.state == "on_shelf",
                Item.shelf_key.is_not(None),
                ~_fits(Item.shelf_key),
            )
            .group_by(P.shelf_id)
        )
    }
    return [
        ShelfCount(
            s.id,
            s.code,
            s.location_id,
            s.first_call,
            s.last_call,
            s.id in smart,
            counts.get(s.id, 0),
            wrong.get(s.id, 0),
        )
        for s in libraries.shelves_of(session, unit_id)
    ]
