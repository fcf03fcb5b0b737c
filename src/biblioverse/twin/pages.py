"""Pages of the twin: the 2D map with the route drawn and directions beside it (printable,
the accessible way), the "you are here" signs to print and post (a QR code per starting
point that opens the map from there), the 3D library, the card of a book clicked in 3D, and
the staff console's floor plans (see the branch's plan, send a new one as GeoJSON)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.datastructures import UploadFile

from biblioverse import catalog, i18n, libraries
from biblioverse.access import Actor, Permission
from biblioverse.deps import DbSession, Now, ReadSession
from biblioverse.errors import DomainError, PermissionDenied, ValidationFailed
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.twin import navigation, rules, service
from biblioverse.twin.api import Cache
from biblioverse.twin.errors import PlanNotFound
from biblioverse.twin.models import FloorPlan
from biblioverse.web.importmap import IMPORT_MAP
from biblioverse.web.pages import (
    Csrf,
    PageActor,
    chosen_of,
    error_page,
    render,
    staff_page,
)

router = APIRouter(include_in_schema=False)

POI_MARKS = {
    "entrance": "⇥",
    "service_desk": "i",
    "kiosk": "K",
    "return_point": "R",
    "gate": "G",
    "toilet": "WC",
    "lift": "L",
    "stairs": "S",
    "escalator": "E",
    "seat": "·",
    "info": "i",
    "marker": "★",
}
STARTS = ("entrance", "marker", "kiosk", "service_desk", "lift", "return_point", "info")


@dataclass
class FloorDrawing:
    """One floor as SVG shapes, y turned to point down (the plan's y points north)."""

    level: int
    name: str
    width: float
    height: float
    outline: str
    zones: list[dict[str, Any]] = field(default_factory=list)
    walls: list[str] = field(default_factory=list)
    shelves: list[dict[str, Any]] = field(default_factory=list)
    pois: list[dict[str, Any]] = field(default_factory=list)
    route: str = ""
    start: tuple[float, float] | None = None
    end: tuple[float, float] | None = None


def _pts(coords: Any, top: float) -> str:
    return " ".join(f"{x:.2f},{top - y:.2f}" for x, y in coords)


def floor_label(floor: rules.Floor, level: int, *, zh: bool) -> str:
    """A floor as the record page names it ("Floor 2", the location's floor number), then
    the plan's own name for it when that says something else ("Floor 2 · Science")."""
    base = _("Floor %(n)d") % {"n": level}
    own = (floor.name_zh if zh else floor.name_en).strip()
    return base if not own or own.replace(" ", "") == base.replace(" ", "") else f"{base} · {own}"


def draw(
    plan: rules.Plan,
    level: int,
    *,
    zh: bool,
    goal_shelf: str | None = None,
    route: navigation.Route | None = None,
) -> FloorDrawing:
    floor = plan.floors[level]
    _, _, maxx, maxy = floor.outline.bounds
    top = maxy
    d = FloorDrawing(
        level,
        floor_label(floor, level, zh=zh),
        maxx,
        maxy,
        _pts(floor.outline.exterior.coords, top),
    )
    for z in plan.zones:
        if z.level == level:
            c = z.area.centroid
            d.zones.append(
                {
                    "points": _pts(z.area.exterior.coords, top),
                    "kind": z.kind.value,
                    "name": z.name_zh if zh else z.name_en,
                    "x": c.x,
                    "y": top - z.area.bounds[3] + 1.2,
                }
            )
    d.walls = [_pts(w.line.coords, top) for w in plan.walls if w.level == level]
    for s in plan.shelves:
        if s.level == level:
            d.shelves.append(
                {
                    "points": _pts(s.footprint.exterior.coords, top),
                    "code": s.code,
                    "goal": s.code == goal_shelf,
                    "x": s.x,
                    "y": top - s.y,
                }
            )
    for p in plan.pois:
        if p.level == level and p.kind != rules.PoiKind.SEAT:
            d.pois.append(
                {
                    "x": p.x,
                    "y": top - p.y,
                    "kind": p.kind.value,
                    "mark": POI_MARKS.get(p.kind.value, "•"),
                    "name": (p.name_zh if zh else p.name_en) or p.code,
                }
            )
    if route is not None:
        legs = [leg for leg in route.legs if leg.level == level]
        if legs:
            d.route = " ".join(_pts(leg.points, top) for leg in legs)
            sx, sy = legs[0].points[0]
            ex, ey = legs[-1].points[-1]
            d.start, d.end = (sx, top - sy), (ex, top - ey)
    return d


def _starts(plan: rules.Plan, zh: bool) -> list[tuple[str, str]]:
    out = []
    for p in sorted(
        plan.pois,
        key=lambda p: (STARTS.index(p.kind.value) if p.kind.value in STARTS else 99, p.level),
    ):
        if p.kind.value in STARTS:
            floor = plan.floors[p.level]
            name = (p.name_zh if zh else p.name_en) or p.code
            out.append((f"poi:{p.code}", f"{name} · {floor.name_zh if zh else floor.name_en}"))
    return out


def _goals(plan: rules.Plan, zh: bool) -> list[tuple[str, str]]:
    out = []
    for z in plan.zones:
        floor = plan.floors[z.level]
        out.append(
            (
                f"zone:{z.code}",
                f"{z.name_zh if zh else z.name_en} · {floor.name_zh if zh else floor.name_en}",
            )
        )
    for p in plan.pois:
        if p.kind.value in ("service_desk", "kiosk", "return_point", "toilet", "info"):
            floor = plan.floors[p.level]
            out.append(
                (
                    f"poi:{p.code}",
                    f"{(p.name_zh if zh else p.name_en) or p.code} · "
                    f"{floor.name_zh if zh else floor.name_en}",
                )
            )
    return out


@router.get("/libraries/{library_id}/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    library_id: DbId,
    session: ReadSession,
    actor: PageActor,
    cache: Cache,
    from_: Annotated[str, Query(alias="from", max_length=80)] = "",
    to: Annotated[str, Query(max_length=80)] = "",
    step_free: bool = False,
    here: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The floor plan, and with a goal, the way there: drawn on each floor it crosses,
    with the directions beside it. ``here``: the code of a sign the staff printed, passed
    on to borrowing by phone (which checks it)."""
    unit = libraries.get_unit(session, library_id)
    locale = i18n.get_locale()
    zh = locale == "zh_Hans"
    ctx: dict[str, Any] = {
        "here": here,
        "unit": unit,
        "unit_name": unit.name_zh if zh else unit.name_en,
        "step_free": step_free,
        "to": to,
        "section": "catalog",
    }
    try:
        nav = cache.navigator(session, library_id)
    except PlanNotFound:
        return render(request, "twin/map.html", actor, 404, no_plan=True, **ctx)
    plan = nav.plan
    start = from_ or next(
        (f"poi:{p.code}" for p in plan.pois if p.kind == rules.PoiKind.ENTRANCE), ""
    )
    ctx.update(start=start, starts=_starts(plan, zh), goals=_goals(plan, zh))
    found = None
    problem = ""
    status = 200
    if to:
        try:
            found = service.route(
                session,
                nav,
                library_id,
                start,
                to,
                step_free=step_free,
                t=i18n.translations(locale),
                zh=zh,
            )
        except DomainError as exc:
            problem = _route_problem(exc)
            status = 422 if exc.kind == "invalid" else 404
    goal_shelf = found.goal.code if found and found.goal.kind == "shelf" else None
    if found is not None:
        levels = []
        for leg in found.route.legs:
            if leg.level not in levels:
                levels.append(leg.level)
    else:
        levels = sorted(plan.floors)
    drawings = [
        draw(plan, lv, zh=zh, goal_shelf=goal_shelf, route=found.route if found else None)
        for lv in levels
    ]
    record = None
    if found is not None and found.spot is not None:
        record = catalog.get_record(session, found.spot.item.record_id)
    return render(
        request,
        "twin/map.html",
        actor,
        status,
        found=found,
        problem=problem,
        drawings=drawings,
        record=record,
        **ctx,
    )


def _here_url(request: Request, library_id: int, code: str, here: str | None = None) -> str:
    """What a sign's QR code holds: the map from that point, on this server's address as
    the request reached it (behind a proxy, its host and scheme); on the signs staff
    print, the library's "you are here" code too (borrowing by phone, ADR 0040)."""
    base = str(request.base_url).rstrip("/")
    url = f"{base}/libraries/{library_id}/map?from={quote(f'poi:{code}', safe=':')}"
    return f"{url}&here={quote(here)}" if here else url


def _code_for_signs(session: ReadSession, actor: Actor | None, library_id: int) -> str | None:
    """The library's "you are here" code, for staff who make its signs; None for others
    (the public sheet opens the map only)."""
    if actor is None or not actor.is_staff:
        return None
    try:
        return libraries.here_code(session, actor, library_id)
    except PermissionDenied:
        return None


def _qr(url: str) -> Any:
    import segno  # with the first sign: only this page draws QR codes

    # level M: the code still reads with 15% of it smudged or covered, as signs get
    return segno.make(url, error="m", micro=False)


@router.get("/libraries/{library_id}/signs", response_class=HTMLResponse)
def signs_page(
    request: Request, library_id: DbId, session: ReadSession, actor: PageActor, cache: Cache
) -> Response:
    """A printable sheet of "you are here" signs: one per starting point of the plan
    (entrances, sign posts, kiosks, desks, lifts), each with the QR code of the map from
    there, its name and its floor."""
    unit = libraries.get_unit(session, library_id)
    zh = i18n.get_locale() == "zh_Hans"
    ctx: dict[str, Any] = {"unit": unit, "unit_name": unit.name_zh if zh else unit.name_en}
    try:
        plan = cache.navigator(session, library_id).plan
    except PlanNotFound:
        return render(request, "twin/signs.html", actor, 404, no_plan=True, signs=[], **ctx)
    here = _code_for_signs(session, actor, library_id)
    ctx["staff_signs"] = here is not None
    signs = []
    for value, label in _starts(plan, zh):
        code = value.removeprefix("poi:")
        url = _here_url(request, library_id, code, here)
        signs.append(
            {
                "code": code,
                "label": label,
                "url": url,
                # segno's SVG is a path of the code's modules, with no text of ours in it
                "svg": Markup(_qr(url).svg_inline(scale=4, border=4, omitsize=True)),  # noqa: S704
            }
        )
    return render(request, "twin/signs.html", actor, signs=signs, **ctx)


@router.get("/libraries/{library_id}/signs/{code}.svg")
def sign_code(
    request: Request,
    library_id: DbId,
    code: str,
    session: ReadSession,
    cache: Cache,
    actor: PageActor,
) -> Response:
    """One sign's QR code as an SVG file, for a sign maker."""
    libraries.get_unit(session, library_id)
    try:
        plan = cache.navigator(session, library_id).plan
    except PlanNotFound:
        return Response("this library has no floor plan", 404, media_type="text/plain")
    if not any(p.code == code and p.kind.value in STARTS for p in plan.pois):
        return Response(f"no starting point {code!r} on the plan", 404, media_type="text/plain")
    out = io.BytesIO()
    here = _code_for_signs(session, actor, library_id)
    _qr(_here_url(request, library_id, code, here)).save(out, kind="svg", scale=10, border=4)
    return Response(
        out.getvalue(),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'inline; filename="here-{code}.svg"'},
    )


def _route_problem(exc: DomainError) -> str:
    if exc.code == "unreachable":
        return (
            _("There is no way there without stairs.")
            if (exc.details or {}).get("step_free")
            else _("There is no way there.")
        )
    if exc.code == "place_not_found":
        return _("That place is not on this library's floor plan.")
    return exc.message


@router.get("/libraries/{library_id}/3d", response_class=HTMLResponse)
def library_3d(
    request: Request, library_id: DbId, session: ReadSession, actor: PageActor, cache: Cache
) -> Response:
    """The 3D library: walk it, click a book, hold it; the map page is its plain twin."""
    unit = libraries.get_unit(session, library_id)
    zh = i18n.get_locale() == "zh_Hans"
    try:
        cache.navigator(session, library_id)
    except PlanNotFound:
        return render(
            request,
            "twin/map.html",
            actor,
            404,
            no_plan=True,
            unit=unit,
            unit_name=unit.name_zh if zh else unit.name_en,
        )
    return render(
        request,
        "twin/library3d.html",
        actor,
        unit=unit,
        unit_name=unit.name_zh if zh else unit.name_en,
        import_map=IMPORT_MAP,
        section="catalog",
    )


@router.get("/twin/items/{item_id}/card", response_class=HTMLResponse)
def book_card(request: Request, item_id: DbId, session: ReadSession, actor: PageActor) -> Response:
    """What a reader sees on clicking a book in 3D: the title, whether it may be borrowed,
    and what to do: hold it, or take it from the shelf and borrow it by phone or kiosk."""
    item = catalog.get_item(session, item_id)
    record = catalog.get_record(session, item.record_id)
    return render(
        request,
        "twin/_card.html",
        actor,
        item=item,
        record=record,
        library_id=item.at_unit_id or item.org_unit_id,
    )


# --- the staff console: floor plans -------------------------------------------------------------


PlanKeeper = Annotated[
    Actor,
    Depends(staff_page(Permission.PLANS_MANAGE, N_("Your role does not include floor plans."))),
]


def _plans_view(
    request: Request,
    session: DbSession,
    who: Actor,
    cache: Cache,
    library: str,
    *,
    status_code: int = 200,
    problems: list[tuple[str, str]] | None = None,
    saved: int = 0,
    file_name: str = "",
) -> HTMLResponse:
    places = libraries.places_for(session, who, Permission.PLANS_MANAGE)
    chosen = chosen_of(places, library)
    zh = i18n.get_locale() == "zh_Hans"
    current: dict[str, Any] | None = None
    if chosen is not None and (row := session.get(FloorPlan, chosen.id)) is not None:
        plan = cache.navigator(session, chosen.id).plan
        current = {
            "version": row.version,
            "updated_at": row.updated_at,
            "floors": [f.name_zh if zh else f.name_en for _lv, f in sorted(plan.floors.items())],
            "zones": len(plan.zones),
            "shelves": len(plan.shelves),
            "pois": len(plan.pois),
        }
    return render(
        request,
        "staff/floor_plans.html",
        who,
        status_code,
        section="plans",
        places=places,
        chosen=chosen,
        current=current,
        problems=problems or [],
        saved=saved,
        file_name=file_name,
    )


@router.get("/staff/floor-plans", response_class=HTMLResponse)
def floor_plans_page(
    request: Request,
    session: DbSession,
    who: PlanKeeper,
    cache: Cache,
    library: str = "",
    saved: int = 0,
) -> Response:
    """A branch's plan as it stands (version, floors, what is on them), where to see it,
    and a form to replace it with a GeoJSON file."""
    return _plans_view(request, session, who, cache, library, saved=saved)


PLAN_FILE_BYTES = 900_000  # under the app's body limit, with room for the form around it


@router.post("/staff/floor-plans", response_class=HTMLResponse, dependencies=[Csrf])
async def upload_floor_plan(
    request: Request, session: DbSession, who: PlanKeeper, now: Now, cache: Cache
) -> Response:
    """Check a GeoJSON file whole and store it as the branch's plan; every problem is
    listed with the feature it concerns, and nothing changes unless all is well."""
    form = await request.form()
    library = str(form.get("library", ""))[:20]
    unit = next(
        (
            u
            for u in libraries.places_for(session, who, Permission.PLANS_MANAGE)
            if str(u.id) == library
        ),
        None,
    )
    if unit is None:
        return error_page(request, 403, _("Your role does not include this library's plan."))
    upload = form.get("plan")
    name = (upload.filename or "")[:120] if isinstance(upload, UploadFile) else ""
    problems: list[tuple[str, str]] = []
    doc: Any = None
    if not isinstance(upload, UploadFile) or not name:
        problems.append(("plan", _("Choose a GeoJSON file of the plan.")))
    else:
        raw = await upload.read(PLAN_FILE_BYTES + 1)
        if len(raw) > PLAN_FILE_BYTES:
            problems.append(("plan", _("The file is larger than 900 KB.")))
        else:
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                problems.append(
                    ("plan", _("%(file)s is not JSON: %(reason)s") % {"file": name, "reason": exc})
                )
    if not problems:
        try:
            with session.begin_nested():
                row, nav = service.import_plan(session, who, unit, doc, at=now)
            session.commit()
            cache.put(unit.id, row.version, nav)
            return RedirectResponse(
                f"/staff/floor-plans?library={unit.id}&saved={row.version}", status_code=303
            )
        except ValidationFailed as exc:
            problems = [(e.field, i18n.field_message(e)) for e in exc.errors]
        except PermissionDenied:
            return error_page(request, 403, _("Your role does not include this library's plan."))
    return _plans_view(
        request, session, who, cache, library, status_code=422, problems=problems, file_name=name
    )


@router.post("/libraries/{library_id}/signs/new-code", dependencies=[Csrf])
def new_sign_code(library_id: DbId, session: DbSession, who: PlanKeeper, now: Now) -> Response:
    """A new "you are here" code: the signs printed before open the map but no longer let
    a phone borrow; print the sheet again."""
    libraries.renew_here_code(session, who, library_id, at=now)
    return RedirectResponse(f"/libraries/{library_id}/signs?renewed=1", status_code=303)
