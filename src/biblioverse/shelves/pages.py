"""Live pages of the staff console for the shelves of a library: copies moving, mis-shelved
copies and where they belong, inventories under way. The live part is a fragment the page
asks for again every few seconds."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from biblioverse import i18n, libraries
from biblioverse.access import Actor, Permission
from biblioverse.deps import DbSession, Now
from biblioverse.errors import DomainError, ValidationFailed
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.shelves import inventory, reports
from biblioverse.shelves.api import REPORTS, report_rows, table
from biblioverse.web.pages import (
    Csrf,
    chosen_of,
    render,
    staff_page,
)

router = APIRouter(include_in_schema=False)

SCOPES = {
    "library": N_("The whole library"),
    "floor": N_("A floor"),
    "zone": N_("A zone"),
    "shelves": N_("A run of shelves"),
}


ShelfKeeper = Annotated[
    Actor,
    Depends(staff_page(Permission.CATALOG_MANAGE, N_("Your role does not include the shelves."))),
]


def _shelf_live(session: DbSession, unit_id: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "counts": reports.reconcile(session, [unit_id], at=now),
        "shelves": reports.shelf_counts(session, unit_id),
        "misplaced": reports.misplaced(session, unit_id, limit=50),
        "lent": reports.lent_on_shelf(session, unit_id, limit=20),
        "moves": reports.recent_moves(session, unit_id, limit=12),
        "unknown": reports.unknown_tags(session, unit_id, limit=10),
    }


def _inventories(session: DbSession, who: Actor, unit_id: int) -> list[tuple[Any, Any]]:
    out = []
    for inv in inventory.of_library(session, who, unit_id)[:5]:
        out.append((inv, inventory.progress(session, inv) if inv.state == "open" else None))
    return out


def _shelves_view(
    request: Request,
    session: DbSession,
    who: Actor,
    now: dt.datetime,
    library: str,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    closed: int = 0,
) -> HTMLResponse:
    """The shelves page of the chosen library (the first of the actor's, if none is)."""
    places = libraries.places_for(session, who, Permission.CATALOG_MANAGE)
    chosen = chosen_of(places, library)
    ctx: dict[str, Any] = {}
    if chosen is not None:
        ctx = _shelf_live(session, chosen.id, now)
        ctx["inventories"] = _inventories(session, who, chosen.id)
        ctx["locations"] = libraries.locations_of(session, chosen.id)
        ctx["all_shelves"] = libraries.shelves_of(session, chosen.id)
    return render(
        request,
        "staff/shelves.html",
        who,
        status_code,
        places=places,
        chosen=chosen,
        scopes=SCOPES,
        closed=closed,
        errors=errors or {},
        values=values or {},
        section="shelves",
        **ctx,
    )


@router.get("/staff/shelves", response_class=HTMLResponse)
def shelves_page(
    request: Request,
    session: DbSession,
    who: ShelfKeeper,
    now: Now,
    library: str = "",
    closed: int = 0,
) -> Response:
    return _shelves_view(request, session, who, now, library, closed=closed)


@router.get("/staff/shelves/live", response_class=HTMLResponse)
def shelves_live(
    request: Request, session: DbSession, who: ShelfKeeper, now: Now, library: str = ""
) -> Response:
    chosen = chosen_of(libraries.places_for(session, who, Permission.CATALOG_MANAGE), library)
    if chosen is None:
        return Response(status_code=204)
    return render(
        request,
        "staff/_shelves_live.html",
        who,
        chosen=chosen,
        scopes=SCOPES,  # an open inventory's row names its scope
        inventories=_inventories(session, who, chosen.id),
        **_shelf_live(session, chosen.id, now),
    )


@router.get("/staff/shelves/{unit_id}/{kind}.csv")
def shelves_csv(
    request: Request, unit_id: DbId, kind: str, session: DbSession, who: ShelfKeeper, now: Now
) -> Response:
    unit = libraries.get_unit(session, unit_id)
    if kind not in REPORTS or not who.can(Permission.CATALOG_MANAGE, unit.path):
        return Response(status_code=404)
    rows = report_rows(session, unit_id, kind, now)
    return table(rows, "csv", f"{kind}-{unit_id}", tz=unit.timezone)


@router.get("/staff/inventories/{inventory_id}.csv")
def inventory_csv(
    request: Request, inventory_id: DbId, session: DbSession, who: ShelfKeeper
) -> Response:
    try:
        inv = inventory.get(session, who, inventory_id)
    except DomainError:
        return Response(status_code=404)
    rows = [line.__dict__ for line in inventory.report(session, inv)]
    tz = libraries.get_unit(session, inv.org_unit_id).timezone
    return table(rows, "csv", f"inventory-{inventory_id}", tz=tz)


@router.post("/staff/inventories", response_class=HTMLResponse, dependencies=[Csrf])
async def start_inventory(
    request: Request, session: DbSession, who: ShelfKeeper, now: Now
) -> Response:
    form = await request.form()
    values = {k: str(v)[:40] for k, v in form.items() if isinstance(v, str)}
    library = values.get("library", "")

    def number(name: str) -> int | None:
        raw = values.get(name, "").strip()
        return int(raw) if raw.lstrip("-").isdigit() else None

    data = inventory.ScopeInput(
        scope=values.get("scope", ""),
        floor=number("floor"),
        location_id=number("location_id"),
        first_shelf=values.get("first_shelf") or None,
        last_shelf=values.get("last_shelf") or None,
    )
    try:
        with session.begin_nested():
            inventory.start(session, who, int(library) if library.isdigit() else 0, data, at=now)
    except ValidationFailed as exc:
        errors = {e.field: i18n.field_message(e) for e in exc.errors}
        return _shelves_view(
            request, session, who, now, library, status_code=422, errors=errors, values=values
        )
    return RedirectResponse(f"/staff/shelves?library={library}#inventory", status_code=303)


@router.post("/staff/inventories/{inventory_id}/close", dependencies=[Csrf])
async def close_inventory(
    request: Request, inventory_id: DbId, session: DbSession, who: ShelfKeeper, now: Now
) -> Response:
    form = await request.form()
    inv = inventory.close(
        session, who, inventory_id, mark_missing=form.get("mark_missing") == "on", at=now
    )
    return RedirectResponse(
        f"/staff/shelves?library={inv.org_unit_id}&closed={inv.id}#inventory", status_code=303
    )
