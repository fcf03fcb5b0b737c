"""Nonsense from clients: every answer is a 4xx in the one error shape, never a 500.

Found by fuzzing the OpenAPI schema (schemathesis) and by hand; each case stays here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi.testclient import TestClient

from tests.factories import World

ERROR_KEYS = {"error", "message", "details"}


def test_offsets_and_moments_out_of_range(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    r = client.get("/api/v1/readers?offset=9223372036854775808", headers=as_staff("admin"))
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "query.offset"
    for at in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        r = client.get(f"/api/v1/libraries/{world.central.id}/opening", params={"at": at})
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "query.at"


def test_time_zones_must_be_zones(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    base = {"kind": "branch", "parent_id": world.central.id, "name_en": "T", "name_zh": "T"}
    for i, tz in enumerate(("Asia", "../../etc/passwd", "x" * 64)):
        body = {**base, "code": f"tz-{i}", "timezone": tz}
        r = client.post("/api/v1/libraries", json=body, headers=as_staff("admin"))
        assert r.status_code == 422, tz
        assert r.json()["details"][0]["field"] == "timezone"
    too_long = {**base, "code": "tz-long", "timezone": "x" * 300}
    r = client.post("/api/v1/libraries", json=too_long, headers=as_staff("admin"))
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "body.timezone"


def test_control_characters_in_names_are_refused(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    body = {
        "kind": "branch",
        "parent_id": world.central.id,
        "code": "nul",
        "name_en": "a\u0000b",
        "name_zh": "乙",
    }
    r = client.post("/api/v1/libraries", json=body, headers=as_staff("admin"))
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "body.name_en"


def test_weekly_hours_are_bounded(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    url = f"/api/v1/libraries/{world.airport.id}/hours"
    h = as_staff("admin")
    r = client.put(url, json={"hours": {"-1": []}}, headers=h)
    assert r.status_code == 422
    many = {"hours": {"0": [{"opens": "09:00", "closes": "10:00"}] * 10_000}}
    r = client.put(url, json=many, headers=h)
    assert r.status_code == 422 and len(r.content) < 5_000


def test_oversized_and_unreadable_bodies(client: TestClient, world: World) -> None:
    big = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    r = client.post(
        "/api/v1/readers/register", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and set(r.json()) == ERROR_KEYS

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it streams
        yield b'{"name": "'
        for _ in range(120):
            yield b"x" * 10_000
        yield b'"}'

    r = client.post(
        "/api/v1/readers/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    r = client.post(
        "/api/v1/readers/register",
        content=b'{"name": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422) and set(r.json()) == ERROR_KEYS
    for body in (b"[]", b"null", b"", b"<xml/>"):
        r = client.post(
            "/api/v1/readers/register", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422 and set(r.json()) == ERROR_KEYS


def test_the_openapi_document_describes_the_error_shape(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    op = spec["paths"]["/api/v1/readers/{reader_id}"]["get"]
    for status in ("401", "403", "404", "422"):
        ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorOut")
    assert set(spec["components"]["schemas"]["ErrorOut"]["required"]) == {"error", "message"}


def test_no_lax_coercion_of_dates_numbers_and_switches(
    client: TestClient,
    world: World,
    as_staff: Callable[[str], dict[str, str]],
    as_reader: Callable[[str], dict[str, str]],
) -> None:
    h = as_staff("admin")
    r = client.patch(
        f"/api/v1/readers/{world.reader_central.id}", json={"expires_on": 0}, headers=h
    )
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "body.expires_on"
    r = client.post(f"/api/v1/libraries/{world.central.id}/closed-days", json={"day": 0}, headers=h)
    assert r.status_code == 422
    loc = {"code": "X", "floor": False, "zone": "A", "name_en": "x", "name_zh": "x"}
    r = client.post(f"/api/v1/libraries/{world.central.id}/locations", json=loc, headers=h)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "body.floor"
    r = client.patch(
        "/api/v1/readers/me", json={"keep_history": 0.0}, headers=as_reader("CARD000001")
    )
    assert r.status_code == 422
    ok = client.patch(
        f"/api/v1/readers/{world.reader_central.id}", json={"expires_on": "2030-01-31"}, headers=h
    )
    assert ok.status_code == 200 and ok.json()["expires_on"] == "2030-01-31"


def test_moments_are_iso_text_not_epoch_numbers(client: TestClient, world: World) -> None:
    url = f"/api/v1/libraries/{world.central.id}/opening"
    assert client.get(url, params={"at": "99999999999"}).status_code == 422
    assert client.get(url, params={"at": "0.5"}).status_code == 422
    assert client.get(url, params={"at": "2026-11-21T09:00:00+08:00"}).status_code == 200
