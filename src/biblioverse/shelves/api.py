"""HTTP API of smart shelves, gates and tag programming: what devices post, what staff and
readers ask (where is this book, what is wrong on the shelves)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from biblioverse import accounts, catalog, libraries
from biblioverse.access import Actor, DeviceCapability, Permission
from biblioverse.deps import CurrentDevice, DbSession, Now, require_device, require_permission
from biblioverse.devices.api import json_only
from biblioverse.devices.rules import PayloadError, as_message
from biblioverse.devices.schemas import Rejected
from biblioverse.devices.service import Health
from biblioverse.errors import FieldError, PermissionDenied, ValidationFailed
from biblioverse.fields import DbId
from biblioverse.shelves import inventory, reports, tagdata
from biblioverse.shelves.rules import local_iso, parse_report
from biblioverse.shelves.service import AntennaMap, add_antenna, apply_reports, gate_check, where_is

router = APIRouter(tags=["devices"])
ShelfReader = Annotated[Actor, Depends(require_device(DeviceCapability.SHELF_TAGS))]
Gate = Annotated[Actor, Depends(require_device(DeviceCapability.GATE_CHECK))]
Collection = Annotated[Actor, Depends(require_permission(Permission.CATALOG_MANAGE))]
OrgManager = Annotated[Actor, Depends(require_permission(Permission.ORG_MANAGE))]
DeviceManager = Annotated[Actor, Depends(require_permission(Permission.DEVICES_MANAGE))]


# --- what shelf readers post -------------------------------------------------------------


class IngestOut(BaseModel):
    accepted: int
    reads: int
    moved: int
    unknown_tags: int
    rejected: list[Rejected]


def _ingest(
    session: DbSession, actor: Actor, body: Any, now: dt.datetime, kind: str | None
) -> Response:
    json_only(body)
    items = body.get("reports") if isinstance(body, dict) and "reports" in body else [body]
    if not isinstance(items, list) or len(items) > 500:
        raise ValidationFailed([FieldError("reports", "invalid", "a list of at most 500 reports")])
    health: dict[int, Health] = {actor.id: Health()}
    parsed, rejected = [], []
    for i, item in enumerate(items):
        try:
            parsed.append(
                parse_report(as_message(item), device_id=actor.id, received=now, kind=kind)
            )
        except PayloadError as exc:
            health[actor.id].error(exc.kind, str(exc), now)
            rejected.append(Rejected(index=i, field=exc.field, message=exc.message))
    applied = apply_reports(
        session, parsed, at=now, antennas=AntennaMap.load(session), health=health
    )
    out = IngestOut(
        accepted=applied.reports + sum(1 for r in parsed if r.kind.value == "heartbeat"),
        reads=applied.reads,
        moved=applied.moved,
        unknown_tags=applied.unknown_tags,
        rejected=rejected,
    )
    # the counts are kept even when nothing could be used: the device's health says why
    code = status.HTTP_422_UNPROCESSABLE_CONTENT if items and not parsed else status.HTTP_200_OK
    return JSONResponse(out.model_dump(), status_code=code)


@router.post(
    "/devices/me/tags",
    summary='A shelf reader\'s snapshot or delta (one report, or {"reports": [...]})',
    response_model=IngestOut,
)
def post_tags(actor: ShelfReader, session: DbSession, now: Now, body: Any = Body(...)) -> Response:
    return _ingest(session, actor, body, now, None)


@router.post("/devices/me/heartbeat", summary="A device says it is alive", response_model=IngestOut)
def post_heartbeat(
    actor: CurrentDevice, session: DbSession, now: Now, body: Any = Body(...)
) -> Response:
    return _ingest(session, actor, body, now, "heartbeat")


# --- gates -------------------------------------------------------------------------------------


class GateIn(BaseModel):
    tags: list[str] = Field(min_length=1, max_length=100)


class GateTag(BaseModel):
    tag: str
    allowed: bool
    reason: Literal["on_loan", "not_ours", "not_checked_out"]
    barcode: str | None = None
    title: str | None = None


class GateOut(BaseModel):
    alarm: bool
    tags: list[GateTag]


@router.post("/gates/check", summary="May these tags leave? (a security gate asks)")
def gate(body: GateIn, actor: Gate, session: DbSession, now: Now) -> GateOut:
    device = session.get(accounts.DeviceKey, actor.id)
    assert device is not None
    answers = gate_check(session, device, body.tags, at=now)
    out = []
    for a in answers:
        item = session.get(catalog.Item, a.item_id) if a.item_id else None
        out.append(
            GateTag(
                tag=a.tag,
                allowed=a.allowed,
                reason=a.reason,
                barcode=item.barcode if item else None,
                title=item.record.title if item else None,
            )
        )
    return GateOut(alarm=not all(a.allowed for a in answers), tags=out)


# --- where is this book ---------------------------------------------------------------------


class WhereOut(BaseModel):
    barcode: str
    source: Literal["rfid", "call_number", "none"]
    library_id: int
    shelf: str | None
    location: str | None
    floor: int | None
    level: int | None
    side: str | None
    seen_at: dt.datetime | None
    on_shelf: bool


@router.get("/items/{barcode}/where", summary="Where a copy stands (public)")
def where(barcode: Annotated[str, Path(max_length=32)], session: DbSession) -> WhereOut:
    item = catalog.find_item(session, barcode=barcode)
    w = where_is(session, item)
    loc = session.get(libraries.Location, w.shelf.location_id) if w.shelf else None
    return WhereOut(
        barcode=item.barcode,
        source=w.source,
        library_id=w.shelf.org_unit_id if w.shelf else item.org_unit_id,
        shelf=w.shelf.code if w.shelf else None,
        location=loc.code if loc else None,
        floor=loc.floor if loc else None,
        level=w.level,
        side=w.side,
        seen_at=w.seen_at,
        on_shelf=w.on_shelf,
    )


# --- tag programming ----------------------------------------------------------------------------


class EncodeIn(BaseModel):
    barcode: str = Field(min_length=1, max_length=32)
    format: tagdata.TagFormat = tagdata.TagFormat.ISO28560_3
    owner_isil: str | None = Field(default=None, max_length=16)
    company_prefix: str | None = Field(default=None, max_length=12)
    parts: int = Field(default=1, ge=1, le=255)
    part: int = Field(default=1, ge=1, le=255)


class TagOut(BaseModel):
    format: tagdata.TagFormat
    barcode: str
    owner_isil: str | None
    company_prefix: str | None
    parts: int
    part: int
    usage: str


class EncodedOut(TagOut):
    data: str  # hex to write: the 32-byte block (HF) or the EPC (UHF)


def _tag_out(content: tagdata.TagContent) -> dict[str, Any]:
    return {
        "format": content.format,
        "barcode": content.barcode,
        "owner_isil": content.owner_isil,
        "company_prefix": content.company_prefix,
        "parts": content.parts,
        "part": content.part,
        "usage": content.usage.value,
    }


def _tag_error(exc: tagdata.TagDataError) -> ValidationFailed:
    return ValidationFailed([FieldError(exc.field, "invalid", exc.message)])


@router.post("/rfid/encode", summary="What to write on a new tag for a copy")
def encode(body: EncodeIn, actor: Collection, session: DbSession) -> EncodedOut:
    item = catalog.find_item(session, barcode=body.barcode)
    unit = libraries.get_unit(session, item.org_unit_id)
    content = tagdata.TagContent(
        body.format,
        item.barcode,
        owner_isil=body.owner_isil or unit.isil,
        company_prefix=body.company_prefix,
        parts=body.parts,
        part=body.part,
    )
    try:
        data = tagdata.encode(content)
    except tagdata.TagDataError as exc:
        raise _tag_error(exc) from exc
    return EncodedOut(data=data, **_tag_out(content))


class DecodeIn(BaseModel):
    data: str = Field(min_length=2, max_length=128)


@router.post("/rfid/decode", summary="Read what a tag holds (HF block or UHF EPC)")
def decode(body: DecodeIn, actor: Collection) -> TagOut:
    try:
        return TagOut(**_tag_out(tagdata.decode(body.data)))
    except tagdata.TagDataError as exc:
        raise _tag_error(exc) from exc


class BindIn(BaseModel):
    barcode: str = Field(min_length=1, max_length=32)
    tag: str = Field(min_length=4, max_length=64, pattern=r"^[0-9A-Za-z]+$")


@router.post("/rfid/bind", summary="The tag just written is on this copy (a programming station)")
def bind(body: BindIn, actor: Collection, session: DbSession, now: Now) -> dict[str, str]:
    item = catalog.find_item(session, barcode=body.barcode)
    catalog.update_item(
        session, actor, item.id, catalog.ItemChange(rfid_tag=body.tag.upper()), at=now
    )
    return {"barcode": item.barcode, "tag": body.tag.upper()}


# --- shelves and antennas -----------------------------------------------------------------------


class ShelfIn(BaseModel):
    location_id: DbId
    code: str = Field(min_length=1, max_length=32)
    first_call: str = Field(min_length=1, max_length=120)
    last_call: str = Field(min_length=1, max_length=120)
    scheme: Literal["lcc", "ddc", "clc"] = "clc"
    levels: int = Field(default=6, ge=1, le=12)
    sides: int = Field(default=1, ge=1, le=2)


class ShelfOut(BaseModel):
    model_config = {"from_attributes": True}
    id: int
    org_unit_id: int
    location_id: int
    code: str
    first_call: str
    last_call: str
    scheme: str
    levels: int
    sides: int


@router.post(
    "/libraries/{unit_id}/shelves", status_code=status.HTTP_201_CREATED, summary="Add a shelf"
)
def create_shelf(
    unit_id: DbId, body: ShelfIn, actor: OrgManager, session: DbSession, now: Now
) -> ShelfOut:
    unit = libraries.get_unit(session, unit_id)
    shelf = libraries.add_shelf(
        session, actor, unit, libraries.ShelfInput(**body.model_dump()), at=now
    )
    return ShelfOut.model_validate(shelf)


@router.get("/libraries/{unit_id}/shelves", summary="The shelves of a library (public)")
def list_shelves(unit_id: DbId, session: DbSession) -> list[ShelfOut]:
    return [ShelfOut.model_validate(s) for s in libraries.shelves_of(session, unit_id)]


class AntennaIn(BaseModel):
    antenna: int = Field(ge=0, le=255)
    shelf_id: DbId
    level: int = Field(ge=1, le=12)
    side: Literal["A", "B"] = "A"


class AntennaOut(AntennaIn):
    model_config = {"from_attributes": True}
    id: int
    device_id: int


@router.post(
    "/devices/{device_id}/antennas",
    status_code=status.HTTP_201_CREATED,
    summary="Map a reader's antenna to a shelf",
)
def create_antenna(
    device_id: DbId, body: AntennaIn, actor: DeviceManager, session: DbSession, now: Now
) -> AntennaOut:
    row = add_antenna(session, actor, device_id=device_id, at=now, **body.model_dump())
    return AntennaOut.model_validate(row)


# --- collection checks -------------------------------------------------------------------------

REPORTS = ("misplaced", "missing", "lent-on-shelf", "unknown-tags", "in-library-use")


def _scoped(session: DbSession, actor: Actor, unit_id: int) -> libraries.OrgUnit:
    unit = libraries.get_unit(session, unit_id)
    if not actor.can(Permission.CATALOG_MANAGE, unit.path):
        raise PermissionDenied("you may not see this library's shelves")
    return unit


def report_rows(
    session: DbSession, unit_id: int, kind: str, now: dt.datetime
) -> list[dict[str, Any]]:
    if kind == "misplaced":
        rows: list[Any] = reports.misplaced(session, unit_id)
    elif kind == "missing":  # every one: the shelves page counts them all
        rows = reports.missing(session, unit_id, at=now, limit=None)
    elif kind == "lent-on-shelf":
        rows = reports.lent_on_shelf(session, unit_id)
    elif kind == "unknown-tags":
        rows = reports.unknown_tags(session, unit_id)
    else:
        rows = reports.in_library_use(session, unit_id, since=now - dt.timedelta(days=30))
    return [r.__dict__ for r in rows]


@router.get(
    "/libraries/{unit_id}/shelf-reports/{kind}", summary="Mis-shelved, missing ... (JSON or CSV)"
)
def shelf_report(
    unit_id: DbId,
    kind: Annotated[str, Path(pattern="^(" + "|".join(REPORTS) + ")$")],
    actor: Collection,
    session: DbSession,
    now: Now,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    unit = _scoped(session, actor, unit_id)
    rows = report_rows(session, unit_id, kind, now)
    return table(rows, format, f"{kind}-{unit_id}", tz=unit.timezone)


def table(rows: list[dict[str, Any]], format: str, name: str, *, tz: str) -> Response:
    """Rows as JSON (times in UTC), or as CSV for a spreadsheet, its times in the library's
    time zone with their offset (`rules.local_iso`), as the screens show them."""
    if format == "json":
        return Response(orjson.dumps(rows), media_type="application/json")
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {k: local_iso(v, tz) if isinstance(v, dt.datetime) else v for k, v in row.items()}
            for row in rows
        )
    return Response(
        "\ufeff" + buffer.getvalue(),  # a byte-order mark, so that spreadsheets read Chinese
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


class ReconciliationOut(BaseModel):
    expected: int
    found: int
    correct: int
    misplaced: int
    missing: int
    unexpected: int


@router.get(
    "/libraries/{unit_id}/reconciliation", summary="Every copy against the shelves, counted"
)
def reconciliation(
    unit_id: DbId, actor: Collection, session: DbSession, now: Now
) -> ReconciliationOut:
    _scoped(session, actor, unit_id)
    return ReconciliationOut(**reports.reconcile(session, [unit_id], at=now).__dict__)


# --- inventory ------------------------------------------------------------------------------------


class InventoryIn(BaseModel):
    scope: Literal["library", "floor", "zone", "shelves"]
    floor: int | None = Field(default=None, ge=-5, le=200)
    location_id: DbId | None = None
    first_shelf: str | None = Field(default=None, max_length=32)
    last_shelf: str | None = Field(default=None, max_length=32)


class ShelfProgressOut(BaseModel):
    shelf: str
    expected: int
    found: int
    misplaced_here: int


class InventoryOut(BaseModel):
    id: int
    library_id: int
    scope: str
    floor: int | None
    location_id: int | None
    first_shelf: str | None
    last_shelf: str | None
    state: Literal["open", "closed"]
    started_at: dt.datetime
    closed_at: dt.datetime | None
    expected: int
    found: int
    misplaced: int
    missing: int
    unexpected: int
    percent: float
    marked_missing: int
    shelves: list[ShelfProgressOut]


def _inventory_out(session: DbSession, inv: Any) -> InventoryOut:
    p = inventory.progress(session, inv)
    counts = {
        "expected": p.expected,
        "found": p.found,
        "misplaced": p.misplaced,
        "missing": p.missing,
        "unexpected": p.unexpected,
    }
    if inv.state == "closed":  # the counts as they were at the close
        counts = {k: int(inv.summary.get(k, 0)) for k in counts}
    shelves = [
        ShelfProgressOut(
            shelf=x.code, expected=x.expected, found=x.found, misplaced_here=x.misplaced_here
        )
        for x in p.shelves
    ]
    expected = counts["expected"]
    percent = round(100.0 * counts["found"] / expected, 1) if expected else 100.0
    return InventoryOut(
        id=inv.id,
        library_id=inv.org_unit_id,
        scope=inv.scope,
        floor=inv.floor,
        location_id=inv.location_id,
        first_shelf=inv.first_shelf,
        last_shelf=inv.last_shelf,
        state=inv.state,
        started_at=inv.started_at,
        closed_at=inv.closed_at,
        percent=percent,
        marked_missing=inv.marked_missing,
        shelves=shelves,
        **counts,
    )


@router.post(
    "/libraries/{unit_id}/inventories",
    status_code=status.HTTP_201_CREATED,
    summary="Start an inventory of a library, a floor, a zone or a run of shelves",
)
def start_inventory(
    unit_id: DbId, body: InventoryIn, actor: Collection, session: DbSession, now: Now
) -> InventoryOut:
    inv = inventory.start(
        session, actor, unit_id, inventory.ScopeInput(**body.model_dump()), at=now
    )
    return _inventory_out(session, inv)


class InventoryLine(BaseModel):
    id: int
    scope: str
    state: str
    started_at: dt.datetime
    closed_at: dt.datetime | None
    summary: dict[str, int]


@router.get("/libraries/{unit_id}/inventories", summary="A library's inventories, newest first")
def list_inventories(unit_id: DbId, actor: Collection, session: DbSession) -> list[InventoryLine]:
    return [
        InventoryLine(
            id=i.id,
            scope=i.scope,
            state=i.state,
            started_at=i.started_at,
            closed_at=i.closed_at,
            summary=i.summary or {},
        )
        for i in inventory.of_library(session, actor, unit_id)
    ]


@router.get("/inventories/{inventory_id}", summary="An inventory and its progress, live")
def get_inventory(inventory_id: DbId, actor: Collection, session: DbSession) -> InventoryOut:
    return _inventory_out(session, inventory.get(session, actor, inventory_id))


class HandheldIn(BaseModel):
    shelf: str | None = Field(default=None, max_length=32)
    tags: list[Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[0-9A-Za-z]+$")]] = []
    barcodes: list[Annotated[str, Field(min_length=1, max_length=32)]] = []


class HandheldOut(BaseModel):
    copies: int
    unknown: int


@router.post("/inventories/{inventory_id}/reads", summary="What a handheld reader read")
def handheld_reads(
    inventory_id: DbId, body: HandheldIn, actor: Collection, session: DbSession, now: Now
) -> HandheldOut:
    copies, unknown = inventory.handheld(
        session,
        actor,
        inventory_id,
        shelf_code=body.shelf,
        tags=body.tags,
        barcodes=body.barcodes,
        at=now,
    )
    return HandheldOut(copies=copies, unknown=unknown)


class CloseIn(BaseModel):
    mark_missing: bool = False


@router.post("/inventories/{inventory_id}/close", summary="Close an inventory with its counts")
def close_inventory(
    inventory_id: DbId, body: CloseIn, actor: Collection, session: DbSession, now: Now
) -> InventoryOut:
    inv = inventory.close(session, actor, inventory_id, mark_missing=body.mark_missing, at=now)
    return _inventory_out(session, inv)


@router.get(
    "/inventories/{inventory_id}/report",
    summary="Every line of an inventory: found, misplaced, missing, unexpected (JSON or CSV)",
)
def inventory_report(
    inventory_id: DbId,
    actor: Collection,
    session: DbSession,
    kind: Annotated[Literal["found", "misplaced", "missing", "unexpected"] | None, Query()] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    inv = inventory.get(session, actor, inventory_id)
    rows = [
        line.__dict__
        for line in inventory.report(session, inv)
        if kind is None or line.kind == kind
    ]
    tz = libraries.get_unit(session, inv.org_unit_id).timezone
    return table(rows, format, f"inventory-{inventory_id}" + (f"-{kind}" if kind else ""), tz=tz)
