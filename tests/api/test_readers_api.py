"""Readers through the API: self-registration, duplicates, activation, own settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import World


def registration(world: World, **over: Any) -> dict[str, Any]:
    body = {
        "name": "张伟",
        "birth_date": "1992-04-03",
        "category": "adult",
        "home_library_id": world.community.id,
        "email": "zhang.wei@example.org",
        "password": "a long passphrase",
        "pin": "2468",
    }
    body.update(over)
    return body


def test_self_registration_gives_a_pending_card_that_can_sign_in(
    client: TestClient, world: World
) -> None:
    r = client.post("/api/v1/readers/register", json=registration(world))
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["status"] == "pending" and card["registered_via"] == "online"
    assert card["card_number"].startswith("2900") and len(card["card_number"]) == 14
    assert card["expires_on"] == "2029-11-17"  # three years for adults
    assert card["keep_history"] is False  # private by default
    assert card["has_pin"] is True and "password" not in str(card) and "hash" not in str(card)
    token = client.post(
        "/api/v1/auth/token",
        json={"kind": "reader", "login": card["card_number"], "password": "a long passphrase"},
    )
    assert token.status_code == 200


def test_registration_errors_name_each_field(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/readers/register",
        json=registration(
            world, name=" ", email="nope", password="short", pin="11", home_library_id=999
        ),
    )
    assert r.status_code == 422
    fields = {d["field"]: d["code"] for d in r.json()["details"]}
    assert fields == {
        "name": "required",
        "email": "invalid_email",
        "password": "too_short",
        "pin": "invalid_pin",
        "home_library_id": "unknown_library",
    }


def test_registration_with_a_missing_field_names_the_json_path(
    client: TestClient, world: World
) -> None:
    body = registration(world)
    del body["birth_date"]
    r = client.post("/api/v1/readers/register", json=body)
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["details"]] == ["body.birth_date"]


def test_duplicate_email_is_409_naming_the_field(client: TestClient, world: World) -> None:
    assert client.post("/api/v1/readers/register", json=registration(world)).status_code == 201
    r = client.post(
        "/api/v1/readers/register", json=registration(world, email="ZHANG.WEI@example.org")
    )
    assert r.status_code == 409
    assert r.json()["error"] == "duplicate" and r.json()["details"]["field"] == "email"


def test_duplicate_card_number_at_the_desk_is_409(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    body = {
        "name": "Ann Lee",
        "birth_date": "1980-01-01",
        "category": "adult",
        "home_library_id": world.airport.id,
        "card_number": "CARD000001",
    }
    r = client.post("/api/v1/readers", json=body, headers=as_staff("airport-lib"))
    assert r.status_code == 409
    assert r.json()["details"] == {
        "entity": "reader",
        "field": "card_number",
        "value": "CARD000001",
    }


def test_a_desk_activates_a_pending_card_from_any_library(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    reader = client.post("/api/v1/readers/register", json=registration(world)).json()
    r = client.post(f"/api/v1/readers/{reader['id']}/activate", headers=as_staff("airport-desk"))
    assert r.status_code == 200
    # The airport desk sees the result, but its card look-up stays a summary.
    assert r.json()["status"] == "active"
    again = client.post(
        f"/api/v1/readers/{reader['id']}/activate", headers=as_staff("airport-desk")
    )
    assert again.status_code == 409 and again.json()["error"] == "invalid_status_change"


def test_staff_status_changes_follow_the_transition_table(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    h = as_staff("community-lib")
    rid = world.reader_community.id
    assert (
        client.patch(
            f"/api/v1/readers/{rid}",
            json={"status": "blocked", "blocked_reason": "lost"},
            headers=h,
        ).json()["blocked_reason"]
        == "lost"
    )
    assert (
        client.patch(f"/api/v1/readers/{rid}", json={"status": "expired"}, headers=h).status_code
        == 409
    )
    unblocked = client.patch(f"/api/v1/readers/{rid}", json={"status": "active"}, headers=h).json()
    assert unblocked["status"] == "active" and unblocked["blocked_reason"] is None
    assert (
        client.patch(f"/api/v1/readers/{rid}", json={"status": "wizard"}, headers=h).status_code
        == 422
    )


def test_expired_cards_show_as_expired(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    h = as_staff("community-lib")
    r = client.patch(
        f"/api/v1/readers/{world.reader_community.id}", json={"expires_on": "2026-01-01"}, headers=h
    )
    assert r.json()["status"] == "expired"


def test_readers_change_their_own_privacy_and_contact(
    client: TestClient, world: World, as_reader: Callable[[str], dict[str, str]]
) -> None:
    h = as_reader("CARD000001")
    r = client.patch(
        "/api/v1/readers/me", json={"keep_history": True, "phone": "+86 138 0000 0000"}, headers=h
    )
    assert r.status_code == 200
    assert r.json()["keep_history"] is True and r.json()["phone"] == "+86 138 0000 0000"
    taken = client.patch("/api/v1/readers/me", json={"email": "reader2@example.org"}, headers=h)
    assert taken.status_code == 409
    weak = client.patch("/api/v1/readers/me", json={"new_pin": "0000"}, headers=h)
    assert weak.status_code == 422 and weak.json()["details"][0]["field"] == "new_pin"
    assert client.get("/api/v1/readers/me", headers=h).json()["email"] == "reader1@example.org"


def test_staff_tokens_cannot_use_reader_endpoints(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    r = client.get("/api/v1/readers/me", headers=as_staff("admin"))
    assert r.status_code == 403


def test_born_today_is_not_in_the_future(client: TestClient, world: World) -> None:
    today = dt.date(2026, 11, 18).isoformat()
    r = client.post(
        "/api/v1/readers/register",
        json=registration(world, birth_date=today, category="child", guardian_name="王丽"),
    )
    assert r.status_code == 201


def test_absurd_ids_and_overlong_values_are_422_not_500(
    client: TestClient, world: World, as_reader: Callable[[str], dict[str, str]]
) -> None:
    r = client.get("/api/v1/libraries/99999999999999999999")
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "path.unit_id"
    assert client.get("/api/v1/libraries/0").status_code == 422
    r = client.post("/api/v1/readers/register", json=registration(world, home_library_id=2**40))
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "body.home_library_id"
    r = client.patch(
        "/api/v1/readers/me", json={"phone": "9" * 24}, headers=as_reader("CARD000001")
    )
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "phone"
    r = client.post(
        "/api/v1/readers/register",
        json=registration(
            world, birth_date="2018-01-01", category="child", guardian_name="x" * 120 + "y"
        ),
    )
    assert r.status_code == 422
