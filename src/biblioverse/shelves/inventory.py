"""Inventory: a stocktake of a library, a floor, a zone or a run of shelves.

Starting one fixes its shelves. While it is open, every read of a smart shelf among them
(snapshots and copies put back) and every read of a handheld reader counts; its progress is
counted on demand. Closing it keeps the counts and, if asked, marks the missing copies
missing (each change audited, as at the console).

Expected: copies whose call number belongs on one of the shelves, of the library, available
or already missing (a stocktake is how a missing copy is found again). Found: expected and
read. Misplaced: found on a shelf other than the one it belongs on. Missing: expected, not
read. Unexpected: read, but not expected here (it belongs outside the scope, is on loan, is
another library's), and tags that are no copy of ours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.db import upsert_insert
from biblioverse.devices.service import chunks
from biblioverse.errors import FieldError, PermissionDenied, ValidationFailed
from biblioverse.i18n import N_
from biblioverse.shelves.errors import InventoryClosed, InventoryNotFound
from biblioverse.shelves.models import Inventory, InventoryRead, InventoryUnknown
from biblioverse.shelves.reports import Record, expected_on, misplaced_on
from biblioverse.shelves.rules import Kind, Report, Scope, misplaced
from biblioverse.shelves.service import READ_OBSERVERS, AntennaPlace, TagResolver

Item = catalog.Item
Shelf = libraries.Shelf
LOOKED_FOR = ("available", "missing")  # on the shelf, and missing copies an inventory may find
MAX_READS = 5000  # per handheld message


@dataclass
class ScopeInput:
    scope: str
    floor: int | None = None
    location_id: int | None = None
    first_shelf: str | None = None
    last_shelf: str | None = None


def _shelves_in(
    session: Session, unit_id: int, data: ScopeInput
) -> tuple[Scope, list[libraries.Shelf]]:
    try:
        scope = Scope(data.scope)
    except ValueError:
        raise ValidationFailed(
            [FieldError("scope", "invalid", N_("Library, floor, zone or shelves."))]
        ) from None
    shelves = libraries.shelves_of(session, unit_id)
    if scope is Scope.FLOOR:
        if data.floor is None:
            raise ValidationFailed([FieldError("floor", "required", N_("The floor to count."))])
        floors = {loc.id: loc.floor for loc in libraries.locations_of(session, unit_id)}
        shelves = [s for s in shelves if floors.get(s.location_id) == data.floor]
    elif scope is Scope.ZONE:
        loc = session.get(libraries.Location, data.location_id) if data.location_id else None
        if loc is None or loc.org_unit_id != unit_id:
            raise ValidationFailed(
                [FieldError("location_id", "invalid", N_("Not a location of this library."))]
            )
        shelves = [s for s in shelves if s.location_id == loc.id]
    elif scope is Scope.SHELVES:
        codes = {s.code for s in shelves}
        problems = [
            FieldError(name, "invalid", N_("Not the code of a shelf of this library."))
            for name, code in (("first_shelf", data.first_shelf), ("last_shelf", data.last_shelf))
            if code not in codes
        ]
        if problems:
            raise ValidationFailed(problems)
        assert data.first_shelf is not None and data.last_shelf is not None
        low, high = sorted((data.first_shelf, data.last_shelf))
        shelves = [s for s in shelves if low <= s.code <= high]
    if not shelves:
        raise ValidationFailed([FieldError("scope", "empty", N_("No shelves in this scope."))])
    return scope, shelves


def start(
    session: Session, actor: Actor, unit_id: int, data: ScopeInput, *, at: dt.datetime
) -> Inventory:
    unit = libraries.get_unit(session, unit_id)
    if not actor.can(Permission.CATALOG_MANAGE, unit.path):
        raise PermissionDenied("you may not take stock of this library")
    scope, shelves = _shelves_in(session, unit_id, data)
    inv = Inventory(
        org_unit_id=unit_id,
        scope=scope.value,
        floor=data.floor if scope is Scope.FLOOR else None,
        location_id=data.location_id if scope is Scope.ZONE else None,
        first_shelf=data.first_shelf if scope is Scope.SHELVES else None,
        last_shelf=data.last_shelf if scope is Scope.SHELVES else None,
        shelf_ids=[s.id for s in shelves],
        state="open",
        started_at=at,
        started_by=actor.id,
        summary={},
        marked_missing=0,
    )
    session.add(inv)
    session.flush()
    log_action(
        session,
        actor,
        "inventory.start",
        entity="inventory",
        entity_id=inv.id,
        org_unit_id=unit_id,
        at=at,
        details={"scope": scope.value, "shelves": len(shelves)},
    )
    return inv


def get(session: Session, actor: Actor, inventory_id: int) -> Inventory:
    inv = session.get(Inventory, inventory_id)
    if inv is None or not actor.can(
        Permission.CATALOG_MANAGE, libraries.get_unit(session, inv.org_unit_id).path
    ):
        raise InventoryNotFound(inventory_id)
    return inv


def of_library(session: Session, actor: Actor, unit_id: int) -> list[Inventory]:
    unit = libraries.get_unit(session, unit_id)
    if not actor.can(Permission.CATALOG_MANAGE, unit.path):
        raise PermissionDenied("you may not see this library's inventories")
    return list(
        session.scalars(
            select(Inventory)
            .where(Inventory.org_unit_id == unit_id)
            .order_by(Inventory.started_at.desc(), Inventory.id.desc())
            .limit(50)
        )
    )


# --- reads -------------------------------------------------------------------------------------


def record_reads(
    session: Session,
    inventory_id: int,
    reads: Iterable[tuple[int, int | None, dt.datetime]],
    unknown: Iterable[tuple[str, int | None, dt.datetime]],
    *,
    source: str,
) -> int:
    """(copy, shelf, when) read for an inventory; the newest read of each copy is kept."""
    newest: dict[int, tuple[int | None, dt.datetime]] = {}
    for item_id, shelf_id, at in reads:
        if item_id not in newest or at >= newest[item_id][1]:
            newest[item_id] = (shelf_id, at)
    insert = upsert_insert(session)
    if newest:
        stmt = insert(InventoryRead)
        stmt = stmt.on_conflict_do_update(
            index_elements=[InventoryRead.inventory_id, InventoryRead.item_id],
            set_={"shelf_id": stmt.excluded.shelf_id, "at": stmt.excluded.at},
            where=InventoryRead.at <= stmt.excluded.at,
        )
        rows = [
            {"inventory_id": inventory_id, "item_id": i, "shelf_id": s, "at": a, "source": source}
            for i, (s, a) in sorted(newest.items())
        ]
        for start_at in range(0, len(rows), 2000):
            session.execute(stmt, rows[start_at : start_at + 2000])
    strangers = {tag: (shelf, at) for tag, shelf, at in unknown}
    if strangers:
        stmt = insert(InventoryUnknown).on_conflict_do_nothing()
        session.execute(
            stmt,
            [
                {"inventory_id": inventory_id, "tag": t, "shelf_id": s, "at": a}
                for t, (s, a) in sorted(strangers.items())
            ],
        )
    return len(newest)


def open_scopes(session: Session) -> dict[int, frozenset[int]]:
    """Open inventories and their shelves (what shelf ingestion records reads for)."""
    return {
        inv_id: frozenset(shelf_ids)
        for inv_id, shelf_ids in session.execute(
            select(Inventory.id, Inventory.shelf_ids).where(Inventory.state == "open")
        )
    }


def handheld(
    session: Session,
    actor: Actor,
    inventory_id: int,
    *,
    shelf_code: str | None,
    tags: Sequence[str],
    barcodes: Sequence[str],
    at: dt.datetime,
) -> tuple[int, int]:
    """What a handheld reader read (at a shelf, if it says which): (copies, unknown)."""
    inv = get(session, actor, inventory_id)
    if inv.state != "open":
        raise InventoryClosed(inventory_id)
    if len(tags) + len(barcodes) > MAX_READS:
        raise ValidationFailed(
            [FieldError("tags", "invalid", N_("at most %(n)d at once"), {"n": MAX_READS})]
        )
    shelf_id = None
    if shelf_code:
        shelf_id = session.scalar(
            select(Shelf.id).where(Shelf.org_unit_id == inv.org_unit_id, Shelf.code == shelf_code)
        )
        if shelf_id is None:
            raise ValidationFailed(
                [FieldError("shelf", "invalid", N_("the code of a shelf of this library"))]
            )
    tags = [t.upper() for t in tags]
    by_tag = TagResolver(ttl=0).resolve(session, tags)
    by_barcode: dict[str, int] = {}
    for chunk in chunks(list(dict.fromkeys(barcodes))):
        for barcode, item_id in session.execute(
            select(Item.barcode, Item.id).where(Item.barcode.in_(chunk))
        ):
            by_barcode[barcode] = item_id
    copies = [(i, shelf_id, at) for i in by_tag.values() if i is not None]
    copies += [(by_barcode[b], shelf_id, at) for b in barcodes if b in by_barcode]
    unknown = [(t, shelf_id, at) for t, i in by_tag.items() if i is None]
    unknown += [(f"barcode:{b}"[:64], shelf_id, at) for b in barcodes if b not in by_barcode]
    n = record_reads(session, inventory_id, copies, unknown, source="handheld")
    return n, len({u[0] for u in unknown})


# --- progress and report ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShelfProgress:
    shelf_id: int
    code: str
    expected: int
    found: int
    misplaced_here: int  # copies of other shelves read here


@dataclass(frozen=True)
class Progress:
    expected: int
    found: int
    misplaced: int
    missing: int
    unexpected: int
    shelves: list[ShelfProgress]

    @property
    def percent(self) -> float:
        return round(100.0 * self.found / self.expected, 1) if self.expected else 100.0


def _scope_shelves(session: Session, inv: Inventory) -> list[Any]:
    ids = list(inv.shelf_ids)
    rows: list[Any] = []
    for chunk in chunks(ids):
        rows += session.execute(
            select(Shelf.id, Shelf.code, Shelf.first_key, Shelf.end_key).where(Shelf.id.in_(chunk))
        ).all()
    return sorted(rows, key=lambda r: r.code)


def progress(session: Session, inv: Inventory) -> Progress:
    """Counts so far: one query per shelf of the scope, and two more (reads per shelf, tags
    that are no copy of ours)."""
    R = InventoryRead
    read_on: dict[int | None, int] = {
        shelf: n
        for shelf, n in session.execute(
            select(R.shelf_id, func.count()).where(R.inventory_id == inv.id).group_by(R.shelf_id)
        )
    }
    shelves = []
    expected = found = correct = 0
    for shelf_id, code, first, end in _scope_shelves(session, inv):
        e, f, c, exact = session.execute(
            select(
                func.count(),
                func.count(R.item_id),
                func.count(R.item_id).filter(~misplaced_on(R.shelf_id, shelf_id)),
                func.count(R.item_id).filter(R.shelf_id == shelf_id),
            )
            .select_from(Item)
            .outerjoin(R, and_(R.item_id == Item.id, R.inventory_id == inv.id))
            .where(*expected_on(inv.org_unit_id, first, end, LOOKED_FOR))
        ).one()
        here = read_on.get(shelf_id, 0)
        shelves.append(ShelfProgress(shelf_id, code, e, f, here - exact))
        expected, found, correct = expected + e, found + f, correct + c
    reads = sum(read_on.values())
    strangers = (
        session.scalar(
            select(func.count())
            .select_from(InventoryUnknown)
            .where(InventoryUnknown.inventory_id == inv.id)
        )
        or 0
    )
    return Progress(
        expected=expected,
        found=found,
        misplaced=found - correct,
        missing=expected - found,
        unexpected=reads - found + strangers,
        shelves=shelves,
    )


@dataclass(frozen=True)
class Line:
    kind: str  # found, missing, misplaced, unexpected
    barcode: str
    title: str
    call_number: str | None
    status: str | None
    belongs: str | None  # the shelf of the scope it belongs on
    read_on: str | None  # where it was read
    read_at: dt.datetime | None


def report(session: Session, inv: Inventory, *, limit: int = 100_000) -> list[Line]:
    """Every line of the stocktake: found (in place), misplaced, missing, unexpected."""
    R = InventoryRead
    code_of = {s.id: s.code for s in libraries.shelves_of(session, inv.org_unit_id)}
    out: list[Line] = []
    expected_ids: set[int] = set()
    for shelf_id, code, first, end in _scope_shelves(session, inv):
        rows = session.execute(
            select(
                Item.id, Item.barcode, Record.title, Item.call_number, Item.status, R.shelf_id, R.at
            )
            .join(Record, Record.id == Item.record_id)
            .outerjoin(R, and_(R.item_id == Item.id, R.inventory_id == inv.id))
            .where(*expected_on(inv.org_unit_id, first, end, LOOKED_FOR))
            .order_by(Item.shelf_key)
        )
        for item_id, barcode, title, call, status, read_shelf, read_at in rows:
            expected_ids.add(item_id)
            if read_at is None:
                kind = "missing"
            elif misplaced(read_shelf, shelf_id):
                kind = "misplaced"
            else:
                kind = "found"
            read_on = code_of.get(read_shelf) if read_shelf else None
            out.append(Line(kind, barcode, title, call, status, code, read_on, read_at))
    rows = session.execute(
        select(Item.id, Item.barcode, Record.title, Item.call_number, Item.status, R.shelf_id, R.at)
        .join(R, R.item_id == Item.id)
        .join(Record, Record.id == Item.record_id)
        .where(R.inventory_id == inv.id)
        .order_by(R.at)
    )
    for item_id, barcode, title, call, status, read_shelf, read_at in rows:
        if item_id not in expected_ids:
            read_on = code_of.get(read_shelf) if read_shelf else None
            out.append(Line("unexpected", barcode, title, call, status, None, read_on, read_at))
    for u in session.scalars(
        select(InventoryUnknown).where(InventoryUnknown.inventory_id == inv.id)
    ):
        read_on = code_of.get(u.shelf_id) if u.shelf_id else None
        out.append(Line("unexpected", u.tag, "", None, None, None, read_on, u.at))
    return out[:limit]


def close(
    session: Session, actor: Actor, inventory_id: int, *, mark_missing: bool, at: dt.datetime
) -> Inventory:
    """Closes the stocktake with its counts; with `mark_missing`, each missing copy that was
    available is marked missing, and each copy marked missing that was read is available
    again (audited one by one, as at the console)."""
    inv = get(session, actor, inventory_id)
    if inv.state != "open":
        raise InventoryClosed(inventory_id)
    p = progress(session, inv)
    marked = 0
    if mark_missing:
        for line in report(session, inv):
            if line.kind == "missing" and line.status == "available":
                change = "missing"
                marked += 1
            elif line.kind in ("found", "misplaced") and line.status == "missing":
                change = "available"  # found again
            else:
                continue
            item = catalog.find_item(session, barcode=line.barcode)
            catalog.update_item(session, actor, item.id, catalog.ItemChange(status=change), at=at)
    inv.state = "closed"
    inv.closed_at = at
    inv.closed_by = actor.id
    inv.marked_missing = marked
    inv.summary = {
        "expected": p.expected,
        "found": p.found,
        "misplaced": p.misplaced,
        "missing": p.missing,
        "unexpected": p.unexpected,
    }
    log_action(
        session,
        actor,
        "inventory.close",
        entity="inventory",
        entity_id=inv.id,
        org_unit_id=inv.org_unit_id,
        at=at,
        details={**inv.summary, "marked_missing": marked},
    )
    return inv


def count_shelf_reads(
    session: Session, usable: Sequence[tuple[Report, AntennaPlace]], copies: dict[str, int | None]
) -> None:
    """What the shelves of an open inventory read counts for it (snapshots, copies put back)."""
    scopes = open_scopes(session)
    for inventory_id, shelves in scopes.items():
        reads, unknown = [], []
        for r, place in usable:
            if place.shelf_id not in shelves:
                continue
            for tag in r.tags if r.kind is Kind.SNAPSHOT else r.added:
                c = copies.get(tag)
                if c is None:
                    unknown.append((tag, place.shelf_id, r.ts))
                else:
                    reads.append((c, place.shelf_id, r.ts))
        if reads or unknown:
            record_reads(session, inventory_id, reads, unknown, source="shelf")


READ_OBSERVERS.append(count_shelf_reads)
