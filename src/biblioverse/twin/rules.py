"""A branch's floor plan as data: floors, walls, zones, shelves and points of interest, read
from and written to GeoJSON, and checked before anything is stored.

Coordinates are metres in the building's own plane (x east, y north from a corner of the
ground floor), not longitude and latitude: an indoor plan is drawn in metres, and the
collection's ``biblioverse.anchor`` member says where that origin lies on the earth for a GIS
that wants to place it. Nothing here touches the database or the web.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from biblioverse.errors import FieldError, ValidationFailed
from biblioverse.i18n import N_
from biblioverse.lazy import lazy_module

if TYPE_CHECKING:
    import shapely
    from shapely.geometry import LineString, Polygon
else:
    shapely = lazy_module("shapely")  # with numpy, loaded with the first plan

FORMAT_VERSION = 1
MAX_FEATURES = 20_000
MAX_LEVELS = 60


class ZoneKind(StrEnum):
    READING_ROOM = "reading_room"
    CHILDREN = "children"
    SELF_SERVICE = "self_service"
    EXHIBITION = "exhibition"
    ANCIENT_BOOKS = "ancient_books"
    STACKS = "stacks"
    STUDY = "study"
    LECTURE = "lecture"
    SERVICE = "service"
    OTHER = "other"


class PoiKind(StrEnum):
    ENTRANCE = "entrance"
    SERVICE_DESK = "service_desk"
    KIOSK = "kiosk"
    RETURN_POINT = "return_point"
    GATE = "gate"
    TOILET = "toilet"
    LIFT = "lift"
    STAIRS = "stairs"
    ESCALATOR = "escalator"
    SEAT = "seat"
    INFO = "info"
    MARKER = "marker"  # a "you are here" sign with a QR code


# how a reader changes floor, and whether a wheelchair can
CONNECTORS = {PoiKind.LIFT: True, PoiKind.STAIRS: False, PoiKind.ESCALATOR: False}


@dataclass(frozen=True)
class Floor:
    level: int
    name_en: str
    name_zh: str
    outline: Polygon
    height: float = 4.0


@dataclass(frozen=True)
class Wall:
    level: int
    line: LineString
    thickness: float = 0.2


@dataclass(frozen=True)
class Zone:
    level: int
    code: str
    kind: ZoneKind
    name_en: str
    name_zh: str
    area: Polygon


@dataclass(frozen=True)
class ShelfPlace:
    """A bookcase standing on the plan. ``orientation`` is the angle of its long side from the
    x axis, in degrees; side A faces left of that direction, side B right."""

    level: int
    code: str
    x: float
    y: float
    orientation: float
    length: float
    depth: float
    levels: int = 6
    sides: int = 1
    zone: str | None = None
    scheme: str | None = None
    first_call: str | None = None
    last_call: str | None = None

    @property
    def footprint(self) -> Polygon:
        rect = shapely.box(-self.length / 2, -self.depth / 2, self.length / 2, self.depth / 2)
        return shapely.affinity.translate(
            shapely.affinity.rotate(rect, self.orientation, origin=(0, 0)), self.x, self.y
        )

    def normal(self, side: str) -> tuple[float, float]:
        """The unit vector a reader faces away from when standing at a side."""
        a = math.radians(self.orientation + (90 if side == "A" else -90))
        return math.cos(a), math.sin(a)

    def face_point(self, side: str, offset: float) -> tuple[float, float]:
        nx_, ny_ = self.normal(side)
        d = self.depth / 2 + offset
        return self.x + nx_ * d, self.y + ny_ * d

    @property
    def side_names(self) -> tuple[str, ...]:
        return ("A", "B") if self.sides == 2 else ("A",)


@dataclass(frozen=True)
class Poi:
    level: int
    code: str
    kind: PoiKind
    x: float
    y: float
    name_en: str = ""
    name_zh: str = ""
    connector: str | None = None  # the same lift or stair on every floor it serves

    @property
    def step_free(self) -> bool:
        return CONNECTORS.get(self.kind, True)


@dataclass
class Plan:
    floors: dict[int, Floor]
    walls: list[Wall] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    shelves: list[ShelfPlace] = field(default_factory=list)
    pois: list[Poi] = field(default_factory=list)
    anchor: dict[str, float] = field(default_factory=dict)

    def shelf(self, code: str) -> ShelfPlace | None:
        return next((s for s in self.shelves if s.code == code), None)

    def zone(self, code: str) -> Zone | None:
        return next((z for z in self.zones if z.code == code), None)

    def poi(self, code: str) -> Poi | None:
        return next((p for p in self.pois if p.code == code), None)

    def connectors(self) -> dict[str, list[Poi]]:
        out: dict[str, list[Poi]] = {}
        for p in self.pois:
            if p.connector and p.kind in CONNECTORS:
                out.setdefault(p.connector, []).append(p)
        for stops in out.values():
            stops.sort(key=lambda p: p.level)
        return out


# --- reading GeoJSON ---------------------------------------------------------------------


class _Reader:
    """Collects every problem of a document, each named by its place in the document."""

    def __init__(self) -> None:
        self.problems: list[FieldError] = []

    def fail(self, where: str, code: str, message: str, /, **params: object) -> None:
        """``message`` is a template marked with N_, filled in with ``params``."""
        if len(self.problems) < 200:
            self.problems.append(FieldError(where, code, message, params))

    def text(
        self,
        props: dict[str, Any],
        key: str,
        where: str,
        *,
        required: bool = False,
        limit: int = 200,
    ) -> str:
        value = props.get(key)
        if value is None or value == "":
            if required:
                self.fail(f"{where}.{key}", "required", N_("%(key)s is required"), key=key)
            return ""
        if not isinstance(value, str) or len(value) > limit:
            self.fail(
                f"{where}.{key}",
                "invalid",
                N_("%(key)s must be text of at most %(limit)d characters"),
                key=key,
                limit=limit,
            )
            return ""
        return value.strip()

    def number(
        self,
        props: dict[str, Any],
        key: str,
        where: str,
        *,
        default: float | None = None,
        low: float = -1e6,
        high: float = 1e6,
    ) -> float:
        value = props.get(key, default)
        if value is None:
            self.fail(f"{where}.{key}", "required", N_("%(key)s is required"), key=key)
            return low
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(f"{where}.{key}", "invalid", N_("%(key)s must be a number"), key=key)
            return low
        if not low <= value <= high:
            self.fail(
                f"{where}.{key}",
                "out_of_range",
                N_("%(key)s must be from %(low)g to %(high)g"),
                key=key,
                low=low,
                high=high,
            )
        return float(value)

    def integer(
        self,
        props: dict[str, Any],
        key: str,
        where: str,
        *,
        default: int | None = None,
        low: int = -10,
        high: int = 100,
    ) -> int:
        value = props.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(
                f"{where}.{key}",
                "invalid" if value is not None else "required",
                N_("%(key)s must be a whole number"),
                key=key,
            )
            return low
        if not low <= value <= high:
            self.fail(
                f"{where}.{key}",
                "out_of_range",
                N_("%(key)s must be from %(low)d to %(high)d"),
                key=key,
                low=low,
                high=high,
            )
        return value

    def geometry(self, feature: dict[str, Any], where: str, kinds: tuple[str, ...]) -> Any:
        geo = feature.get("geometry")
        if not isinstance(geo, dict) or geo.get("type") not in kinds:
            self.fail(
                f"{where}.geometry",
                "invalid",
                N_("the geometry must be a %(kinds)s"),
                kinds=" or ".join(kinds),
            )
            return None
        try:
            geom = shapely.geometry.shape(geo)
        except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException):
            self.fail(f"{where}.geometry", "invalid", N_("the coordinates are not a valid shape"))
            return None
        coords = shapely.get_coordinates(geom)
        if (
            len(coords) == 0
            or not bool(shapely.is_valid(geom))
            or not all(math.isfinite(v) and abs(v) < 1e5 for v in coords.ravel())
        ):
            self.fail(
                f"{where}.geometry",
                "invalid",
                N_("the shape is empty, crosses itself or lies too far out"),
            )
            return None
        return geom


def read_geojson(doc: Any) -> Plan:
    """A plan from a GeoJSON FeatureCollection, or ValidationFailed listing what is wrong, each
    problem named by the feature it is in (``features[12].properties.level``)."""
    r = _Reader()
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ValidationFailed([FieldError("type", "invalid", N_("a GeoJSON FeatureCollection"))])
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise ValidationFailed([FieldError("features", "required", N_("a list of features"))])
    if len(features) > MAX_FEATURES:
        raise ValidationFailed(
            [FieldError("features", "too_many", N_("at most %(n)d features"), {"n": MAX_FEATURES})]
        )
    meta = doc.get("biblioverse") or {}
    anchor: dict[str, float] = {}
    if isinstance(meta, dict) and isinstance(meta.get("anchor"), dict):
        a = meta["anchor"]
        anchor = {
            "lon": r.number(a, "lon", "biblioverse.anchor", low=-180, high=180),
            "lat": r.number(a, "lat", "biblioverse.anchor", low=-90, high=90),
            "bearing": r.number(a, "bearing", "biblioverse.anchor", default=0, low=-360, high=360),
        }

    floors: dict[int, Floor] = {}
    rest: list[tuple[int, str, dict[str, Any], dict[str, Any]]] = []
    for i, feature in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            r.fail(where, "invalid", N_("a GeoJSON Feature"))
            continue
        props = feature.get("properties")
        if not isinstance(props, dict):
            r.fail(f"{where}.properties", "required", N_("the feature has no properties"))
            continue
        kind = props.get("kind")
        pw = f"{where}.properties"
        if kind == "floor":
            level = r.integer(props, "level", pw, low=-10, high=MAX_LEVELS)
            outline = r.geometry(feature, where, ("Polygon",))
            if level in floors:
                r.fail(
                    f"{pw}.level", "duplicate", N_("level %(level)d is drawn twice"), level=level
                )
            elif outline is not None:
                floors[level] = Floor(
                    level,
                    r.text(props, "name_en", pw) or f"Level {level}",
                    r.text(props, "name_zh", pw) or f"{level} 层",
                    outline,
                    r.number(props, "height", pw, default=4.0, low=2.0, high=20.0),
                )
        elif kind in ("wall", "zone", "shelf", "poi"):
            rest.append((i, kind, feature, props))
        else:
            r.fail(f"{pw}.kind", "invalid", N_("kind must be floor, wall, zone, shelf or poi"))
    if not floors and not r.problems:
        r.fail("features", "no_floor", N_("the plan has no floor"))

    plan = Plan(floors, anchor=anchor)
    codes: dict[tuple[str, str], str] = {}
    for i, kind, feature, props in rest:
        where, pw = f"features[{i}]", f"features[{i}].properties"
        level = r.integer(props, "level", pw, low=-10, high=MAX_LEVELS)
        if level not in floors and f"{pw}.level" not in {p.field for p in r.problems}:
            r.fail(f"{pw}.level", "no_floor", N_("level %(level)d has no floor"), level=level)
            continue
        code = ""
        if kind != "wall":
            code = r.text(props, "code", pw, required=True, limit=32)
            group = "poi" if kind == "poi" else kind
            if code and (group, code) in codes:
                r.fail(
                    f"{pw}.code",
                    "duplicate",
                    N_("%(kind)s %(code)s is also %(other)s"),
                    kind=kind,
                    code=code,
                    other=codes[(group, code)],
                )
            codes[(group, code)] = where
        if kind == "wall":
            line = r.geometry(feature, where, ("LineString",))
            thickness = r.number(props, "thickness", pw, default=0.2, low=0.05, high=2.0)
            if line is not None:
                plan.walls.append(Wall(level, line, thickness))
        elif kind == "zone":
            area = r.geometry(feature, where, ("Polygon",))
            try:
                zkind = ZoneKind(props.get("type", "other"))
            except ValueError:
                r.fail(
                    f"{pw}.type",
                    "invalid",
                    N_("type must be one of %(kinds)s"),
                    kinds=", ".join(ZoneKind),
                )
                continue
            if area is not None:
                plan.zones.append(
                    Zone(
                        level,
                        code,
                        zkind,
                        r.text(props, "name_en", pw) or code,
                        r.text(props, "name_zh", pw) or code,
                        area,
                    )
                )
        elif kind == "shelf":
            point = r.geometry(feature, where, ("Point",))
            sides = r.integer(props, "sides", pw, default=1, low=1, high=2)
            shelf = ShelfPlace(
                level,
                code,
                point.x if point is not None else 0.0,
                point.y if point is not None else 0.0,
                r.number(props, "orientation", pw, default=0.0, low=-360, high=360),
                r.number(props, "length", pw, default=None, low=0.3, high=40),
                r.number(props, "depth", pw, default=0.6 if sides == 2 else 0.35, low=0.1, high=3),
                r.integer(props, "levels", pw, default=6, low=1, high=12),
                sides,
                r.text(props, "zone", pw, limit=32) or None,
                r.text(props, "scheme", pw, limit=8) or None,
                r.text(props, "first_call", pw, limit=120) or None,
                r.text(props, "last_call", pw, limit=120) or None,
            )
            if point is not None:
                plan.shelves.append(shelf)
        else:
            point = r.geometry(feature, where, ("Point",))
            try:
                pkind = PoiKind(str(props.get("type")))
            except ValueError:
                r.fail(
                    f"{pw}.type",
                    "invalid",
                    N_("type must be one of %(kinds)s"),
                    kinds=", ".join(PoiKind),
                )
                continue
            connector = r.text(props, "connector", pw, limit=32) or None
            if pkind in CONNECTORS and connector is None:
                r.fail(
                    f"{pw}.connector",
                    "required",
                    N_("a %(kind)s names its connector"),
                    kind=pkind.value,
                )
            if point is not None:
                plan.pois.append(
                    Poi(
                        level,
                        code,
                        pkind,
                        point.x,
                        point.y,
                        r.text(props, "name_en", pw),
                        r.text(props, "name_zh", pw),
                        connector,
                    )
                )
    if r.problems:
        raise ValidationFailed(r.problems)
    check_layout(plan)
    return plan


def check_layout(plan: Plan) -> None:
    """What the shapes must respect: shelves and points inside their floor, shelves apart,
    every floor with a way in, every connector on at least two floors."""
    r = _Reader()
    # Each floor's outline grown by a micron once, so that a shape on its edge is inside.
    grown = {level: floor.outline.buffer(1e-6) for level, floor in plan.floors.items()}

    def on_floor(level: int, what: Any, where: str, message: str, **values: object) -> None:
        if not grown[level].contains(what):
            r.fail(where, "outside_floor", message, level=level, **values)

    for s in plan.shelves:
        on_floor(
            s.level,
            s.footprint,
            f"shelf {s.code}",
            N_("shelf %(code)s lies outside level %(level)d"),
            code=s.code,
        )
        if s.zone is not None and plan.zone(s.zone) is None:
            r.fail(
                f"shelf {s.code}",
                "unknown_zone",
                N_("shelf %(code)s names zone %(zone)s, which is not on the plan"),
                code=s.code,
                zone=s.zone,
            )
    by_level: dict[int, list[ShelfPlace]] = {}
    for s in plan.shelves:
        by_level.setdefault(s.level, []).append(s)
    for shelves in by_level.values():
        prints = [s.footprint for s in shelves]
        tree = shapely.STRtree(prints)
        for i, j in zip(*tree.query(prints, predicate="intersects"), strict=True):
            if i < j and prints[i].intersection(prints[j]).area > 1e-4:
                a, b = shelves[i].code, shelves[j].code
                r.fail(f"shelf {a}", "overlap", N_("shelves %(a)s and %(b)s overlap"), a=a, b=b)
    for z in plan.zones:
        on_floor(
            z.level,
            z.area,
            f"zone {z.code}",
            N_("zone %(code)s lies outside level %(level)d"),
            code=z.code,
        )
    for p in plan.pois:
        on_floor(
            p.level,
            shapely.Point(p.x, p.y),
            f"poi {p.code}",
            N_("%(kind)s %(code)s lies outside level %(level)d"),
            kind=p.kind.value,
            code=p.code,
        )
    connectors = plan.connectors()
    for name, stops in connectors.items():
        if len({p.level for p in stops}) < 2:
            r.fail(
                f"connector {name}",
                "one_floor",
                N_("connector %(name)s serves only level %(level)d"),
                name=name,
                level=stops[0].level,
            )
    if not any(p.kind == PoiKind.ENTRANCE for p in plan.pois):
        r.fail("features", "no_entrance", N_("the building has no entrance"))
    for level in sorted(plan.floors):
        ways_in = [
            p
            for p in plan.pois
            if p.level == level
            and (
                p.kind == PoiKind.ENTRANCE
                or (
                    p.connector in connectors
                    and len({q.level for q in connectors[p.connector]}) > 1
                )
            )
        ]
        if not ways_in:
            r.fail(
                f"level {level}",
                "no_entrance",
                N_("level %(level)d has no entrance, lift or stairs"),
                level=level,
            )
    if r.problems:
        raise ValidationFailed(r.problems)


# --- writing GeoJSON ---------------------------------------------------------------------


def _feature(geom: Any, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": shapely.geometry.mapping(geom), "properties": props}


def _round(geom: Any) -> Any:
    return shapely.transform(geom, lambda c: c.round(3))


def to_geojson(
    plan: Plan, *, shelf_ranges: dict[str, tuple[str, str, str]] | None = None
) -> dict[str, Any]:
    """The plan as a FeatureCollection that `read_geojson` reads back to the same plan.
    ``shelf_ranges`` gives each shelf's current scheme and range (the catalogue's, which wins
    over what was imported)."""
    out: list[dict[str, Any]] = []
    for f in sorted(plan.floors.values(), key=lambda f: f.level):
        out.append(
            _feature(
                _round(f.outline),
                {
                    "kind": "floor",
                    "level": f.level,
                    "name_en": f.name_en,
                    "name_zh": f.name_zh,
                    "height": f.height,
                },
            )
        )
    for w in plan.walls:
        out.append(
            _feature(_round(w.line), {"kind": "wall", "level": w.level, "thickness": w.thickness})
        )
    for z in plan.zones:
        out.append(
            _feature(
                _round(z.area),
                {
                    "kind": "zone",
                    "level": z.level,
                    "code": z.code,
                    "type": z.kind.value,
                    "name_en": z.name_en,
                    "name_zh": z.name_zh,
                },
            )
        )
    for s in plan.shelves:
        props: dict[str, Any] = {
            "kind": "shelf",
            "level": s.level,
            "code": s.code,
            "orientation": s.orientation,
            "length": s.length,
            "depth": s.depth,
            "levels": s.levels,
            "sides": s.sides,
        }
        if s.zone:
            props["zone"] = s.zone
        rng = (shelf_ranges or {}).get(s.code) or (
            (s.scheme, s.first_call, s.last_call) if s.first_call and s.last_call else None
        )
        if rng:
            props["scheme"], props["first_call"], props["last_call"] = rng
        out.append(_feature(shapely.Point(round(s.x, 3), round(s.y, 3)), props))
    for p in plan.pois:
        props = {
            "kind": "poi",
            "level": p.level,
            "code": p.code,
            "type": p.kind.value,
            "name_en": p.name_en,
            "name_zh": p.name_zh,
        }
        if p.connector:
            props["connector"] = p.connector
        out.append(_feature(shapely.Point(round(p.x, 3), round(p.y, 3)), props))
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": out}
    doc["biblioverse"] = {"version": FORMAT_VERSION, "units": "m"}
    if plan.anchor:
        doc["biblioverse"]["anchor"] = plan.anchor
    return doc
