"""The consortium tree and its calendars through the API."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories import World


def test_public_list_shows_each_library_with_today(client: TestClient, world: World) -> None:
    rows = client.get("/api/v1/libraries").json()
    assert [r["code"] for r in rows] == ["central", "airport", "community"]
    today = rows[0]["today"]
    # 14:00 in Beijing on Wednesday 18 November 2026; open 9 to 21.
    assert today["date"] == "2026-11-18" and today["open_now"] is True
    assert today["periods"] == [{"opens": "09:00", "closes": "21:00"}]
    assert today["open_until"] == "2026-11-18T21:00:00+08:00"


def test_opening_answers_is_open_and_next_opening(client: TestClient, world: World) -> None:
    r = client.get(
        f"/api/v1/libraries/{world.central.id}/opening", params={"at": "2026-11-18T22:30:00+08:00"}
    )
    assert r.json() == {
        "at": "2026-11-18T22:30:00+08:00",
        "is_open": False,
        "open_until": None,
        "next_opening": "2026-11-19T09:00:00+08:00",
    }
    naive = client.get(
        f"/api/v1/libraries/{world.central.id}/opening", params={"at": "2026-11-18T22:30:00"}
    )
    assert naive.status_code == 422 and naive.json()["details"][0]["field"] == "query.at"


def test_holidays_close_a_library(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    r = client.post(
        f"/api/v1/libraries/{world.central.id}/closed-days",
        json={"day": "2026-11-19", "reason_en": "Staff training", "reason_zh": "员工培训"},
        headers=as_staff("admin"),
    )
    assert r.status_code == 201
    ans = client.get(
        f"/api/v1/libraries/{world.central.id}/opening", params={"at": "2026-11-18T22:30:00+08:00"}
    ).json()
    assert ans["next_opening"] == "2026-11-20T09:00:00+08:00"
    dup = client.post(
        f"/api/v1/libraries/{world.central.id}/closed-days",
        json={"day": "2026-11-19"},
        headers=as_staff("admin"),
    )
    assert dup.status_code == 409 and dup.json()["details"]["field"] == "day"


def test_duplicate_isil_is_409_naming_the_field(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    body = {
        "kind": "branch",
        "parent_id": world.central.id,
        "code": "east",
        "name_en": "East",
        "name_zh": "东区",
        "isil": "CN-T0001-A",
    }
    r = client.post("/api/v1/libraries", json=body, headers=as_staff("admin"))
    assert r.status_code == 409
    assert r.json()["details"]["field"] == "isil"


def test_tree_rules_and_isil_format_are_checked(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    h = as_staff("admin")
    body = {
        "kind": "branch",
        "parent_id": world.airport.id,
        "code": "sub",
        "name_en": "Sub",
        "name_zh": "子",
        "isil": "not an isil!",
    }
    r = client.post("/api/v1/libraries", json=body, headers=h)
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} == {"parent_id", "isil"}
    tz = client.post(
        "/api/v1/libraries",
        json={**body, "parent_id": world.central.id, "isil": None, "timezone": "Mars/Olympus"},
        headers=h,
    )
    assert tz.status_code == 422 and tz.json()["details"][0]["field"] == "timezone"


def test_hours_with_bad_times_are_rejected_whole(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    h = as_staff("admin")
    bad = {
        "hours": {
            "0": [{"opens": "09:00", "closes": "25:00"}],
            "1": [{"opens": "10:00", "closes": "09:00"}],
        }
    }
    r = client.put(f"/api/v1/libraries/{world.airport.id}/hours", json=bad, headers=h)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.hours.0.0"
    # Nothing was half-written: the old hours stand.
    today = client.get(f"/api/v1/libraries/{world.airport.id}").json()["today"]
    assert today["periods"] == [{"opens": "09:00", "closes": "21:00"}]


def test_locations_are_listed_and_unique_per_library(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    h = as_staff("admin")
    loc = {
        "code": "2F-SCI",
        "floor": 2,
        "zone": "Sciences",
        "name_en": "Sciences",
        "name_zh": "自然科学",
        "shelf_from": "S01",
        "shelf_to": "S24",
    }
    assert (
        client.post(
            f"/api/v1/libraries/{world.central.id}/locations", json=loc, headers=h
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"/api/v1/libraries/{world.central.id}/locations", json=loc, headers=h
        ).status_code
        == 409
    )
    assert (
        client.post(
            f"/api/v1/libraries/{world.airport.id}/locations", json=loc, headers=h
        ).status_code
        == 201
    )
    listed = client.get(f"/api/v1/libraries/{world.central.id}/locations").json()
    assert [(x["code"], x["floor"], x["shelf_from"], x["shelf_to"]) for x in listed] == [
        ("2F-SCI", 2, "S01", "S24")
    ]


def test_unknown_library_is_404(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/libraries/99999")
    assert r.status_code == 404 and r.json()["error"] == "library_not_found"
    assert client.get("/api/v1/no-such-thing").json()["error"] == "not_found"
