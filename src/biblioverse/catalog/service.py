"""Records and items: a record saved from the cataloguing form, copies added and changed,
copies looked up, records read and exported."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from biblioverse import libraries
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.catalog import editing, marcio, rules
from biblioverse.catalog.errors import IllegalStatusChange, ItemNotFound, RecordNotFound
from biblioverse.catalog.models import Item, Record, RecordKey
from biblioverse.db import allocate_ids
from biblioverse.errors import DuplicateValue, FieldError, PermissionDenied, ValidationFailed
from biblioverse.events import record as record_event
from biblioverse.i18n import N_

PRICE = re.compile(r"\d{1,8}(\.\d{1,2})?")  # a copy's price: 28.00
# The tables, for bulk inserts that skip the ORM's unit of work.
RECORDS = cast(Table, Record.__table__)
RECORD_KEYS = cast(Table, RecordKey.__table__)


def match_keys(e: rules.Extracted) -> list[tuple[str, str]]:
    """Strongest first: the source's own control number, then system numbers, then ISBNs."""
    keys: list[tuple[str, str]] = []
    if e.control_number:
        keys.append(("control", f"{e.control_number_source or ''}|{e.control_number}"[:200]))
    keys += [("system", s[:200]) for s in e.system_numbers]
    keys += [("isbn", i) for i in e.isbns]
    return keys


def record_columns(
    e: rules.Extracted, raw: bytes | None, utf8: bool, at: dt.datetime
) -> dict[str, Any]:
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
            circulates=rules.may_leave_building(item_type),
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
    columns = record_columns(extracted, raw, True, at)
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


def next_status(item: Item, target: rules.ItemStatus) -> str:
    """``target``'s value if the item lifecycle lets the copy move there; every writer of a
    copy's status goes through this (staff by hand through ``update_item``)."""
    if not rules.status_move_allowed(item.status, target):
        raise IllegalStatusChange(item.barcode, item.status, target.value)
    return target.value


def get_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise ItemNotFound(item_id)
    return item


@dataclass(frozen=True)
class CopyLabel:
    """How staff name a copy in another context's page (a gate alarm): its barcode and
    the title of its record."""

    barcode: str
    title: str


def copy_labels(session: Session, item_ids: Iterable[int]) -> dict[int, CopyLabel]:
    """Barcode and title of each copy asked for that exists, in one query."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Item.id, Item.barcode, Record.title)
        .join(Record, Record.id == Item.record_id)
        .where(Item.id.in_(ids))
    )
    return {i: CopyLabel(barcode, title) for i, barcode, title in rows}


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
    if (
        change.status is not None
        and not problems
        and not rules.status_move_allowed(item.status, change.status, by_hand=True)
    ):
        problems.append(
            FieldError(
                "status",
                "illegal_transition",
                N_(
                    "A copy on loan, in transit or on a hold shelf changes status through "
                    "circulation, and only circulation puts a copy there."
                ),
            )
        )
    item_type = change.item_type or item.item_type
    # A precious copy's flag comes from its type; any other copy's is the library's override.
    circulates = change.circulates
    if circulates is None and change.item_type not in (None, item.item_type):
        circulates = rules.may_leave_building(item_type)
    if circulates and not rules.may_leave_building(item_type):
        problems.append(
            FieldError(
                "circulates",
                "stays_in_building",
                N_("Precious and ancient books never leave the building."),
            )
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
    if circulates is not None:
        item.circulates = circulates
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


# Every loan and return looks a copy up: the statements are built once (a statement built
# per call cost a check-out its cache key every time).
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
