"""HTTP API of the digital twin: floor plans (GeoJSON in and out), where a copy stands, and
routes, for the map and 3D pages, kiosk screens and robots."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from biblioverse import catalog, i18n, libraries
from biblioverse.catalog.api import Index
from biblioverse.catalog.search import SearchQuery
from biblioverse.deps import CurrentStaff, DbSession, Now, ReadSession
from biblioverse.fields import DbId
from biblioverse.twin import scene, service
from biblioverse.twin.errors import PlaceNotFound

router = APIRouter(tags=["twin"])
Lang = Literal["en", "zh_Hans"]


def twins(request: Request) -> service.Twins:
    return request.app.state.twins  # type: ignore[no-any-return]


Cache = Annotated[service.Twins, Depends(twins)]


@router.get(
    "/libraries/{library_id}/floor-plan",
    summary="A branch's floor plan as GeoJSON (metres in the building's plane)",
    response_description="a GeoJSON FeatureCollection",
)
def get_floor_plan(library_id: DbId, session: ReadSession) -> JSONResponse:
    libraries.get_unit(session, library_id)
    doc = service.export_plan(session, library_id)
    return JSONResponse(doc, media_type="application/geo+json")


@router.put(
    "/libraries/{library_id}/floor-plan",
    summary="Replace a branch's floor plan with a GeoJSON FeatureCollection",
    description=(
        "The plan is checked whole: shapes, shelves inside their floor and apart, a way into "
        "every floor, every zone, shelf and point of interest reachable from an entrance. "
        "Each problem names its feature. Nothing is stored unless all is well."
    ),
)
def put_floor_plan(
    library_id: DbId,
    session: DbSession,
    actor: CurrentStaff,
    now: Now,
    cache: Cache,
    doc: Any = Body(..., description="a GeoJSON FeatureCollection"),
) -> dict[str, Any]:
    unit = libraries.get_unit(session, library_id)
    row, nav = service.import_plan(session, actor, unit, doc, at=now)
    session.commit()
    cache.put(unit.id, row.version, nav)
    plan = nav.plan
    return {
        "library_id": unit.id,
        "version": row.version,
        "floors": sorted(plan.floors),
        "shelves": len(plan.shelves),
        "zones": len(plan.zones),
        "pois": len(plan.pois),
    }


@router.get(
    "/libraries/{library_id}/route",
    summary="A walking route with turn-by-turn directions",
    description=(
        "Places are named `poi:CODE` (a point of interest; a QR code's 'you are here' sign "
        "is a `marker`), `zone:CODE`, `shelf:CODE` or `shelf:CODE:A`, `item:ID`, "
        "`barcode:CODE` (a copy: its shelf from the smart shelves, or from its call number) "
        "and `at:FLOOR,X,Y` (metres). `step_free` avoids stairs and escalators."
    ),
)
def get_route(
    library_id: DbId,
    session: ReadSession,
    cache: Cache,
    from_: Annotated[str, Query(alias="from", max_length=80)],
    to: Annotated[str, Query(max_length=80)],
    step_free: bool = False,
    lang: Lang | None = None,
) -> dict[str, Any]:
    libraries.get_unit(session, library_id)
    nav = cache.navigator(session, library_id)
    locale = lang or i18n.get_locale()
    found = service.route(
        session,
        nav,
        library_id,
        from_,
        to,
        step_free=step_free,
        t=i18n.translations(locale),
        zh=locale == "zh_Hans",
    )
    return {"library_id": library_id, **found.as_dict()}


@router.get(
    "/items/{item_id}/spot",
    summary="Where a copy stands on its library's floor plan",
)
def get_item_spot(item_id: DbId, session: ReadSession, cache: Cache) -> dict[str, Any]:
    item = catalog.get_item(session, item_id)
    unit_id = item.at_unit_id or item.org_unit_id
    nav = cache.navigator(session, unit_id)
    return {"library_id": unit_id, **service.locate(session, item, nav.plan).as_dict()}


@router.get(
    "/libraries/{library_id}/scene",
    summary="What the 3D library draws: floors, walls, shelves, points of interest and books",
    description=(
        "Books come as parallel arrays (one entry per copy on a shelf of the plan): the "
        "copy's id, its shelf (an index into `shelves`), side, shelf level, slot and subject "
        "class, so that a branch's fifty thousand books travel in a few hundred kilobytes."
    ),
)
def get_scene(library_id: DbId, session: ReadSession, cache: Cache) -> JSONResponse:
    libraries.get_unit(session, library_id)
    plan = cache.plan(session, library_id)
    return JSONResponse(scene.build(session, library_id, plan))


@router.get(
    "/libraries/{library_id}/find",
    summary="The copy in this library that a search finds first (for the 3D library's search)",
)
def find_copy(
    library_id: DbId,
    session: ReadSession,
    index: Index,
    q: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    libraries.get_unit(session, library_id)
    hits = index.search(SearchQuery(q, limit=20, facets=())).hits
    item = service.first_copy(session, library_id, [h.record_id for h in hits])
    if item is None:
        raise PlaceNotFound("q", q, "no copy in this library matches")
    record = catalog.get_record(session, item.record_id)
    return {
        "item_id": item.id,
        "record_id": record.id,
        "title": record.title,
        "status": item.status,
    }
