"""HTTP API of the union catalogue: search, suggestions, records in JSON, MARCXML, MARC21."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any, Literal, cast

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import status as http_status
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import libraries
from biblioverse.access import Actor, Permission
from biblioverse.catalog import rules, service
from biblioverse.catalog.editing import RecordForm
from biblioverse.catalog.models import Item, Record
from biblioverse.catalog.schemas import (
    HoldingOut,
    ItemIn,
    ItemOut,
    ItemPatch,
    RecordIn,
    RecordOut,
    SearchOut,
)
from biblioverse.catalog.search import DEFAULT_FACETS, SORTS, SearchIndex, SearchQuery
from biblioverse.deps import DbSession, Now, ReadSession, require_permission
from biblioverse.fields import DbId, Offset
from biblioverse.libraries.service import UnitName

router = APIRouter(prefix="/catalog", tags=["catalog"])


async def search_index(request: Request) -> SearchIndex:
    # async: no I/O here, so no hop through the thread pool
    index: SearchIndex = request.app.state.search_index
    return index


Index = Annotated[SearchIndex, Depends(search_index)]
Facet = Annotated[list[str], Query(max_length=20)]


async def facet_filters(
    library: Facet = [],  # noqa: B006 (FastAPI reads the default, never mutates it)
    item_type: Facet = [],  # noqa: B006
    language: Facet = [],  # noqa: B006
    subject: Facet = [],  # noqa: B006
    decade: Facet = [],  # noqa: B006
    availability: Facet = [],  # noqa: B006
) -> dict[str, list[str]]:
    """The facet values a search is narrowed to, one query parameter per facet. async: it
    does no I/O, and a sync dependency costs a thread-pool hop on every search (measured:
    0.4 ms of a 1.1 ms request)."""
    return {
        "library": library,
        "item_type": item_type,
        "language": language,
        "subject": subject,
        "decade": decade,
        "availability": availability,
    }


Filters = Annotated[dict[str, list[str]], Depends(facet_filters)]
FacetName = Literal["library", "item_type", "language", "subject", "decade", "availability"]


def holdings_of(session: Session, record_ids: list[int]) -> dict[int, list[HoldingOut]]:
    units = libraries.unit_names(session)
    counts: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for record_id, unit_id, status in session.execute(
        select(Item.record_id, Item.org_unit_id, Item.status).where(Item.record_id.in_(record_ids))
    ):
        c = counts[record_id][unit_id]
        c[0] += 1
        c[1] += status == rules.ItemStatus.AVAILABLE.value
    return {
        rid: [
            HoldingOut(
                library_id=uid,
                library_code=units[uid].code,
                name_en=units[uid].name_en,
                name_zh=units[uid].name_zh,
                total=t,
                available=a,
            )
            for uid, (t, a) in sorted(per.items(), key=lambda kv: units[kv[0]].path)
        ]
        for rid, per in counts.items()
    }


def hit_holdings(card: dict[str, Any], units: dict[int, UnitName]) -> list[dict[str, Any]]:
    """A hit's holdings per library, as HoldingOut, from the card stored in the index."""
    rows = [(units[u], t, a) for u, t, a in card.get("holdings", ()) if u in units]
    return [
        {
            "library_id": u.id,
            "library_code": u.code,
            "name_en": u.name_en,
            "name_zh": u.name_zh,
            "total": t,
            "available": a,
        }
        for u, t, a in sorted(rows, key=lambda r: r[0].path)
    ]


def unit_cache(request: Request) -> libraries.UnitNameCache:
    cache: libraries.UnitNameCache = request.app.state.unit_names
    return cache


async def search(
    request: Request,
    index: Index,
    filters: Filters,
    q: Annotated[str, Query(max_length=500)] = "",
    sort: Literal["relevance", "year_desc", "year_asc", "title"] = "relevance",
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    facets: Annotated[
        list[FacetName],
        Query(description="Facets to count; subject only when asked (it is the costly one)"),
    ] = list(cast(tuple[FacetName, ...], DEFAULT_FACETS)),  # noqa: B006
) -> Response:
    # async and inline: the work is CPU in tantivy and here, with no I/O to wait for. Measured
    # at 250,000 records under 8 clients: the thread pool (tantivy releases the GIL) gave one
    # worker no more throughput, only the GIL hand-offs.
    assert sort in SORTS
    page = index.search(
        SearchQuery(q, {k: v for k, v in filters.items() if v}, sort, offset, limit, tuple(facets))
    )
    units = unit_cache(request).get(u for h in page.hits for u, _t, _a in h.card["holdings"])
    body = {
        "query": q,
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "hits": [
            {
                "record_id": h.record_id,
                "title": h.card["title"],
                "title_html": h.title_html,
                "title_secondary_html": h.title_secondary_html,
                "title_vernacular": h.card["title_vernacular"],
                "authors": h.card["authors"],
                "year": h.card["year"],
                "language": h.card["language"],
                "call_number": h.card["call_number"],
                "holdings": hit_holdings(h.card, units),
            }
            for h in page.hits
        ],
        "facets": {k: [{"value": v, "count": n} for v, n in vs] for k, vs in page.facets.items()},
        "fell_back": page.fell_back,
        "did_you_mean": page.did_you_mean,
    }
    return Response(orjson.dumps(body), media_type="application/json")


def add_search_route(app: FastAPI, prefix: str, responses: dict[int | str, Any]) -> None:
    """The search, registered on the app itself rather than in this module's router: it is
    the busiest route, and matching through FastAPI's nested routers cost it about 0.1 ms a
    request (interleaved runs under wrk: 867, 891, 955 against 821, 765, 743 queries/s).
    Call it before including the routers, so it is tried first."""
    app.add_api_route(
        f"{prefix}{router.prefix}/search",
        search,
        methods=["GET"],
        tags=["catalog"],
        summary="Search the union catalogue (public)",
        response_model=SearchOut,
        responses=responses,
        description="Answered from the search index alone: holdings and availability are as "
        "of the last indexing, which follows every catalogue and circulation change within "
        "moments.",
    )


@router.get("/suggest", summary="Completions for what a reader is typing (public)")
def suggest(index: Index, q: Annotated[str, Query(max_length=200)] = "") -> list[str]:
    return index.suggest(q)


MARC_TYPES = {"marcxml": "application/marcxml+xml", "marc": "application/marc"}
EXPORT_LIMIT = 10_000


@router.get(
    "/export",
    summary="The records a search finds, as MARC21 or MARCXML (public; 10,000 at most)",
    response_class=Response,
    responses={200: {"content": {"application/marc": {}, "application/marcxml+xml": {}}}},
)
def export(
    session: ReadSession,
    index: Index,
    filters: Filters,
    q: Annotated[str, Query(max_length=500)] = "",
    format: Literal["marc", "marcxml"] = "marcxml",
) -> Response:
    ids = index.matching_ids(SearchQuery(q, {k: v for k, v in filters.items() if v}), EXPORT_LIMIT)
    body = (
        service.export_marc(session, ids)
        if format == "marc"
        else service.export_marcxml(session, ids)
    )
    name = "records.mrc" if format == "marc" else "records.xml"
    return Response(
        body,
        media_type=MARC_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Record-Count": str(len(ids)),
        },
    )


@router.get(
    "/records/{record_id}",
    summary="A record with its holdings (public); ?format=marcxml or marc for MARC",
    response_model=RecordOut,
)
def get_record(
    record_id: DbId,
    session: ReadSession,
    format: Literal["json", "marcxml", "marc"] = "json",
) -> RecordOut | Response:
    record = service.get_record(session, record_id)
    if format == "marc":
        return Response(service.export_marc(session, [record.id]), media_type=MARC_TYPES["marc"])
    if format == "marcxml":
        return Response(
            service.export_marcxml(session, [record.id]), media_type=MARC_TYPES["marcxml"]
        )
    return record_out(session, record)


def record_out(session: Session, record: Record) -> RecordOut:
    items = list(session.scalars(select(Item).where(Item.record_id == record.id).order_by(Item.id)))
    return RecordOut(
        id=record.id,
        title=record.title,
        title_vernacular=record.title_vernacular,
        responsibility=record.responsibility,
        authors=record.authors,
        subjects=record.subjects,
        isbns=record.isbns,
        invalid_isbns=record.invalid_isbns,
        publisher=record.publisher,
        year=record.year,
        language=record.language,
        edition=record.edition,
        physical_description=record.physical_description,
        series=record.series,
        notes=record.notes,
        lcc=record.lcc,
        ddc=record.ddc,
        clc=record.clc,
        call_number=record.call_number,
        holdings=holdings_of(session, [record.id]).get(record.id, []),
        items=[item_out(i) for i in items],
    )


def item_out(i: Item) -> ItemOut:
    return ItemOut(
        id=i.id,
        record_id=i.record_id,
        barcode=i.barcode,
        library_id=i.org_unit_id,
        location_id=i.location_id,
        call_number=i.call_number,
        item_type=i.item_type,
        status=i.status,
        circulates=i.circulates,
    )


Cataloguer = Annotated[Actor, Depends(require_permission(Permission.CATALOG_MANAGE))]


@router.post(
    "/records",
    status_code=http_status.HTTP_201_CREATED,
    summary="Catalogue a new record (cataloguers): the fields are written into MARC21",
)
def create_record(body: RecordIn, session: DbSession, actor: Cataloguer, now: Now) -> RecordOut:
    record = service.save_record(session, actor, None, RecordForm(**body.model_dump()), at=now)
    return record_out(session, record)


@router.put(
    "/records/{record_id}",
    summary="Change a record (cataloguers): MARC fields of unchanged values stay as they were",
)
def update_record(
    record_id: DbId, body: RecordIn, session: DbSession, actor: Cataloguer, now: Now
) -> RecordOut:
    form = RecordForm(**body.model_dump())
    record = service.save_record(session, actor, record_id, form, at=now)
    return record_out(session, record)


@router.get("/items/{item_id}", summary="A copy (public)")
def get_item(item_id: DbId, session: ReadSession) -> ItemOut:
    return item_out(service.get_item(session, item_id))


@router.post(
    "/items",
    status_code=http_status.HTTP_201_CREATED,
    summary="Add a copy to a record (staff who catalogue for its library)",
)
def create_item(body: ItemIn, session: DbSession, actor: Cataloguer, now: Now) -> ItemOut:
    data = service.NewItem(
        record_id=body.record_id,
        barcode=body.barcode,
        org_unit_id=body.library_id,
        item_type=body.item_type,
        location_id=body.location_id,
        call_number=body.call_number,
        rfid_tag=body.rfid_tag,
        price=body.price,
        status=body.status,
    )
    return item_out(service.add_item(session, actor, data, at=now))


@router.patch(
    "/items/{item_id}", summary="Change a copy (staff who catalogue for its library); audited"
)
def change_item(
    item_id: DbId, body: ItemPatch, session: DbSession, actor: Cataloguer, now: Now
) -> ItemOut:
    given = body.model_fields_set
    change = service.ItemChange(
        **{k: getattr(body, k) for k in given if k != "location_id"},
        location_id=body.location_id,
        clear_location="location_id" in given and body.location_id is None,
    )
    return item_out(service.update_item(session, actor, item_id, change, at=now))
