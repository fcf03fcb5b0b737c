"""Draft a believable floor plan from a list of zones and their shelves: what the demo and
the benchmark use, and what a library can start from and then correct by hand in GeoJSON.

Each floor is the same rectangle. A corridor runs along the south side; the zones stand north
of it, side by side, each walled with a door onto the corridor; their shelves stand in rows
with aisles between. Lift, stairs and toilets stand at the east end; the ground floor has the
entrance, the security gate, the service desk, a kiosk and a return point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from biblioverse.twin.rules import FORMAT_VERSION

SHELF_LENGTH = 3.0  # three 90 cm bays and the end panels
SHELF_DEPTH = 0.6  # double-sided
AISLE = 1.3  # between rows: a wheelchair passes
CROSS = 1.6  # between shelf ends
CORRIDOR = 7.0
CORE = 8.0
DOOR = 1.8


@dataclass
class ShelfSpec:
    code: str
    scheme: str | None = None
    first_call: str | None = None
    last_call: str | None = None
    levels: int = 6
    sides: int = 2


@dataclass
class ZoneSpec:
    code: str
    kind: str
    name_en: str
    name_zh: str
    shelves: list[ShelfSpec] = field(default_factory=list)
    seats: int = 0
    columns: int = 4


@dataclass
class FloorSpec:
    level: int
    name_en: str
    name_zh: str
    zones: list[ZoneSpec]


def _size(zone: ZoneSpec) -> tuple[float, float]:
    n = len(zone.shelves)
    if n == 0:
        return 10.0, 10.0
    cols = max(1, min(zone.columns, n))
    rows = math.ceil(n / cols)
    width = cols * SHELF_LENGTH + (cols + 1) * CROSS
    depth = rows * SHELF_DEPTH + (rows + 1) * AISLE + 1.0
    return width, max(depth, 8.0)


def _rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
    }


def _line(*pts: tuple[float, float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(p) for p in pts]}


def _point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(x, 3), round(y, 3)]}


def draft(floors: list[FloorSpec], *, anchor: dict[str, float] | None = None) -> dict[str, Any]:
    """A GeoJSON plan (see `rules.read_geojson`) for these floors."""
    sizes = {z.code: _size(z) for f in floors for z in f.zones}
    width = max([30.0] + [sum(sizes[z.code][0] for z in f.zones) + CORE + 1.0 for f in floors])
    depth = max(
        [22.0] + [max(sizes[z.code][1] for z in f.zones) + CORRIDOR + 1 for f in floors if f.zones]
    )
    width, depth = math.ceil(width), math.ceil(depth)
    features: list[dict[str, Any]] = []

    def add(geometry: dict[str, Any], **props: Any) -> None:
        features.append({"type": "Feature", "geometry": geometry, "properties": props})

    for f in floors:
        lv = f.level
        add(
            _rect(0, 0, width, depth),
            kind="floor",
            level=lv,
            name_en=f.name_en,
            name_zh=f.name_zh,
            height=4.5,
        )
        x = 1.0
        for z in f.zones:
            w, d = sizes[z.code]
            x0, y0, x1, y1 = x, CORRIDOR, x + w, CORRIDOR + d
            add(
                _rect(x0, y0, x1, y1),
                kind="zone",
                level=lv,
                code=z.code,
                type=z.kind,
                name_en=z.name_en,
                name_zh=z.name_zh,
            )
            mid = (x0 + x1) / 2
            add(
                _line(
                    (mid - DOOR / 2, y0),
                    (x0, y0),
                    (x0, y1),
                    (x1, y1),
                    (x1, y0),
                    (mid + DOOR / 2, y0),
                ),
                kind="wall",
                level=lv,
                thickness=0.2,
            )
            cols = max(1, min(z.columns, len(z.shelves)))
            for i, s in enumerate(z.shelves):
                row, col = divmod(i, cols)
                sx = x0 + CROSS + col * (SHELF_LENGTH + CROSS) + SHELF_LENGTH / 2
                sy = y0 + 1.0 + AISLE + row * (SHELF_DEPTH + AISLE) + SHELF_DEPTH / 2
                props: dict[str, Any] = {
                    "kind": "shelf",
                    "level": lv,
                    "code": s.code,
                    "orientation": 0,
                    "length": SHELF_LENGTH,
                    "depth": SHELF_DEPTH,
                    "levels": s.levels,
                    "sides": s.sides,
                    "zone": z.code,
                }
                if s.first_call and s.last_call:
                    props.update(scheme=s.scheme, first_call=s.first_call, last_call=s.last_call)
                add(_point(sx, sy), **props)
            for k in range(z.seats):
                sx = x0 + 1.5 + (k % 4) * ((w - 3) / 3 if w > 3 else 0)
                sy = y0 + 2.0 + (k // 4) * 2.0
                if sy < y1 - 1:
                    add(
                        _point(sx, sy),
                        kind="poi",
                        level=lv,
                        type="seat",
                        code=f"{z.code}-S{k + 1:02d}",
                        name_en=f"Seat {k + 1}",
                        name_zh=f"{k + 1} 号座位",
                    )
            x = x1
        ex, mid = width - CORE / 2, width / 2
        several = len(floors) > 1
        # (x, y, type, code, connector, English, Chinese)
        pois: list[tuple[float, float, str, str, str | None, str, str]] = [
            (ex, 3, "toilet", f"WC-{lv}", None, "Toilets", "洗手间"),
            (
                ex - 3,
                depth - 4,
                "marker",
                f"HERE-{lv}",
                None,
                f"Lift lobby, {f.name_en}" if several else "Reading corner",
                f"{f.name_zh}电梯厅" if several else "阅读角",
            ),
        ]
        if several:
            pois += [
                (ex, depth - 4, "lift", f"LIFT-{lv}", "LIFT", "Lift", "电梯"),
                (ex, depth - 10, "stairs", f"STAIRS-{lv}", "STAIRS", "Stairs", "楼梯"),
            ]
        if lv == min(fl.level for fl in floors):
            pois += [
                (mid, 0.5, "entrance", "ENTRANCE", None, "Main entrance", "主入口"),
                (mid, 2.5, "gate", "GATE", None, "Security gate", "安全门禁"),
                (mid + 6, 4, "service_desk", "DESK", None, "Service desk", "服务台"),
                (mid - 6, 4, "kiosk", "KIOSK-1", None, "Self-service kiosk", "自助借还机"),
                (2, 3, "return_point", "RETURN", None, "Book return", "还书处"),
                (mid, 5, "marker", "HERE-LOBBY", None, "Lobby", "大厅"),
            ]
        else:
            pois.append(
                (
                    ex - 3,
                    depth - 8,
                    "kiosk",
                    f"KIOSK-{lv}",
                    None,
                    "Self-service kiosk",
                    "自助借还机",
                )
            )
        for px, py, kind, code, connector, name_en, name_zh in pois:
            poi: dict[str, Any] = {
                "kind": "poi",
                "level": lv,
                "type": kind,
                "code": code,
                "name_en": name_en,
                "name_zh": name_zh,
            }
            if connector:
                poi["connector"] = connector
            add(_point(px, py), **poi)
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    doc["biblioverse"] = {"version": FORMAT_VERSION, "units": "m"}
    if anchor:
        doc["biblioverse"]["anchor"] = anchor
    return doc


def bench_building(shelves_per_zone: int = 55, levels: int = 3) -> dict[str, Any]:
    """A big building for the benchmark and tests: ``levels`` floors, two zones of shelves
    each."""
    floors = []
    for lv in range(1, levels + 1):
        zones = [
            ZoneSpec(
                f"{lv}F-{c}",
                "stacks",
                f"Stacks {lv}{c}",
                f"{lv}层 {c} 书库",
                [ShelfSpec(f"{lv}{c}{i:03d}") for i in range(1, shelves_per_zone + 1)],
                columns=5,
            )
            for c in "AB"
        ]
        floors.append(FloorSpec(lv, f"Level {lv}", f"{lv} 层", zones))
    return draft(floors)
