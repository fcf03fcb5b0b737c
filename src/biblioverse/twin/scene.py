"""What the 3D library draws, from the same plan the map and the routes use: floors, walls,
shelves, points of interest, and every copy standing on a shelf, as compact parallel arrays.

A copy stands where a smart shelf last read it (shelf, side and level), else on the shelf
whose call-number range holds it, filled in shelf order: side A from the top level down,
left to right, then side B. Copies out on loan, in transit or missing are gaps on the shelf.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries
from biblioverse import shelves as smart_shelves
from biblioverse.twin.rules import Plan

BOOK_WIDTH = 0.032  # metres of shelf a book takes, on average
ON_SHELF = ("available",)
CLASSES = [chr(c) for c in range(ord("A"), ord("Z") + 1)]  # LCC and CLC main classes


def subject_class(call_number: str | None) -> int:
    """The main class letter of a call number (LCC 'QA76', CLC 'TP312'), as an index into
    `CLASSES`; len(CLASSES) for anything else (Dewey, local schemes)."""
    c = (call_number or "").strip()[:1].upper()
    return ord(c) - ord("A") if "A" <= c <= "Z" else len(CLASSES)


def _floors(plan: Plan) -> list[dict[str, Any]]:
    out, elevation = [], 0.0
    for level in sorted(plan.floors):
        f = plan.floors[level]
        out.append(
            {
                "level": level,
                "name_en": f.name_en,
                "name_zh": f.name_zh,
                "height": f.height,
                "elevation": elevation,
                "outline": [[round(x, 3), round(y, 3)] for x, y in f.outline.exterior.coords],
            }
        )
        elevation += f.height
    return out


def build(session: Session, unit_id: int, plan: Plan) -> dict[str, Any]:
    shelves = plan.shelves
    index = {s.code: i for i, s in enumerate(shelves)}
    ranges = sorted(
        (r for r in libraries.shelves_of(session, unit_id) if r.code in index),
        key=lambda r: r.first_key,
    )
    active: list[libraries.Shelf] = []
    nxt = 0
    by_shelf_id = {r.id: index[r.code] for r in ranges}
    read = smart_shelves.standing_on(session, by_shelf_id)
    rows = session.execute(
        select(catalog.Item.id, catalog.Item.shelf_key, catalog.Item.call_number)
        .where(
            catalog.Item.org_unit_id == unit_id,
            catalog.Item.status.in_(ON_SHELF),
        )
        .order_by(catalog.Item.shelf_key, catalog.Item.id)
    ).all()
    # (shelf index, side, level) -> copies, in shelf order
    placed: dict[tuple[int, int, int | None], list[tuple[int, int]]] = {}
    for item_id, key, call in rows:
        cls = subject_class(call)
        if item_id in read:
            shelf_id, read_level, read_side = read[item_id]
            spot = (by_shelf_id[shelf_id], 0 if read_side == "A" else 1, read_level)
            placed.setdefault(spot, []).append((item_id, cls))
            continue
        if key is None:
            continue
        # copies come in shelf order: a sweep keeps the shelves whose range holds the key
        while nxt < len(ranges) and ranges[nxt].first_key <= key:
            active.append(ranges[nxt])
            nxt += 1
        active = [r for r in active if key < r.end_key]
        if active:  # ranges may overlap: the first shelf by code, as `libraries.shelf_for`
            home = min(active, key=lambda r: r.code)
            placed.setdefault((index[home.code], -1, None), []).append((item_id, cls))
    ids: list[int] = []
    shelf_of: list[int] = []
    sides: list[int] = []
    levels: list[int] = []
    slots: list[int] = []
    classes: list[int] = []
    used: dict[tuple[int, int, int], int] = {}

    def put(si: int, side: int, level: int, item_id: int, cls: int) -> bool:
        s = shelves[si]
        per_level = max(1, int(s.length / BOOK_WIDTH))
        slot = used.get((si, side, level), 0)
        if slot >= per_level or not 1 <= level <= s.levels or side >= s.sides:
            return False
        used[(si, side, level)] = slot + 1
        ids.append(item_id)
        shelf_of.append(si)
        sides.append(side)
        levels.append(level)
        slots.append(slot)
        classes.append(cls)
        return True

    # read by a smart shelf first: they hold their places; then the rest in shelf order
    for (si, side, level), copies in sorted(placed.items(), key=lambda kv: kv[0][1] < 0):
        if side >= 0 and level is not None:
            for item_id, cls in copies:
                put(si, side, level, item_id, cls)
            continue
        # spread evenly over the levels and sides, in shelf order: side A top to bottom,
        # then side B, as a reader walking the shelf reads it
        s = shelves[si]
        spots = [(sd, lv) for sd in range(s.sides) for lv in range(s.levels, 0, -1)]
        per_spot = max(1, -(-len(copies) // len(spots)))
        k = 0
        for n, (item_id, cls) in enumerate(copies):
            k = max(k, n // per_spot)
            while k < len(spots) and not put(si, spots[k][0], spots[k][1], item_id, cls):
                k += 1
    return {
        "version": 1,
        "floors": _floors(plan),
        "walls": [
            {
                "level": w.level,
                "thickness": w.thickness,
                "points": [[round(x, 3), round(y, 3)] for x, y in w.line.coords],
            }
            for w in plan.walls
        ],
        "zones": [
            {
                "level": z.level,
                "code": z.code,
                "type": z.kind.value,
                "name_en": z.name_en,
                "name_zh": z.name_zh,
                "outline": [[round(x, 3), round(y, 3)] for x, y in z.area.exterior.coords],
            }
            for z in plan.zones
        ],
        "shelves": [
            {
                "code": s.code,
                "level": s.level,
                "x": s.x,
                "y": s.y,
                "orientation": s.orientation,
                "length": s.length,
                "depth": s.depth,
                "levels": s.levels,
                "sides": s.sides,
                "zone": s.zone,
            }
            for s in shelves
        ],
        "pois": [
            {
                "code": p.code,
                "type": p.kind.value,
                "level": p.level,
                "x": p.x,
                "y": p.y,
                "name_en": p.name_en,
                "name_zh": p.name_zh,
            }
            for p in plan.pois
        ],
        "classes": [*CLASSES, "?"],
        "book_width": BOOK_WIDTH,
        "books": {
            "id": ids,
            "shelf": shelf_of,
            "side": sides,
            "level": levels,
            "slot": slots,
            "cls": classes,
        },
    }
