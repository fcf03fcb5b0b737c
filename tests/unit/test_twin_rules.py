"""Floor plans read from GeoJSON and checked; routes on them; directions in both languages."""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import networkx as nx
import pytest
from babel.support import NullTranslations

from biblioverse.errors import ValidationFailed
from biblioverse.i18n import translations
from biblioverse.twin import directions, layout, navigation, rules


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [x, y]}


def two_floors() -> dict[str, Any]:
    """A 20 x 10 m building on two floors: a wall across the ground floor with a door at its
    north end, a lift and stairs in the east, two shelves upstairs."""
    f = [
        feature(rect(0, 0, 20, 10), kind="floor", level=1, name_en="Ground floor", name_zh="一层"),
        feature(rect(0, 0, 20, 10), kind="floor", level=2, name_en="First floor", name_zh="二层"),
        feature({"type": "LineString", "coordinates": [[10, 0], [10, 8]]}, kind="wall", level=1),
        feature(point(2, 0.5), kind="poi", level=1, type="entrance", code="IN"),
        feature(
            point(2, 5),
            kind="poi",
            level=1,
            type="service_desk",
            code="DESK",
            name_en="Service desk",
            name_zh="服务台",
        ),
        feature(point(18, 2), kind="poi", level=1, type="lift", code="L1", connector="L"),
        feature(point(18, 2), kind="poi", level=2, type="lift", code="L2", connector="L"),
        feature(point(18, 8), kind="poi", level=1, type="stairs", code="S1", connector="S"),
        feature(point(18, 8), kind="poi", level=2, type="stairs", code="S2", connector="S"),
        feature(
            rect(1, 1, 9, 9),
            kind="zone",
            level=2,
            code="READ",
            type="reading_room",
            name_en="Reading room",
            name_zh="阅览室",
        ),
        feature(
            point(5, 3), kind="shelf", level=2, code="A1", length=4, depth=0.6, sides=2, zone="READ"
        ),
        feature(
            point(5, 6), kind="shelf", level=2, code="A2", length=4, depth=0.6, sides=2, zone="READ"
        ),
    ]
    return {"type": "FeatureCollection", "features": f}


def fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {e.field: e.code for e in exc.value.errors}


def test_a_plan_reads_back_the_same_after_writing() -> None:
    plan = rules.read_geojson(two_floors())
    doc_out = rules.to_geojson(plan)
    again = rules.read_geojson(doc_out)
    assert sorted(again.floors) == [1, 2]
    assert [(s.code, s.x, s.y, s.sides) for s in again.shelves] == [
        ("A1", 5, 3, 2),
        ("A2", 5, 6, 2),
    ]
    desk = again.poi("DESK")
    assert desk is not None and desk.name_zh == "服务台"
    assert json.loads(json.dumps(rules.to_geojson(again))) == json.loads(json.dumps(doc_out))


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        (
            lambda d: d["features"][10]["geometry"].update(coordinates=[19.5, 3]),
            "shelf A1",
            "outside_floor",
        ),
        (
            lambda d: d["features"][9].update(geometry=rect(15, 1, 25, 9)),
            "zone READ",
            "outside_floor",
        ),
        (
            lambda d: d["features"][4]["geometry"].update(coordinates=[25, 5]),
            "poi DESK",
            "outside_floor",
        ),
        (
            lambda d: d["features"][11]["geometry"].update(coordinates=[6, 3.3]),
            "shelf A1",
            "overlap",
        ),
        (lambda d: d["features"].pop(3), "features", "no_entrance"),
        (lambda d: [d["features"].pop(i) for i in (8, 6)], "level 2", "no_entrance"),
        (
            lambda d: d["features"][4]["properties"].update(level=7),
            "features[4].properties.level",
            "no_floor",
        ),
        (
            lambda d: d["features"][4]["properties"].update(type="fountain"),
            "features[4].properties.type",
            "invalid",
        ),
        (
            lambda d: d["features"][0].update(geometry=point(1, 1)),
            "features[0].geometry",
            "invalid",
        ),
        (
            lambda d: d["features"][10]["properties"].update(length="long"),
            "features[10].properties.length",
            "invalid",
        ),
        (
            lambda d: d["features"][11]["properties"].update(code="A1"),
            "features[11].properties.code",
            "duplicate",
        ),
        (
            lambda d: d["features"][5]["properties"].pop("connector"),
            "features[5].properties.connector",
            "required",
        ),
    ],
)
def test_a_bad_plan_names_what_is_wrong(change: Any, field: str, code: str) -> None:
    doc = copy.deepcopy(two_floors())
    change(doc)
    with pytest.raises(ValidationFailed) as exc:
        rules.read_geojson(doc)
    assert fields(exc).get(field) == code, fields(exc)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"type": "Feature"},
        {"type": "FeatureCollection"},
        {"type": "FeatureCollection", "features": [1, "x"]},
    ],
)
def test_what_is_not_a_plan_at_all_is_refused(doc: Any) -> None:
    with pytest.raises(ValidationFailed):
        rules.read_geojson(doc)


def test_routes_go_through_the_door_and_up_by_lift_or_stairs() -> None:
    nav = navigation.Navigator(rules.read_geojson(two_floors()))
    # from the desk (west of the wall) to the lift (east): round the wall's north end
    r = nav.route(nav.poi_place("DESK"), nav.poi_place("L1"))
    ground = r.legs[0].points
    assert any(y > 8 for _, y in ground), ground  # through the door north of the wall
    assert r.metres > math.hypot(16, 3)
    up = nav.route(nav.poi_place("IN"), nav.shelf_place("A2"))
    assert [leg.level for leg in up.legs] == [1, 2]
    assert up.changes[0]["via"] == "stairs"  # the stairs are the shorter climb
    step_free = nav.route(nav.poi_place("IN"), nav.shelf_place("A2"), step_free=True)
    assert step_free.changes[0]["via"] == "lift"


def test_a_shelf_is_reached_at_the_side_asked_or_the_nearer() -> None:
    nav = navigation.Navigator(rules.read_geojson(two_floors()))
    near = nav.route(nav.poi_place("L2"), nav.shelf_place("A1"))
    assert near.goal_side in ("A", "B")
    south = nav.route(nav.poi_place("L2"), nav.shelf_place("A1", "B"))
    assert south.goal_side == "B"
    assert south.legs[-1].points[-1][1] < 3  # side B faces south (orientation 0)


def test_a_goal_walled_off_is_unreachable_and_steps_need_stairs() -> None:
    doc = two_floors()
    # a lift that serves only... nothing: drop the lift, keep the stairs
    doc["features"] = [f for f in doc["features"] if f["properties"].get("type") != "lift"]
    nav = navigation.Navigator(rules.read_geojson(doc))
    nav.route(nav.poi_place("IN"), nav.shelf_place("A1"))
    with pytest.raises(navigation.Unreachable):
        nav.route(nav.poi_place("IN"), nav.shelf_place("A1"), step_free=True)
    boxed = two_floors()
    boxed["features"].append(
        feature({"type": "LineString", "coordinates": [[10, 8], [10, 10]]}, kind="wall", level=1)
    )
    nav = navigation.Navigator(rules.read_geojson(boxed))
    with pytest.raises(navigation.Unreachable):
        nav.route(nav.poi_place("DESK"), nav.poi_place("L1"))


def test_a_star_finds_the_shortest_route_on_a_big_building() -> None:
    """The landmark bounds must never overestimate: A* agrees with Dijkstra everywhere."""
    plan = rules.read_geojson(layout.bench_building(shelves_per_zone=20, levels=3))
    nav = navigation.Navigator(plan)
    rng = random.Random(7)
    pois = [p.code for p in plan.pois if p.code in nav.poi_nodes]
    for _ in range(40):
        a = nav.poi_place(rng.choice(pois))
        b = nav.shelf_place(rng.choice(plan.shelves).code)
        step_free = rng.random() < 0.5
        got = nav.route(a, b, step_free=step_free)

        def weight(u: int, v: int, d: dict[str, Any], sf: bool = step_free) -> float | None:
            return None if sf and d.get("step_free") is False else float(d["weight"])

        best = min(
            nx.dijkstra_path_length(nav.graph, a.nodes[0], n, weight=weight) for n in b.nodes
        )
        climbs = sum(
            navigation.LIFT_COST + navigation.LIFT_PER_FLOOR * abs(c["to"] - c["from"])
            if c["via"] == "lift"
            else navigation.STAIRS_PER_FLOOR * abs(c["to"] - c["from"])
            for c in got.changes
        )
        assert got.metres + climbs == pytest.approx(best, abs=1e-6)


def test_a_position_between_shelves_is_a_start() -> None:
    plan = rules.read_geojson(two_floors())
    nav = navigation.Navigator(plan)
    r = nav.route(nav.position(2, 15, 5), nav.shelf_place("A1"))
    assert r.legs[0].points[0] == pytest.approx((15, 5))
    assert (
        not nav.position(2, 5, 3).points or nav.position(2, 5, 3).points[0][2] != 3
    )  # in the shelf


def test_directions_in_english_and_chinese() -> None:
    plan = rules.read_geojson(two_floors())
    nav = navigation.Navigator(plan)
    start, goal = nav.poi_place("IN"), nav.shelf_place("A1", "A")
    r = nav.route(start, goal, step_free=True)
    en = directions.describe(
        plan, r, start, goal, NullTranslations(), shelf_level=3, shelf_side="A"
    )
    texts = [s.text for s in en]
    assert texts[0] == "Start at IN, Ground floor"
    assert "Take the lift to First floor" in texts
    assert texts[-1].startswith("Shelf A1 is on your") and "side A, shelf level 3" in texts[-1]
    assert any(s.action == "walk" and s.turn in ("left", "right") for s in en)
    zh = directions.describe(
        plan, r, start, goal, translations("zh_Hans"), zh=True, shelf_level=3, shelf_side="A"
    )
    assert zh[0].text == "从IN出发（一层）"
    assert "乘电梯到二层" in [s.text for s in zh]
    assert zh[-1].text.startswith("书架 A1 在您的")
