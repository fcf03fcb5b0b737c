"""The twin's API: floor plans in and out, where a copy stands, routes in both languages,
the 3D scene, and who may change a plan."""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries
from biblioverse.twin import layout
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import NOW, STAFF_PW, World, copies
from tests.integration.rfid_support import Room, room

Headers = Callable[[str], dict[str, str]]


def plan_for(session: Session, w: World) -> tuple[dict[str, Any], Room]:
    """The test room (shelves I-1 and I-2 in location RFID-1) on the first floor of a
    two-floor building, with a reading room below."""
    r = room(session, w)
    doc = plan_of(session, w, r)
    session.commit()
    return doc, r


def plan_of(
    session: Session, w: World, r: Room, extra: Sequence[layout.ShelfSpec] = ()
) -> dict[str, Any]:
    """The plan of :func:`plan_for`'s building, with ``extra`` shelves in the stacks."""
    loc = session.get(libraries.Location, r.location_id)
    assert loc is not None
    shelves = [
        layout.ShelfSpec(s.code, s.scheme, s.first_call, s.last_call, s.levels, s.sides)
        for s in libraries.shelves_of(session, w.central.id)
    ]
    floors = [
        layout.FloorSpec(
            1,
            "Ground floor",
            "一层",
            [layout.ZoneSpec("READ", "reading_room", "Reading room", "阅览室", seats=2)],
        ),
        layout.FloorSpec(
            2,
            "First floor",
            "二层",
            [layout.ZoneSpec(loc.code, "stacks", "Stacks", "书库", [*shelves, *extra])],
        ),
    ]
    return layout.draft(floors)


def test_a_librarian_puts_a_plan_and_a_reader_is_routed_to_a_book(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    doc, r = plan_for(session, world)
    central = world.central.id
    put = client.put(
        f"/api/v1/libraries/{central}/floor-plan", json=doc, headers=as_staff("central-lib")
    )
    assert put.status_code == 200, put.text
    assert put.json()["floors"] == [1, 2] and put.json()["shelves"] == 2

    got = client.get(f"/api/v1/libraries/{central}/floor-plan")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/geo+json"
    codes = {f["properties"].get("code") for f in got.json()["features"]}
    assert {"I-1", "I-2", "ENTRANCE", "LIFT-2"} <= codes

    item_id = r.items["B4"]  # I313.45/2, on I-2
    r = client.get(
        f"/api/v1/libraries/{central}/route",
        params={"from": "poi:ENTRANCE", "to": f"item:{item_id}", "lang": "en"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["copy"]["shelf"] == "I-2" and body["copy"]["source"] == "call_number"
    assert [leg["level"] for leg in body["legs"]] == [1, 2]
    texts = [s["text"] for s in body["steps"]]
    assert texts[0] == "Start at Main entrance, Ground floor"
    assert texts[-1].startswith("Shelf I-2 is ")
    assert body["changes"][0]["via"] == "stairs"
    step_free = client.get(
        f"/api/v1/libraries/{central}/route",
        params={"from": "poi:ENTRANCE", "to": "shelf:I-1", "step_free": "true", "lang": "zh_Hans"},
    )
    assert step_free.status_code == 200
    assert step_free.json()["changes"][0]["via"] == "lift"
    assert "乘电梯到二层" in [s["text"] for s in step_free.json()["steps"]]

    spot = client.get(f"/api/v1/items/{item_id}/spot")
    assert spot.json()["shelf"] == "I-2" and spot.json()["floor"] == 2

    scene = client.get(f"/api/v1/libraries/{central}/scene").json()
    assert [f["level"] for f in scene["floors"]] == [1, 2]
    assert scene["floors"][1]["elevation"] == 4.5
    books = scene["books"]
    assert item_id in books["id"]
    i = books["id"].index(item_id)
    assert scene["shelves"][books["shelf"][i]]["code"] == "I-2"
    assert scene["classes"][books["cls"][i]] == "I"


def test_a_copy_a_smart_shelf_read_stands_where_it_was_read(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    doc, r = plan_for(session, world)
    central = world.central.id
    assert (
        client.put(
            f"/api/v1/libraries/{central}/floor-plan", json=doc, headers=as_staff("central-lib")
        ).status_code
        == 200
    )
    item = r.items["B4"]
    # the shelf reader's antenna 2 (shelf I-1, level 2) reads the copy: it stands there now
    read = {
        "type": "snapshot",
        "seq": 1,
        "ts": (NOW - dt.timedelta(hours=1)).isoformat(),
        "antenna": 2,
        "tags": [r.tags["B4"]],
    }
    session.rollback()
    posted = client.post("/api/v1/devices/me/tags", json=read, headers={"X-Device-Key": r.key})
    assert posted.status_code == 200 and posted.json()["moved"] == 1, posted.text
    body = client.get(
        f"/api/v1/libraries/{central}/route", params={"from": "poi:DESK", "to": f"item:{item}"}
    ).json()
    assert body["copy"]["source"] == "rfid"
    assert body["copy"]["shelf"] == "I-1" and body["copy"]["shelf_level"] == 2
    assert body["steps"][-1]["text"].endswith("side A, shelf level 2 from the bottom")
    scene = client.get(f"/api/v1/libraries/{central}/scene").json()
    i = scene["books"]["id"].index(item)
    assert scene["books"]["level"][i] == 2 and scene["books"]["side"][i] == 0
    assert scene["shelves"][scene["books"]["shelf"][i]]["code"] == "I-1"


def test_bad_plans_and_bad_places_get_clear_errors(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    doc, _ = plan_for(session, world)
    central = world.central.id
    url = f"/api/v1/libraries/{central}/floor-plan"
    boss = as_staff("central-lib")
    assert client.get(url).status_code == 404  # no plan yet
    # a shelf standing in the corridor wall... on top of another shelf
    shelves = [f for f in doc["features"] if f["properties"]["kind"] == "shelf"]
    shelves[1]["geometry"]["coordinates"] = shelves[0]["geometry"]["coordinates"]
    bad = client.put(url, json=doc, headers=boss)
    assert bad.status_code == 422
    assert {"field": "shelf I-1", "code": "overlap"} in [
        {"field": d["field"], "code": d["code"]} for d in bad.json()["details"]
    ]
    assert client.get(url).status_code == 404  # nothing stored
    garbage = client.put(
        url, content=b"\xff\xfe not json", headers={**boss, "content-type": "application/json"}
    )
    assert garbage.status_code == 400
    assert (
        client.put(url, json={"type": "FeatureCollection", "features": []}, headers=boss).json()[
            "details"
        ][0]["field"]
        == "features"
    )

    fixed = layout.bench_building(shelves_per_zone=2, levels=2)
    assert client.put(url, json=fixed, headers=boss).status_code == 200
    route = f"/api/v1/libraries/{central}/route"
    for params, field in (
        ({"from": "poi:NOWHERE", "to": "poi:DESK"}, "from"),
        ({"from": "poi:DESK", "to": "shelf:ZZZ"}, "to"),
        ({"from": "at:9,1,1", "to": "poi:DESK"}, "from"),
        ({"from": "at:1,x,1", "to": "poi:DESK"}, "from"),
        ({"from": "poi:DESK", "to": "barcode:nope"}, "to"),
        ({"from": "poi:DESK", "to": "toilet"}, "to"),
    ):
        r = client.get(route, params=params)
        assert r.status_code == 404, (params, r.text)
        assert r.json()["details"]["field"] == field


def test_only_staff_of_the_library_may_change_its_plan(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    doc = layout.bench_building(shelves_per_zone=2, levels=1)
    url = f"/api/v1/libraries/{world.central.id}/floor-plan"
    assert client.put(url, json=doc).status_code == 401
    card = (
        world.reader_central.card_number if hasattr(world.reader_central, "card_number") else None
    )
    if card:
        assert client.put(url, json=doc, headers=as_reader(card)).status_code in (401, 403)
    assert client.put(url, json=doc, headers=as_staff("airport-lib")).status_code == 403
    assert client.put(url, json=doc, headers=as_staff("admin")).status_code == 200
    # the airport's librarian may change the airport's
    airport = f"/api/v1/libraries/{world.airport.id}/floor-plan"
    assert client.put(airport, json=doc, headers=as_staff("airport-lib")).status_code == 200


def test_a_copy_of_another_library_is_not_on_this_plan(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    doc = layout.bench_building(shelves_per_zone=2, levels=1)
    assert (
        client.put(
            f"/api/v1/libraries/{world.central.id}/floor-plan", json=doc, headers=as_staff("admin")
        ).status_code
        == 200
    )
    (_item,) = copies(session, world, "Elsewhere", ["AIR-1"], world.airport)
    session.commit()
    r = client.get(
        f"/api/v1/libraries/{world.central.id}/route",
        params={"from": "poi:DESK", "to": "barcode:AIR-1"},
    )
    assert r.status_code == 404
    assert "another library" in r.json()["message"]


def test_a_librarian_replaces_the_plan_from_the_console(
    client: TestClient, session: Session, world: World
) -> None:
    """The console's floor plans page: a file that is not JSON and a plan with a kiosk off
    its floor are refused with the reason and store nothing; a good plan is saved and shown;
    a librarian of another branch may not replace this one's plan."""
    doc, r = plan_for(session, world)
    central = world.central.id
    sign_in(client, "staff", "central-lib", STAFF_PW)
    page = client.get(f"/staff/floor-plans?library={central}")
    assert page.status_code == 200 and "This library has no floor plan yet." in page.text
    csrf = csrf_of(page.text)

    def send(name: str, body: bytes, library: int = central) -> Any:
        return client.post(
            "/staff/floor-plans",
            data={"csrf_token": csrf, "library": str(library)},
            files={"plan": (name, body, "application/geo+json")},
            follow_redirects=False,
        )

    bad = send("plan.geojson", b"\xff{ not json")
    assert bad.status_code == 422 and "plan.geojson is not JSON" in bad.text
    off = copy.deepcopy(doc)
    kiosk = next(f for f in off["features"] if f["properties"].get("code") == "KIOSK-1")
    kiosk["geometry"]["coordinates"] = [500.0, 4.0]
    refused = send("moved.geojson", orjson.dumps(off))
    assert refused.status_code == 422
    assert "moved.geojson was not saved" in refused.text
    assert "kiosk KIOSK-1 lies outside level 1" in refused.text
    client.get("/lang/zh_Hans")
    assert "kiosk KIOSK-1 位于第 1 层楼面之外" in send("moved.geojson", orjson.dumps(off)).text
    # A shelf new to the library is added through the shelves' own checks.
    bad_range = layout.ShelfSpec("I-9", "lcc", "QA76", "not a call number", 5, 2)
    miscalled = plan_of(session, world, r, [bad_range])
    session.commit()  # ends the read (SQLite) without expiring the world's objects
    wrong = send("shelves.geojson", orjson.dumps(miscalled))
    assert wrong.status_code == 422, wrong.text[-3000:]
    assert "不是有效的 LCC 索书号" in wrong.text  # the shelf's check
    client.get("/lang/en")
    assert "not a LCC call number" in send("shelves.geojson", orjson.dumps(miscalled)).text
    assert client.get(f"/api/v1/libraries/{central}/floor-plan").status_code == 404

    saved = send("plan.geojson", orjson.dumps(doc))
    assert saved.status_code == 303, saved.text
    shown = client.get(saved.headers["location"])
    assert "Plan version 1 is saved" in shown.text
    assert "Ground floor, First floor" in shown.text and "<dd>2</dd>" in shown.text  # shelves
    assert client.get(f"/api/v1/libraries/{central}/floor-plan").status_code == 200
    client.get("/lang/zh_Hans")
    assert "平面图第 1 版已保存" in client.get(saved.headers["location"]).text
    client.get("/lang/en")

    sign_in(client, "staff", "airport-lib", STAFF_PW)
    theirs = client.get("/staff/floor-plans")
    assert theirs.status_code == 200 and str(world.airport.name_en) in theirs.text
    csrf = csrf_of(theirs.text)
    assert send("plan.geojson", orjson.dumps(doc)).status_code == 403
    sign_in(client, "staff", "cataloguer", STAFF_PW)
    assert client.get("/staff/floor-plans").status_code == 403


def test_the_map_names_a_floor_as_the_record_page_does(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    doc, r = plan_for(session, world)
    central = world.central.id
    put = client.put(
        f"/api/v1/libraries/{central}/floor-plan", json=doc, headers=as_staff("central-lib")
    )
    assert put.status_code == 200, put.text
    item_id = r.items["B1"]
    record_id = session.get_one(catalog.Item, item_id).record_id
    session.rollback()
    record = client.get(f"/catalog/records/{record_id}")
    assert "Floor 2 · Literature" in record.text  # the location's floor
    shown = client.get(f"/libraries/{central}/map", params={"to": f"item:{item_id}"})
    assert shown.status_code == 200
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", shown.text)
    assert "Floor 2 · First floor" in captions  # the same number first, then the plan's words
    client.get("/lang/zh_Hans")
    zh = client.get(f"/libraries/{central}/map", params={"to": f"item:{item_id}"})
    assert "2 层 · 二层" in re.findall(r"<figcaption>([^<]*)</figcaption>", zh.text)
    assert "2 层 · 文学" in client.get(f"/catalog/records/{record_id}").text
