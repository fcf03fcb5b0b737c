"""Importing: MARC21 and MARCXML in one pass (parsing processes for a large file), copies
from CSV, and the reports of bad records, bad rows and warnings."""

from __future__ import annotations

import csv
import datetime as dt
import io
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from biblioverse import libraries
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.catalog import marcio, rules
from biblioverse.catalog.errors import CatalogFileInvalid
from biblioverse.catalog.indexing import search_doc
from biblioverse.catalog.models import Item, Record, RecordKey
from biblioverse.catalog.search import IndexStaging, SearchDoc
from biblioverse.catalog.service import (
    PRICE,
    RECORD_KEYS,
    RECORDS,
    NewItem,
    add_items,
    match_keys,
    record_columns,
)
from biblioverse.db import allocate_ids
from biblioverse.errors import PermissionDenied
from biblioverse.events import record as record_event
from biblioverse.i18n import N_

BATCH = 500


@dataclass
class BadRecord:
    position: int
    offset: int | None
    control_number: str | None
    reason: str  # English
    # A reason with values also comes as its template (marked with N_) and the values, so
    # that a page can translate it (as FieldError does).
    template: str | None = None
    params: dict[str, object] = field(default_factory=dict)


@dataclass
class CatalogImportReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    items_created: int = 0
    bad: list[BadRecord] = field(default_factory=list)
    warnings: list[BadRecord] = field(default_factory=list)
    file_error: str | None = None


@dataclass
class Parsed:
    """One record read and its fields extracted, or why not: what a parsing worker sends
    back (no pymarc objects, so it pickles small)."""

    position: int
    offset: int | None
    raw: bytes | None
    utf8: bool
    control_number: str | None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    extracted: rules.Extracted | None = None
    padding: bytes | None = None  # not a record: padding between or after records


def parse_read(read: marcio.ReadRecord) -> Parsed:
    parsed = Parsed(
        read.position,
        read.offset,
        read.raw,
        read.utf8,
        read.control_number,
        read.error,
        list(read.warnings),
    )
    if read.error or read.record is None:
        parsed.error = read.error or "unreadable"
        return parsed
    try:
        parsed.extracted = rules.extract(read.record)
    except rules.RecordUnusable as exc:
        parsed.error = str(exc)
    return parsed


def parse_piece(piece: marcio.Piece) -> Parsed:
    if piece.padding:
        return Parsed(piece.position, piece.offset, None, False, None, padding=piece.chunk)
    return parse_read(marcio.read_piece(piece))


def parse_pieces(pieces: list[marcio.Piece]) -> list[Parsed]:
    """Read and extract a batch of records: the work a parsing process does."""
    return [parse_piece(p) for p in pieces]


# Records per task sent to a parsing process, and the smallest file worth the processes.
PARSE_CHUNK = 500
PARALLEL_FROM = 5_000


def parse_iso2709(data: bytes, workers: int) -> Iterator[Parsed]:
    """Every record of an ISO 2709 file read and extracted, in file order. With ``workers``
    above 1, pymarc and the extraction (70% of an import's time) run in that many
    processes while the caller stores what they send back."""
    pieces = marcio.split_iso2709(data)
    if workers <= 1:
        for piece in pieces:
            yield parse_piece(piece)
        return
    # spawn, not fork: the caller may be a threaded server.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque[Future[list[Parsed]]] = deque()
        for chunk in _batched(pieces, PARSE_CHUNK):
            pending.append(pool.submit(parse_pieces, chunk))
            if len(pending) > 2 * workers:  # a bounded window: the file is not copied whole
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _batched(items: Iterable[marcio.Piece], n: int) -> Iterator[list[marcio.Piece]]:
    batch: list[marcio.Piece] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_workers(records_estimate: int) -> int:
    """Processes to parse with: one per core for a large file, none for a small one."""
    if records_estimate < PARALLEL_FROM:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass
class _Prepared:
    read: Parsed
    data: rules.Extracted
    keys: list[tuple[str, str]]  # stored, so later imports can find this record

    @property
    def matching(self) -> list[tuple[str, str]]:
        """The keys this record is matched on. An ISBN is shared by the volumes of a set
        and by reprints, so it only decides for a record that has no control number."""
        if self.data.control_number:
            return [k for k in self.keys if k[0] != "isbn"]
        return self.keys


def _write_batch(
    session: Session, batch: Sequence[_Prepared], report: CatalogImportReport, at: dt.datetime
) -> tuple[list[int], list[SearchDoc]]:
    """Insert new records and update matched ones; returns the ids touched and the search
    documents of the new records (all their copies are this batch's, so the index needs no
    database read for them)."""
    wanted: dict[str, set[str]] = {}
    for p in batch:
        for kind, value in p.matching:
            wanted.setdefault(kind, set()).add(value)
    found: dict[tuple[str, str], int] = {}
    for kind, values in wanted.items():
        # One kind at a time, so the (kind, value) index answers: a row-value IN list with
        # an ORDER BY had SQLite scan the whole table once per batch.
        rows = session.execute(
            select(RecordKey.value, RecordKey.record_id).where(
                RecordKey.kind == kind, RecordKey.value.in_(values)
            )
        )
        for value, record_id in rows:
            # Several records may carry one ISBN: the oldest is the one a match updates.
            key = (kind, value)
            found[key] = min(record_id, found.get(key, record_id))
    touched: list[int] = []
    # Where each prepared record went: ("id", record id) or ("new", index in new_rows).
    placed: list[tuple[str, int]] = []
    new_rows: list[dict[str, object]] = []
    new_keys: list[list[tuple[str, str]]] = []
    pending: dict[tuple[str, str], int] = {}  # key -> index in new_rows (same file, twice)
    for p in batch:
        existing = next((found[k] for k in p.matching if k in found), None)
        columns = record_columns(p.data, p.read.raw, p.read.utf8, at)
        if existing is not None:
            record = session.get(Record, existing)
            assert record is not None
            for column, new_value in columns.items():
                setattr(record, column, new_value)
            session.execute(delete(RecordKey).where(RecordKey.record_id == existing))
            session.add_all(RecordKey(record_id=existing, kind=k, value=v) for k, v in p.keys)
            for k in p.keys:
                found[k] = existing
            report.updated += 1
            touched.append(existing)
            placed.append(("id", existing))
            continue
        earlier = next((pending[k] for k in p.matching if k in pending), None)
        if earlier is not None:
            new_rows[earlier] = {**new_rows[earlier], **columns}
            new_keys[earlier] = list(dict.fromkeys(new_keys[earlier] + p.keys))
            report.updated += 1
            placed.append(("new", earlier))
            continue
        for k in p.matching:
            pending[k] = len(new_rows)
        placed.append(("new", len(new_rows)))
        new_rows.append({**columns, "created_at": at})
        new_keys.append(p.keys)
    ids: list[int] = []
    if new_rows:
        # Ids first, then one executemany: INSERT ... RETURNING went row by row on SQLite.
        ids = allocate_ids(session, RECORDS, len(new_rows))
        for rid, row in zip(ids, new_rows, strict=True):
            row["id"] = rid
        session.execute(insert(RECORDS), new_rows)
        key_rows = [
            {"record_id": rid, "kind": k, "value": v}
            for rid, keys in zip(ids, new_keys, strict=True)
            for k, v in keys
        ]
        if key_rows:
            session.execute(insert(RECORD_KEYS), key_rows)
        report.created += len(ids)
        touched += ids
    session.flush()
    copies = _holdings_to_items(
        session, batch, [v if k == "id" else ids[v] for k, v in placed], report, at
    )
    codes = {u.id: u.code for u in libraries.unit_names(session).values()} if copies else {}
    docs = [
        search_doc(row, copies.get(rid, {}), codes) for rid, row in zip(ids, new_rows, strict=True)
    ]
    return touched, docs


def _holdings_to_items(
    session: Session,
    batch: Sequence[_Prepared],
    record_ids: Sequence[int],
    report: CatalogImportReport,
    at: dt.datetime,
) -> dict[int, dict[tuple[int, str], int]]:
    """Copies described in the records' 852 and 949 fields become items; a barcode already
    on file is left as it is, so an import can be run again. Returns the copies made, per
    record: (library, item type) -> how many (all available)."""
    wanted = [
        (p, rid, h) for p, rid in zip(batch, record_ids, strict=True) for h in p.data.holdings
    ]
    made: dict[int, dict[tuple[int, str], int]] = {}
    if not wanted:
        return made
    units = {u.code: u.id for u in libraries.unit_names(session).values()}
    isils = select(libraries.OrgUnit.isil, libraries.OrgUnit.id).where(
        libraries.OrgUnit.isil.is_not(None)
    )
    units |= {str(isil): int(uid) for isil, uid in session.execute(isils)}
    barcodes = [h.barcode for _p, _r, h in wanted]
    taken = set(session.scalars(select(Item.barcode).where(Item.barcode.in_(barcodes))))
    for p, rid, h in wanted:
        if h.barcode in taken:
            continue
        unit_id = units.get(h.library)
        if unit_id is None:
            report.warnings.append(
                BadRecord(
                    p.read.position,
                    p.read.offset,
                    p.read.control_number,
                    f"{h.tag} names no library of ours ({h.library!r}); copy {h.barcode} skipped",
                )
            )
            continue
        item_type = rules.ItemType.BOOK.value
        if h.item_type in rules.ITEM_TYPES:
            item_type = h.item_type
        elif h.item_type:
            report.warnings.append(
                BadRecord(
                    p.read.position,
                    p.read.offset,
                    p.read.control_number,
                    f"{h.tag} $t {h.item_type!r} is no item type of ours; copy {h.barcode} "
                    f"made a book",
                )
            )
        session.add(
            Item(
                record_id=rid,
                barcode=h.barcode,
                org_unit_id=unit_id,
                call_number=h.call_number,
                item_type=item_type,
                status=rules.ItemStatus.AVAILABLE.value,
                circulates=rules.may_leave_building(item_type),
                created_at=at,
            )
        )
        taken.add(h.barcode)
        report.items_created += 1
        per = made.setdefault(rid, {})
        per[(unit_id, item_type)] = per.get((unit_id, item_type), 0) + 1
    session.flush()
    return made


PADDING_AFTER = N_(
    "padding after the last record at byte %(offset)d, skipped: %(size)d bytes (%(bytes)s)"
)
PADDING_BETWEEN = N_(
    "padding between records at byte %(offset)d, skipped: %(size)d bytes (%(bytes)s)"
)


def padding_warning(read: Parsed, file_size: int) -> BadRecord:
    """Padding is no record, so no failure: one warning per run, with its first bytes."""
    padding, offset = read.padding or b"", read.offset or 0
    shown = " ".join(f"{b:02X}" for b in padding[:16]) + (" …" if len(padding) > 16 else "")
    template = PADDING_AFTER if offset + len(padding) == file_size else PADDING_BETWEEN
    params: dict[str, object] = {"offset": offset, "size": len(padding), "bytes": shown}
    return BadRecord(read.position, offset, None, template % params, template, params)


def import_marc(
    session: Session,
    actor: Actor | None,
    data: bytes,
    *,
    at: dt.datetime,
    progress: Callable[[int], None] | None = None,
    staging: IndexStaging | None = None,
    workers: int | None = None,
) -> CatalogImportReport:
    """Import MARC21 (ISO 2709, MARC-8 or UTF-8) or MARCXML. Bad records are reported by
    position, 001 and reason; good records go in; a record matching one already in the
    catalogue (001+003, 035, ISBN) updates it instead of duplicating it.

    ``actor`` None is the system (the demo). ``progress`` receives bytes read so far.
    ``staging``, an index writer the caller commits after the database commit, receives the
    new records' search documents as they are stored (parse to searchable in one pass); the
    event then names them as indexed. ``workers``: parsing processes (default: one per
    core for a large file)."""
    if actor is not None and not actor.can(Permission.CATALOG_MANAGE):
        raise PermissionDenied("you may not import catalogue records")
    try:
        kind = marcio.sniff(data)
    except marcio.NotMarc as exc:
        raise CatalogFileInvalid(str(exc)) from None
    report = CatalogImportReport()
    if kind == "xml":
        records, report.file_error = marcio.read_marcxml(data)
        source: Iterable[Parsed] = (parse_read(r) for r in records)
    else:
        # A record is about 1,000 bytes: enough of an estimate to choose the processes.
        n = workers if workers is not None else parse_workers(len(data) // 1000)
        source = parse_iso2709(data, n)
    batch: list[_Prepared] = []
    changed: list[int] = []
    indexed: list[int] = []

    def flush() -> None:
        if batch:
            touched, docs = _write_batch(session, batch, report, at)
            changed.extend(touched)
            if staging is not None:
                staging.add(docs)
                indexed.extend(d.record_id for d in docs)
            batch.clear()

    for read in source:
        if read.padding is not None:
            report.warnings.append(padding_warning(read, len(data)))
            continue
        report.read += 1
        if read.warnings:
            report.warnings += [
                BadRecord(read.position, read.offset, read.control_number, w) for w in read.warnings
            ]
        extracted = read.extracted
        if read.error or extracted is None:
            report.bad.append(
                BadRecord(
                    read.position, read.offset, read.control_number, read.error or "unreadable"
                )
            )
            continue
        if extracted.invalid_isbns:
            report.warnings.append(
                BadRecord(
                    read.position,
                    read.offset,
                    read.control_number,
                    f"invalid ISBN kept as written: {', '.join(extracted.invalid_isbns)}",
                )
            )
        batch.append(_Prepared(read, extracted, match_keys(extracted)))
        if len(batch) >= BATCH:
            flush()
            if progress and read.offset is not None:
                progress(read.offset + len(read.raw or b""))
    flush()
    if progress:
        progress(len(data))
    if changed:
        payload: dict[str, Any] = {"record_ids": changed}
        if indexed:
            payload["indexed_ids"] = indexed
        record_event(session, "catalog.records.changed", payload, at=at, urgent=True)
    if actor is not None:
        log_action(
            session,
            actor,
            "catalog.import",
            entity="catalog",
            entity_id="import",
            org_unit_id=actor.org_unit_id,
            at=at,
            details={"created": report.created, "updated": report.updated, "bad": len(report.bad)},
        )
    return report


ITEM_COLUMNS = (
    "barcode",
    "control_number",
    "isbn",
    "library",
    "location",
    "call_number",
    "item_type",
    "price",
    "rfid_tag",
)


@dataclass
class ItemRowError:
    line: int
    barcode: str
    field: str
    message: str


@dataclass
class ItemImportReport:
    imported: int = 0
    errors: list[ItemRowError] = field(default_factory=list)


def import_items_csv(
    session: Session,
    actor: Actor | None,
    text: str,
    *,
    at: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> ItemImportReport:
    """Copies from a CSV (columns: ITEM_COLUMNS). Each row names its record by control
    number (001) or ISBN and its library by code; bad rows are reported by line and field,
    good rows are kept; a barcode already on file is reported, not added twice."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("barcode", "library") if c not in header]
    if "control_number" not in header and "isbn" not in header:
        missing.append("control_number or isbn")
    if missing:
        raise CatalogFileInvalid(
            f"missing column(s): {', '.join(missing)}", details={"expected": list(ITEM_COLUMNS)}
        )
    reader.fieldnames = header
    units = {u.code: u for u in libraries.unit_names(session).values()}
    report = ItemImportReport()
    for n, row in enumerate(reader, start=2):
        barcode = (row.get("barcode") or "").strip()

        def bad(field_name: str, message: str, line: int = n, code: str = barcode) -> None:
            report.errors.append(ItemRowError(line, code, field_name, message))

        if None in row:
            bad("row", "the row has more fields than the header")
            continue
        if not barcode or len(barcode) > 32:
            bad("barcode", "a barcode of 1 to 32 characters is required")
            continue
        unit = units.get((row.get("library") or "").strip())
        if unit is None:
            bad("library", f"no library with code {row.get('library')!r}")
            continue
        record_id = _record_for_row(session, row)
        if record_id is None:
            bad("control_number", "no record with this control number or ISBN")
            continue
        location_id = None
        if (row.get("location") or "").strip():
            location_id = next(
                (
                    loc.id
                    for loc in libraries.locations_of(session, unit.id)
                    if loc.code == row["location"].strip()
                ),
                None,
            )
            if location_id is None:
                bad("location", f"no location {row['location']!r} at {unit.code}")
                continue
        item_type = (row.get("item_type") or "book").strip()
        if item_type not in rules.ITEM_TYPES:
            bad("item_type", f"one of {', '.join(t.value for t in rules.ItemType)}")
            continue
        price = (row.get("price") or "").strip() or None
        if price is not None and not PRICE.fullmatch(price):
            bad("price", N_("A price such as 28.00."))
            continue
        if session.scalar(select(Item.id).where(Item.barcode == barcode)):
            bad("barcode", "this barcode is already on file")
            continue
        rfid = (row.get("rfid_tag") or "").strip() or None
        if rfid and session.scalar(select(Item.id).where(Item.rfid_tag == rfid)):
            bad("rfid_tag", "this RFID tag is already on another item")
            continue
        add_items(
            session,
            actor,
            [
                NewItem(
                    record_id,
                    barcode,
                    unit.id,
                    item_type,
                    location_id,
                    (row.get("call_number") or "").strip() or None,
                    rfid,
                    price,
                )
            ],
            at=at,
        )
        report.imported += 1
        if progress:
            progress(n - 1)
    return report


def _record_for_row(session: Session, row: dict[str, str | None]) -> int | None:
    control = (row.get("control_number") or "").strip()
    if control:
        found = session.scalar(
            select(Record.id).where(Record.control_number == control).order_by(Record.id)
        )
        if found:
            return int(found)
    isbn = rules.normalise_isbn(row.get("isbn") or "")
    if isbn:
        found = session.scalar(
            select(RecordKey.record_id)
            .where(RecordKey.kind == "isbn", RecordKey.value == isbn)
            .order_by(RecordKey.record_id)
        )
        if found:
            return int(found)
    return None
