"""Signing in through the API: tokens, wrong passwords, throttling, bad JSON."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories import READER_PW, STAFF_PW, World


def test_staff_and_readers_get_tokens_that_say_who_they_are(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    me = client.get("/api/v1/me", headers=as_staff("airport-lib")).json()
    assert me["kind"] == "staff" and me["display_name"] == "Airport-Lib"
    assert me["grants"] == [{"role": "librarian", "org_unit_id": world.airport.id}]
    assert "readers.manage" in me["permissions"] and "org.manage" not in me["permissions"]

    r = client.post(
        "/api/v1/auth/token",
        json={"kind": "reader", "login": "reader1@example.org", "password": READER_PW},
    )
    assert r.status_code == 200
    assert r.json()["principal"] == {
        "kind": "reader",
        "id": world.reader_central.id,
        "display_name": "Reader 1",
        "org_unit_id": world.central.id,
        "grants": [],
        "permissions": [],
    }


def test_wrong_password_is_401_with_the_error_shape(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": "nope"}
    )
    assert r.status_code == 401
    assert r.json() == {
        "error": "bad_credentials",
        "message": "wrong name or password",
        "details": None,
    }
    unknown = client.post(
        "/api/v1/auth/token", json={"kind": "staff", "login": "ghost", "password": "x"}
    )
    assert unknown.status_code == 401 and unknown.json()["error"] == "bad_credentials"


def test_repeated_failures_lock_the_account_but_not_others(
    client: TestClient, world: World
) -> None:
    for _ in range(5):
        r = client.post(
            "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": "wrong"}
        )
        assert r.status_code == 401
    locked = client.post(
        "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": STAFF_PW}
    )
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_attempts"
    assert int(locked.headers["Retry-After"]) > 0
    other = client.post(
        "/api/v1/auth/token", json={"kind": "staff", "login": "cataloguer", "password": STAFF_PW}
    )
    assert other.status_code == 200


def test_repeated_failures_from_one_address_are_throttled_across_accounts(
    client: TestClient, world: World
) -> None:
    for i in range(30):
        client.post(
            "/api/v1/auth/token", json={"kind": "reader", "login": f"guess{i}", "password": "x"}
        )
    r = client.post(
        "/api/v1/auth/token", json={"kind": "staff", "login": "cataloguer", "password": STAFF_PW}
    )
    assert r.status_code == 429


def test_success_resets_the_account_count(client: TestClient, world: World) -> None:
    for _ in range(4):
        client.post(
            "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": "wrong"}
        )
    assert (
        client.post(
            "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": STAFF_PW}
        ).status_code
        == 200
    )
    for _ in range(4):
        client.post(
            "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": "wrong"}
        )
    assert (
        client.post(
            "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": STAFF_PW}
        ).status_code
        == 200
    )


def test_revoked_and_garbage_tokens_are_401(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    headers = as_staff("admin")
    assert client.delete("/api/v1/auth/token", headers=headers).status_code == 204
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer garbage"}).status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_disabled_staff_cannot_sign_in_and_their_tokens_stop_working(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    desk = as_staff("airport-desk")
    r = client.patch(
        f"/api/v1/staff/{world.airport_desk.id}",
        json={"active": False},
        headers=as_staff("airport-lib"),
    )
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/me", headers=desk).status_code == 401
    r = client.post(
        "/api/v1/auth/token", json={"kind": "staff", "login": "airport-desk", "password": STAFF_PW}
    )
    assert r.status_code == 401 and r.json()["error"] == "account_disabled"


def test_malformed_json_is_422_with_the_field_path(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/auth/token",
        content=b'{"kind": "staff", "login": ',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"
    assert r.json()["details"][0]["field"].startswith("body")
    r = client.post("/api/v1/auth/token", json={"kind": "wizard", "login": "a", "password": "b"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.kind"


def test_device_keys_authenticate_devices_only(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    r = client.post(
        "/api/v1/devices",
        json={"name": "Kiosk 1", "kind": "kiosk", "org_unit_id": world.airport.id},
        headers=as_staff("admin"),
    )
    assert r.status_code == 201
    key = r.json()["key"]
    assert key.startswith("bvd_") and r.json()["hint"] == key[:10]
    me = client.get("/api/v1/devices/me", headers={"X-Device-Key": key}).json()
    assert me == {
        "kind": "device",
        "id": r.json()["id"],
        "display_name": "Kiosk 1",
        "org_unit_id": world.airport.id,
        "grants": [],
        "permissions": [],
    }
    assert client.get("/api/v1/readers", headers={"X-Device-Key": key}).status_code == 403
    assert (
        client.get("/api/v1/devices/me", headers={"X-Device-Key": "bvd_wrong"}).status_code == 401
    )
    bad = client.post(
        "/api/v1/devices",
        json={"name": "X", "kind": "toaster", "org_unit_id": world.airport.id},
        headers=as_staff("admin"),
    )
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "kind"
