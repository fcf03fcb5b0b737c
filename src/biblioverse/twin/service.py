"""Use cases of the twin: keep a branch's floor plan, find where a copy stands on it, and
route a reader (or a robot) there."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from babel.support import NullTranslations
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, shelves
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.errors import FieldError, ValidationFailed
from biblioverse.i18n import N_
from biblioverse.twin import directions, navigation, rules
from biblioverse.twin.errors import NoRoute, PlaceNotFound, PlanNotFound
from biblioverse.twin.models import FloorPlan

WALK_M_PER_S = 1.0  # an unhurried reader among shelves


# --- the plan --------------------------------------------------------------------------


def reachability(nav: navigation.Navigator) -> list[FieldError]:
    """What no reader could get to from an entrance: zones, shelves, points of interest."""
    import networkx as nx  # with the first plan (see navigation.Navigator)

    plan, graph = nav.plan, nav.graph
    entrances = [
        nav.poi_nodes[p.code]
        for p in plan.pois
        if p.kind == rules.PoiKind.ENTRANCE and p.code in nav.poi_nodes
    ]
    reach: set[int] = set()
    for n in entrances:
        if n not in reach:
            reach |= nx.node_connected_component(graph, n)
    out: list[FieldError] = []
    for z in plan.zones:
        zn = nav.zone_nodes.get(z.code)
        if zn is None or zn not in reach:
            out.append(
                FieldError(
                    f"zone {z.code}",
                    "unreachable",
                    N_("zone %(code)s cannot be reached from an entrance"),
                    {"code": z.code},
                )
            )
    for s in plan.shelves:
        sides = nav.shelf_nodes.get(s.code, {})
        if not any(n in reach for n in sides.values()):
            why = (
                N_("shelf %(code)s cannot be reached: no aisle in front of it")
                if not sides
                else N_("shelf %(code)s cannot be reached: no way to it from an entrance")
            )
            out.append(FieldError(f"shelf {s.code}", "unreachable", why, {"code": s.code}))
    for p in plan.pois:
        pn = nav.poi_nodes.get(p.code)
        if pn is None:
            out.append(
                FieldError(
                    f"poi {p.code}",
                    "blocked",
                    N_("%(kind)s %(code)s stands where no one can walk"),
                    {"kind": p.kind.value, "code": p.code},
                )
            )
        elif pn not in reach:
            out.append(
                FieldError(
                    f"poi {p.code}",
                    "unreachable",
                    N_("%(kind)s %(code)s cannot be reached from an entrance"),
                    {"kind": p.kind.value, "code": p.code},
                )
            )
    return out[:200]


def import_plan(
    session: Session, actor: Actor, unit: libraries.OrgUnit, doc: Any, *, at: dt.datetime
) -> tuple[FloorPlan, navigation.Navigator]:
    """Check a GeoJSON plan whole and store it in place of the branch's plan. A shelf with a
    call-number range that the catalogue does not know yet is added to its zone's location;
    the ranges of shelves the catalogue knows stay the catalogue's."""
    libraries.ensure(actor, Permission.PLANS_MANAGE, unit.path)
    plan = rules.read_geojson(doc)
    nav = navigation.Navigator(plan)
    problems = reachability(nav)
    if problems:
        raise ValidationFailed(problems)
    locations = {loc.code: loc for loc in libraries.locations_of(session, unit.id)}
    known = {s.code for s in libraries.shelves_of(session, unit.id)}
    added: list[str] = []
    for s in plan.shelves:
        if s.code in known or not (s.first_call and s.last_call):
            continue
        loc = locations.get(s.zone or "")
        if loc is None:
            problems.append(
                FieldError(
                    f"shelf {s.code}.zone",
                    "not_a_location",
                    N_(
                        "shelf %(code)s holds a call-number range, so its zone must be one "
                        "of the library's locations"
                    ),
                    {"code": s.code},
                )
            )
            continue
        try:
            libraries.add_shelf(  # audited with the plan, below
                session,
                None,
                unit,
                libraries.ShelfInput(
                    loc.id, s.code, s.first_call, s.last_call, s.scheme or "lcc", s.levels, s.sides
                ),
                at=at,
            )
            added.append(s.code)
        except ValidationFailed as exc:
            problems.extend(
                FieldError(f"shelf {s.code}.{e.field}", e.code, e.template, e.params)
                for e in exc.errors
            )
    if problems:
        raise ValidationFailed(problems)
    row = session.get(FloorPlan, unit.id)
    stored = rules.to_geojson(plan)
    if row is None:
        row = FloorPlan(
            org_unit_id=unit.id,
            version=1,
            document=stored,
            updated_at=at,
            updated_by=actor.id if actor.kind == "staff" and actor.id else None,
        )
        session.add(row)
    else:
        row.version += 1
        row.document = stored
        row.updated_at = at
        row.updated_by = actor.id if actor.kind == "staff" and actor.id else None
    session.flush()
    log_action(
        session,
        actor,
        "floor_plan.import",
        entity="floor_plan",
        entity_id=unit.id,
        org_unit_id=unit.id,
        at=at,
        details={
            "version": row.version,
            "floors": len(plan.floors),
            "shelves": len(plan.shelves),
            "shelves_added": added,
            "pois": len(plan.pois),
        },
    )
    return row, nav


def plan_row(session: Session, unit_id: int) -> FloorPlan:
    row = session.get(FloorPlan, unit_id)
    if row is None:
        raise PlanNotFound(unit_id)
    return row


def export_plan(session: Session, unit_id: int) -> dict[str, Any]:
    """The stored plan as GeoJSON, with each shelf's range as the catalogue has it now."""
    plan = rules.read_geojson(plan_row(session, unit_id).document)
    ranges = {
        s.code: (s.scheme, s.first_call, s.last_call)
        for s in libraries.shelves_of(session, unit_id)
    }
    return rules.to_geojson(plan, shelf_ranges=ranges)


class Twins:
    """The routing graphs of the branches' plans, built on first use and kept by plan
    version: derived from the database like the search index, so any worker can rebuild
    them, and a new import is picked up by the next request."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._building: dict[tuple[int, int], threading.Lock] = {}
        self._cache: OrderedDict[tuple[int, int], navigation.Navigator] = OrderedDict()
        self._plans: OrderedDict[tuple[int, int], rules.Plan] = OrderedDict()

    def put(self, unit_id: int, version: int, nav: navigation.Navigator) -> None:
        with self._lock:
            self._cache[(unit_id, version)] = nav
            self._cache.move_to_end((unit_id, version))
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)

    def _version(self, session: Session, unit_id: int) -> int:
        version = session.scalar(select(FloorPlan.version).where(FloorPlan.org_unit_id == unit_id))
        if version is None:
            raise PlanNotFound(unit_id)
        return version

    def plan(self, session: Session, unit_id: int, version: int | None = None) -> rules.Plan:
        """The plan alone (the 3D scene, the page checks): read, not routed."""
        key = (unit_id, version if version is not None else self._version(session, unit_id))
        with self._lock:
            nav = self._cache.get(key)
            plan = nav.plan if nav is not None else self._plans.get(key)
        if plan is None:
            doc = session.scalar(select(FloorPlan.document).where(FloorPlan.org_unit_id == unit_id))
            plan = rules.read_geojson(doc)
            with self._lock:
                self._plans[key] = plan
                while len(self._plans) > self.size:
                    self._plans.popitem(last=False)
        return plan

    def navigator(self, session: Session, unit_id: int) -> navigation.Navigator:
        key = (unit_id, self._version(session, unit_id))
        version = key[1]
        with self._lock:
            nav = self._cache.get(key)
            if nav is not None:
                self._cache.move_to_end(key)
                return nav
            gate = self._building.setdefault(key, threading.Lock())
        with gate:  # one build per plan, however many readers ask at once
            with self._lock:
                nav = self._cache.get(key)
            if nav is None:
                doc = session.scalar(
                    select(FloorPlan.document).where(FloorPlan.org_unit_id == unit_id)
                )
                nav = navigation.Navigator(rules.read_geojson(doc))
                self.put(unit_id, version, nav)
        with self._lock:
            self._building.pop(key, None)
        return nav


# --- where a copy stands ---------------------------------------------------------------


@dataclass
class Spot:
    """Where a copy stands on a plan: its shelf (and level and side, when a smart shelf read
    it), or only its zone."""

    item: catalog.Item
    source: str  # rfid, call_number, location, none
    shelf: str | None = None
    level: int | None = None
    side: str | None = None
    zone: str | None = None
    floor: int | None = None
    seen_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item.id,
            "barcode": self.item.barcode,
            "call_number": self.item.call_number,
            "status": self.item.status,
            "source": self.source,
            "shelf": self.shelf,
            "shelf_level": self.level,
            "side": self.side,
            "zone": self.zone,
            "floor": self.floor,
            "seen_at": self.seen_at.isoformat() if self.seen_at else None,
        }


def locate(session: Session, item: catalog.Item, plan: rules.Plan) -> Spot:
    where = shelves.where_is(session, item)
    if where.shelf is not None and plan.shelf(where.shelf.code) is not None:
        placed = plan.shelf(where.shelf.code)
        assert placed is not None
        return Spot(
            item,
            where.source,
            placed.code,
            where.level,
            where.side,
            placed.zone,
            placed.level,
            where.seen_at,
        )
    if item.location_id is not None:
        loc = session.get(libraries.Location, item.location_id)
        zone = plan.zone(loc.code) if loc is not None else None
        if zone is not None:
            return Spot(item, "location", zone=zone.code, floor=zone.level)
    return Spot(item, "none")


def first_copy(session: Session, unit_id: int, record_ids: list[int]) -> catalog.Item | None:
    """Of these records (best first), the first copy this library has, on the shelf if any."""
    if not record_ids:
        return None
    items = session.scalars(
        select(catalog.Item).where(
            catalog.Item.record_id.in_(record_ids), catalog.Item.org_unit_id == unit_id
        )
    ).all()
    rank = {r: i for i, r in enumerate(record_ids)}
    return min(
        items, key=lambda i: (i.status != "available", rank[i.record_id], i.id), default=None
    )


# --- routes ----------------------------------------------------------------------------


def place(
    session: Session, nav: navigation.Navigator, unit_id: int, spec: str, field: str
) -> tuple[navigation.Place, Spot | None]:
    """A start or goal from its name: ``poi:DESK``, ``zone:2F-RARE``, ``shelf:H07`` (or
    ``shelf:H07:B`` for one side), ``item:123`` (a copy, by id), ``barcode:3900...``,
    ``at:2,14.5,8`` (a floor and a position in metres)."""
    kind, _, key = (spec or "").strip().partition(":")
    try:
        if kind == "poi":
            return nav.poi_place(key), None
        if kind == "zone":
            return nav.zone_place(key), None
        if kind == "shelf":
            code, _, side = key.partition(":")
            if side and side not in ("A", "B"):
                raise PlaceNotFound(field, spec, "a shelf's side is A or B")
            return nav.shelf_place(code, side or None), None
    except KeyError:
        raise PlaceNotFound(field, spec) from None
    if kind == "at":
        try:
            level_s, x_s, y_s = key.split(",")
            level, x, y = int(level_s), float(x_s), float(y_s)
        except ValueError:
            raise PlaceNotFound(field, spec, "a position is at:FLOOR,X,Y (metres)") from None
        if level not in nav.plan.floors:
            raise PlaceNotFound(field, spec, f"the building has no level {level}")
        return nav.position(level, x, y), None
    if kind in ("item", "barcode"):
        try:
            item = (
                catalog.get_item(session, int(key))
                if kind == "item"
                else catalog.find_item(session, barcode=key)
            )
        except (ValueError, catalog.ItemNotFound):
            raise PlaceNotFound(field, spec, "no such copy") from None
        if (item.at_unit_id or item.org_unit_id) != unit_id:
            raise PlaceNotFound(field, spec, "that copy is in another library")
        spot = locate(session, item, nav.plan)
        if spot.shelf is not None:
            return nav.shelf_place(spot.shelf, spot.side), spot
        if spot.zone is not None:
            return nav.zone_place(spot.zone), spot
        raise PlaceNotFound(field, spec, "that copy has no shelf or zone on the floor plan")
    raise PlaceNotFound(field, spec, "name a place as poi:, zone:, shelf:, item:, barcode: or at:")


@dataclass
class Directions:
    start: navigation.Place
    goal: navigation.Place
    route: navigation.Route
    steps: list[directions.Step]
    spot: Spot | None
    step_free: bool

    def as_dict(self) -> dict[str, Any]:
        lifts = sum(1 for c in self.route.changes if c["via"] == "lift")
        seconds = self.route.metres / WALK_M_PER_S + lifts * navigation.LIFT_COST
        return {
            "from": _place_dict(self.start),
            "to": _place_dict(self.goal),
            "step_free": self.step_free,
            **self.route.as_dict(),
            "minutes": max(1, round(seconds / 60)),
            "goal_side": self.route.goal_side,
            "copy": self.spot.as_dict() if self.spot is not None else None,
            "steps": [s.as_dict() for s in self.steps],
        }


def _place_dict(p: navigation.Place) -> dict[str, Any]:
    level, x, y = p.points[0]
    return {
        "kind": p.kind,
        "code": p.code,
        "name_en": p.names[0] or p.label,
        "name_zh": p.names[1] or p.label,
        "level": level,
        "at": [round(x, 2), round(y, 2)],
    }


def route(
    session: Session,
    nav: navigation.Navigator,
    unit_id: int,
    start: str,
    goal: str,
    *,
    step_free: bool,
    t: NullTranslations,
    zh: bool,
) -> Directions:
    a, _ = place(session, nav, unit_id, start, "from")
    b, spot = place(session, nav, unit_id, goal, "to")
    try:
        found = nav.route(a, b, step_free=step_free)
    except navigation.Unreachable as exc:
        why = " without stairs" if step_free else ""
        raise NoRoute(f"{exc}{why}", step_free=step_free) from None
    steps = directions.describe(
        nav.plan,
        found,
        a,
        b,
        t,
        zh=zh,
        shelf_level=spot.level if spot else None,
        shelf_side=spot.side if spot else None,
    )
    return Directions(a, b, found, steps, spot, step_free)
