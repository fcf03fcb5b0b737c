"""Use cases of the catalogue: import, export, records and items (the search index's
documents are in indexing.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from biblioverse import libraries
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.catalog import editing, marcio, rules
from biblioverse.catalog.errors import CatalogFileInvalid, ItemNotFound, RecordNotFound
from biblioverse.catalog.indexing import search_doc
from biblioverse.catalog.models import Item, Record, RecordKey
from biblioverse.catalog.search import IndexStaging, SearchDoc
from biblioverse.db import allocate_ids
from biblioverse.errors import DuplicateValue, FieldError, PermissionDenied, ValidationFailed
from biblioverse.events import record as record_event
from biblioverse.i18n import N_

BATCH = 500
PRICE = re.compile(r"\d{1,8}(\.\d{1,2})?")  # a copy's price: 28.00
# The tables, for bulk inserts that skip the ORM's unit of work.
RECORDS = cast(Table, Record.__table__)
RECORD_KEYS = cast(Table, RecordKey.__table__)


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


def match_keys(e: rules.Extracted) -> list[tuple[str, str]]:
    """Strongest first: the source's own control number, then system numbers, then ISBNs."""
    keys: list[tuple[str, str]] = []
    if e.control_number:
        keys.append(("control", f"{e.control_number_source or ''}|{e.control_number}"[:200]))
    keys += [("system", s[:200]) for s in e.system_numbers]
    keys += [("isbn", i) for i in e.isbns]
    return keys


def _columns(e: rules.Extracted, raw: bytes | None, utf8: bool, at: dt.datetime) -> dict[str, Any]:
    assert raw is not None
    return {
        "marc": raw,
        "marc_utf8": utf8,
        "control_number": e.control_number,
        "control_number_source": e.control_number_source,
        "title": e.title,
        "title_vernacular": e.title_vernacular,
        "responsibility": e.responsibility,
        "authors": e.authors,
        "subjects": e.subjects,
        "isbns": e.isbns,
        "invalid_isbns": e.invalid_isbns,
        "issns": e.issns,
        "publisher": e.publisher,
        "year": e.year if e.year is None or -32768 < e.year < 32767 else None,
        "language": (e.language or "")[:8] or None,
        "edition": e.edition,
        "physical_description": e.physical_description,
        "series": e.series,
        "notes": e.notes,
        "lcc": (e.lcc or "")[:120] or None,
        "ddc": (e.ddc or "")[:120] or None,
        "clc": (e.clc or "")[:120] or None,
        "call_number": (e.call_number or "")[:120] or None,
        "updated_at": at,
    }


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
        columns = _columns(p.data, p.read.raw, p.read.utf8, at)
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
                circulates=item_type not in rules.NON_CIRCULATING,
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


def get_record(session: Session, record_id: int) -> Record:
    record = session.get(Record, record_id)
    if record is None:
        raise RecordNotFound(record_id)
    return record


def export_marc(session: Session, record_ids: Sequence[int] | None = None) -> bytes:
    """ISO 2709 as stored: an imported, unedited record comes out byte for byte."""
    q = select(Record.marc).order_by(Record.id)
    if record_ids is not None:
        q = q.where(Record.id.in_(record_ids))
    return b"".join(session.scalars(q))


def export_marcxml(session: Session, record_ids: Sequence[int] | None = None) -> bytes:
    q = select(Record.marc, Record.marc_utf8).order_by(Record.id)
    if record_ids is not None:
        q = q.where(Record.id.in_(record_ids))
    return marcio.marcxml_collection(
        [marcio.to_record(raw, utf8) for raw, utf8 in session.execute(q)]
    )


@dataclass
class NewItem:
    record_id: int
    barcode: str
    org_unit_id: int
    item_type: str = rules.ItemType.BOOK.value
    location_id: int | None = None
    call_number: str | None = None
    rfid_tag: str | None = None
    price: str | None = None
    status: str = rules.ItemStatus.AVAILABLE.value


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


def add_items(
    session: Session, actor: Actor | None, items: Sequence[NewItem], *, at: dt.datetime
) -> list[Item]:
    """Add copies; ``actor`` None is the system (the demo)."""
    out = []
    for data in items:
        unit = libraries.get_unit(session, data.org_unit_id)
        if actor is not None and not actor.can(Permission.CATALOG_MANAGE, unit.path):
            raise PermissionDenied("you may not add items to this library")
        item_type = rules.ItemType(data.item_type)
        item = Item(
            record_id=data.record_id,
            barcode=data.barcode,
            rfid_tag=data.rfid_tag,
            org_unit_id=unit.id,
            location_id=data.location_id,
            call_number=data.call_number,
            item_type=item_type.value,
            price=data.price,
            status=rules.ItemStatus(data.status).value,
            circulates=item_type not in rules.NON_CIRCULATING,
            created_at=at,
        )
        session.add(item)
        out.append(item)
    session.flush()
    if out:
        record_event(
            session,
            "catalog.records.changed",
            {"record_ids": sorted({i.record_id for i in out})},
            at=at,
            urgent=True,
        )
    return out


# --- cataloguing in the console ----------------------------------------------------------


def _organisation(session: Session) -> str:
    """The MARC organisation code written in 003 of records made here: the consortium's ISIL,
    else its code."""
    root = session.execute(
        select(libraries.OrgUnit.isil, libraries.OrgUnit.code).order_by(libraries.OrgUnit.path)
    ).first()
    return str(root[0] or root[1]) if root is not None else "biblioverse"


def record_form(session: Session, record_id: int) -> editing.RecordForm:
    """The edit form of a record, as it stands."""
    record = get_record(session, record_id)
    return editing.form_of(rules.extract(marcio.to_record(record.marc, record.marc_utf8)))


def save_record(
    session: Session,
    actor: Actor,
    record_id: int | None,
    form: editing.RecordForm,
    *,
    at: dt.datetime,
) -> Record:
    """Create a record (``record_id`` None) or change one from the cataloguing form. The form
    is written into the record's MARC21, and the stored fields are extracted from that MARC
    the way an import extracts them. A save without a change leaves the record as it was."""
    if not actor.can(Permission.CATALOG_MANAGE):
        raise PermissionDenied("you may not catalogue records")
    form = form.cleaned()
    if problems := form.errors():
        raise ValidationFailed(problems)
    organisation = _organisation(session)
    if record_id is None:
        record_id = allocate_ids(session, RECORDS, 1)[0]
        marc = editing.apply_form(
            None, None, form, control_number=str(record_id), organisation=organisation, at=at
        )
        existing = None
    else:
        existing = get_record(session, record_id)
        current = marcio.to_record(existing.marc, existing.marc_utf8)
        before = editing.form_of(rules.extract(current))
        if before == form:
            return existing
        marc = editing.apply_form(
            current, before, form, control_number=None, organisation=organisation, at=at
        )
    editing.stamp_005(marc, at)
    raw = marc.as_marc()
    extracted = rules.extract(marc)
    columns = _columns(extracted, raw, True, at)
    if existing is None:
        session.execute(insert(RECORDS), [{**columns, "id": record_id, "created_at": at}])
    else:
        for column, value in columns.items():
            setattr(existing, column, value)
        session.execute(delete(RecordKey).where(RecordKey.record_id == record_id))
    keys = match_keys(extracted)
    if keys:
        session.execute(
            insert(RECORD_KEYS), [{"record_id": record_id, "kind": k, "value": v} for k, v in keys]
        )
    session.flush()
    record_event(
        session, "catalog.records.changed", {"record_ids": [record_id]}, at=at, urgent=True
    )
    log_action(
        session,
        actor,
        "catalog.record.create" if existing is None else "catalog.record.update",
        entity="record",
        entity_id=record_id,
        org_unit_id=actor.org_unit_id,
        at=at,
        details={"title": extracted.title[:200]},
    )
    return get_record(session, record_id)


@dataclass
class ItemChange:
    """What staff may change of a copy; None leaves a value as it is."""

    item_type: str | None = None
    status: str | None = None
    location_id: int | None = None
    clear_location: bool = False
    call_number: str | None = None
    price: str | None = None
    rfid_tag: str | None = None
    circulates: bool | None = None


def copy_problems(
    session: Session,
    unit_id: int,
    *,
    item_type: str | None,
    status: str | None,
    price: str | None,
    location_id: int | None,
    rfid_tag: str | None,
    call_number: str | None,
) -> list[FieldError]:
    """What is wrong with a copy's values (None: not given), for adding and for changing."""
    problems = []
    if item_type is not None and item_type not in rules.ITEM_TYPES:
        problems.append(FieldError("item_type", "invalid", N_("Not an item type.")))
    if status is not None and status not in {s.value for s in rules.ItemStatus}:
        problems.append(FieldError("status", "invalid", N_("Not an item status.")))
    if price and not PRICE.fullmatch(price):
        problems.append(FieldError("price", "invalid", N_("A price such as 28.00.")))
    if location_id is not None and location_id not in {
        loc.id for loc in libraries.locations_of(session, unit_id)
    }:
        problems.append(FieldError("location_id", "invalid", N_("Not a location of this library.")))
    if rfid_tag and (len(rfid_tag) > 64 or not rfid_tag.isalnum()):
        problems.append(FieldError("rfid_tag", "invalid", N_("Letters and digits, at most 64.")))
    if call_number is not None and len(call_number) > 120:
        problems.append(FieldError("call_number", "too_long", N_("At most 120 characters.")))
    return problems


def get_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise ItemNotFound(item_id)
    return item


def update_item(
    session: Session, actor: Actor, item_id: int, change: ItemChange, *, at: dt.datetime
) -> Item:
    """Change a copy of one's own library; every change is audited."""
    item = get_item(session, item_id)
    unit = libraries.get_unit(session, item.org_unit_id)
    if not actor.can(Permission.CATALOG_MANAGE, unit.path):
        raise PermissionDenied("you may not change copies of this library")
    problems = copy_problems(
        session,
        unit.id,
        item_type=change.item_type,
        status=change.status,
        price=change.price,
        location_id=change.location_id,
        rfid_tag=change.rfid_tag,
        call_number=change.call_number,
    )
    if problems:
        raise ValidationFailed(problems)
    if change.rfid_tag and change.rfid_tag != item.rfid_tag:
        taken = session.scalar(select(Item.id).where(Item.rfid_tag == change.rfid_tag))
        if taken is not None:
            raise DuplicateValue("item", "rfid_tag", change.rfid_tag)
    before = {c: getattr(item, c) for c in ITEM_FIELDS}
    if change.item_type is not None:
        item.item_type = change.item_type
    if change.status is not None:
        item.status = change.status
    if change.clear_location:
        item.location_id = None
    elif change.location_id is not None:
        item.location_id = change.location_id
    if change.call_number is not None:
        item.call_number = change.call_number.strip() or None
    if change.price is not None:
        item.price = Decimal(change.price).quantize(Decimal("0.01")) if change.price else None
    if change.rfid_tag is not None:
        item.rfid_tag = change.rfid_tag or None
    if change.circulates is not None:
        item.circulates = change.circulates
    after = {c: getattr(item, c) for c in ITEM_FIELDS}
    diff = {c: [str(before[c]), str(after[c])] for c in ITEM_FIELDS if before[c] != after[c]}
    if diff:
        session.flush()
        record_event(
            session, "catalog.records.changed", {"record_ids": [item.record_id]}, at=at, urgent=True
        )
        log_action(
            session,
            actor,
            "catalog.item.update",
            entity="item",
            entity_id=item.id,
            org_unit_id=item.org_unit_id,
            at=at,
            details={"barcode": item.barcode, "changed": diff},
        )
    return item


ITEM_FIELDS = (
    "item_type",
    "status",
    "location_id",
    "call_number",
    "price",
    "rfid_tag",
    "circulates",
)


def add_item(session: Session, actor: Actor, data: NewItem, *, at: dt.datetime) -> Item:
    """One copy added by staff, checked first: its record exists, its barcode and tag are
    free, its location belongs to its library."""
    unit = libraries.get_unit(session, data.org_unit_id)
    if not actor.can(Permission.CATALOG_MANAGE, unit.path):  # before saying what exists
        raise PermissionDenied("you may not add items to this library")
    get_record(session, data.record_id)
    problems = copy_problems(
        session,
        data.org_unit_id,
        item_type=data.item_type,
        status=data.status,
        price=data.price,
        location_id=data.location_id,
        rfid_tag=data.rfid_tag,
        call_number=data.call_number,
    )
    if problems:
        raise ValidationFailed(problems)
    if session.scalar(select(Item.id).where(Item.barcode == data.barcode)) is not None:
        raise DuplicateValue("item", "barcode", data.barcode)
    if data.rfid_tag and session.scalar(select(Item.id).where(Item.rfid_tag == data.rfid_tag)):
        raise DuplicateValue("item", "rfid_tag", data.rfid_tag)
    (item,) = add_items(session, actor, [data], at=at)
    log_action(
        session,
        actor,
        "catalog.item.create",
        entity="item",
        entity_id=item.id,
        org_unit_id=item.org_unit_id,
        at=at,
        details={"barcode": item.barcode, "record_id": item.record_id},
    )
    return item


def find_item(session: Session, *, barcode: str) -> Item:
    """A copy by its barcode, without a lock (for looking, not for lending)."""
    item = session.scalar(select(Item).where(Item.barcode == barcode))
    if item is None:
        raise ItemNotFound(barcode)
    return item


def _locked_item(column: InstrumentedAttribute[Any]) -> Select[Item]:
    # populate_existing: a copy this transaction read before it took the lock (a kiosk
    # looking the barcode up first) is refreshed with what the lock holder committed.
    return (
        select(Item)
        .where(column == bindparam("code"))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


# Every loan and return looks a copy up: the statements are built once (the cache key of a
# statement built per call was a tenth of a check-out's time).
_ITEM_BY_BARCODE = _locked_item(Item.barcode)
_ITEM_BY_TAG = _locked_item(Item.rfid_tag)


def item_for_update(
    session: Session, *, barcode: str | None = None, rfid_tag: str | None = None
) -> Item:
    """A copy by barcode or RFID tag, its row locked for the rest of the transaction
    (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the write transaction holds the lock)."""
    if barcode:
        item = session.scalar(_ITEM_BY_BARCODE, {"code": barcode})
    elif rfid_tag:
        item = session.scalar(_ITEM_BY_TAG, {"code": rfid_tag})
    else:
        raise ValidationFailed([FieldError("barcode", "required", N_("A barcode or an RFID tag."))])
    if item is None:
        raise ItemNotFound(barcode or rfid_tag)
    return item
