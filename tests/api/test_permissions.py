"""The permission matrix: who may do what, where.

Each row names a caller and a request and the status the caller must get. Anonymous
callers see only public endpoints; readers see only themselves; staff act only within the
libraries their roles cover (a role on a library covers its branches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import World


def _headers(
    who: str, as_staff: Callable[[str], dict[str, str]], as_reader: Callable[[str], dict[str, str]]
) -> dict[str, str]:
    if who == "anonymous":
        return {}
    if who == "unknown-token":
        return {"Authorization": "Bearer not-a-token-anyone-was-given"}
    if who.startswith("reader:"):
        return as_reader(who.split(":", 1)[1])
    return as_staff(who)


# (caller, method, path template, json body or None, expected status)
MATRIX: list[tuple[str, str, str, Any, int]] = [
    # public
    ("anonymous", "GET", "/api/v1/libraries", None, 200),
    ("anonymous", "GET", "/api/v1/libraries/{central}/opening", None, 200),
    ("anonymous", "GET", "/api/v1/libraries/{central}/locations", None, 200),
    ("anonymous", "GET", "/health", None, 200),
    ("anonymous", "GET", "/api/v1/openapi.json", None, 200),
    # anonymous sees nothing private
    ("anonymous", "GET", "/api/v1/me", None, 401),
    ("anonymous", "GET", "/api/v1/readers", None, 401),
    ("anonymous", "GET", "/api/v1/readers/{reader_central}", None, 401),
    ("anonymous", "GET", "/api/v1/staff", None, 401),
    ("anonymous", "GET", "/api/v1/audit", None, 401),
    (
        "anonymous",
        "POST",
        "/api/v1/libraries",
        {"kind": "branch", "parent_id": 0, "code": "x", "name_en": "X", "name_zh": "X"},
        401,
    ),
    # a reader sees their own account only
    ("reader:CARD000001", "GET", "/api/v1/readers/me", None, 200),
    ("reader:CARD000001", "GET", "/api/v1/readers/{reader_central}", None, 200),
    ("reader:CARD000001", "GET", "/api/v1/readers/{reader_community}", None, 403),
    ("reader:CARD000001", "GET", "/api/v1/readers", None, 403),
    ("reader:CARD000001", "GET", "/api/v1/readers/by-card/CARD000002", None, 403),
    ("reader:CARD000001", "GET", "/api/v1/staff", None, 403),
    ("reader:CARD000001", "GET", "/api/v1/staff/{airport_desk}", None, 403),
    ("reader:CARD000001", "PATCH", "/api/v1/readers/{reader_central}", {"status": "blocked"}, 403),
    ("reader:CARD000001", "GET", "/api/v1/audit", None, 403),
    # staff: readers of their own libraries, not of others
    ("community-lib", "GET", "/api/v1/readers/{reader_community}", None, 200),
    ("community-lib", "GET", "/api/v1/readers/{reader_central}", None, 403),
    ("central-lib", "GET", "/api/v1/readers/{reader_community}", None, 200),  # branch of central
    ("airport-desk", "GET", "/api/v1/readers/{reader_community}", None, 403),
    ("cataloguer", "GET", "/api/v1/readers", None, 403),
    ("cataloguer", "GET", "/api/v1/readers/{reader_central}", None, 403),
    ("airport-desk", "PATCH", "/api/v1/readers/{reader_community}", {"status": "blocked"}, 403),
    ("community-lib", "PATCH", "/api/v1/readers/{reader_community}", {"status": "blocked"}, 200),
    # staff accounts: a librarian of one library cannot change staff of another
    ("airport-lib", "PATCH", "/api/v1/staff/{community_librarian}", {"full_name": "Hijacked"}, 403),
    ("airport-lib", "GET", "/api/v1/staff/{community_librarian}", None, 403),
    ("airport-lib", "PATCH", "/api/v1/staff/{airport_desk}", {"full_name": "Sun Lei"}, 200),
    ("central-lib", "PATCH", "/api/v1/staff/{airport_desk}", {"full_name": "Sun Lei"}, 200),
    ("central-lib", "PATCH", "/api/v1/staff/{admin}", {"active": False}, 403),
    ("airport-desk", "GET", "/api/v1/staff", None, 403),
    (
        "airport-lib",
        "POST",
        "/api/v1/staff/{airport_desk}/grants",
        {"role": "admin", "org_unit_id": "{airport}"},
        403,
    ),
    (
        "airport-lib",
        "POST",
        "/api/v1/staff/{airport_desk}/grants",
        {"role": "librarian", "org_unit_id": "{community}"},
        403,
    ),
    (
        "airport-lib",
        "POST",
        "/api/v1/staff/{airport_desk}/grants",
        {"role": "librarian", "org_unit_id": "{airport}"},
        201,
    ),
    # the tree and its calendars: admins only, within scope
    (
        "central-lib",
        "POST",
        "/api/v1/libraries",
        {
            "kind": "branch",
            "parent_id": "{central}",
            "code": "new",
            "name_en": "New",
            "name_zh": "新",
        },
        403,
    ),
    (
        "admin",
        "POST",
        "/api/v1/libraries",
        {
            "kind": "branch",
            "parent_id": "{central}",
            "code": "new",
            "name_en": "New",
            "name_zh": "新",
        },
        201,
    ),
    ("airport-lib", "PUT", "/api/v1/libraries/{airport}/hours", {"hours": {}}, 403),
    (
        "admin",
        "PUT",
        "/api/v1/libraries/{airport}/hours",
        {"hours": {"0": [{"opens": "06:00", "closes": "24:00"}]}},
        200,
    ),
    # cataloguing: staff whose roles include it
    ("anonymous", "POST", "/api/v1/catalog/records", {"title": "X"}, 401),
    ("reader:CARD000001", "POST", "/api/v1/catalog/records", {"title": "X"}, 403),
    ("airport-desk", "POST", "/api/v1/catalog/records", {"title": "X"}, 403),
    ("cataloguer", "POST", "/api/v1/catalog/records", {"title": "X"}, 201),
    ("airport-lib", "POST", "/api/v1/catalog/records", {"title": "X"}, 201),
    # the audit log: admins and librarians, within scope
    ("airport-lib", "GET", "/api/v1/audit", None, 200),
    ("airport-desk", "GET", "/api/v1/audit", None, 403),
    (
        "admin",
        "POST",
        "/api/v1/devices",
        {"name": "Gate", "kind": "gate", "org_unit_id": "{airport}"},
        201,
    ),
    (
        "airport-lib",
        "POST",
        "/api/v1/devices",
        {"name": "Gate", "kind": "gate", "org_unit_id": "{airport}"},
        403,
    ),
    # circulation's write requests (one unit of work each): credentials first, then roles
    ("anonymous", "POST", "/api/v1/circulation/checkout", {}, 401),
    ("anonymous", "POST", "/api/v1/circulation/checkin", {"barcode": "X"}, 401),
    (
        "unknown-token",
        "POST",
        "/api/v1/circulation/checkout",
        {"barcode": "X", "library_id": 1},
        401,
    ),
    (
        "unknown-token",
        "POST",
        "/api/v1/circulation/holds",
        {"record_id": 1, "pickup_library_id": 1},
        401,
    ),
    (
        "reader:CARD000001",
        "POST",
        "/api/v1/circulation/checkin",
        {"barcode": "X", "library_id": "{central}"},
        403,
    ),
    (
        "reader:CARD000001",
        "POST",
        "/api/v1/circulation/payments",
        {"reader_id": "{reader_central}", "amount": "1.00"},
        403,
    ),
    (
        "reader:CARD000001",
        "POST",
        "/api/v1/circulation/checkout",
        {"reader_id": "{reader_community}", "barcode": "X", "library_id": "{central}"},
        403,
    ),
]


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "expected"),
    MATRIX,
    ids=[f"{m[0]} {m[1]} {m[2]}" for m in MATRIX],
)
def test_permission_matrix(
    client: TestClient,
    world: World,
    as_staff: Callable[[str], dict[str, str]],
    as_reader: Callable[[str], dict[str, str]],
    who: str,
    method: str,
    path: str,
    body: Any,
    expected: int,
) -> None:
    ids = {
        "central": world.central.id,
        "airport": world.airport.id,
        "community": world.community.id,
        "reader_central": world.reader_central.id,
        "reader_community": world.reader_community.id,
        "community_librarian": world.community_librarian.id,
        "airport_desk": world.airport_desk.id,
        "admin": world.admin.id,
    }
    url = path.format(**ids)
    r = client.request(
        method, url, json=_fill(body, ids), headers=_headers(who, as_staff, as_reader)
    )
    assert r.status_code == expected, r.text
    if expected >= 400:
        assert set(r.json()) == {"error", "message", "details"}


def test_a_forbidden_change_changes_nothing(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    r = client.patch(
        f"/api/v1/staff/{world.community_librarian.id}",
        json={"full_name": "Hijacked"},
        headers=as_staff("airport-lib"),
    )
    assert r.status_code == 403
    shown = client.get(
        f"/api/v1/staff/{world.community_librarian.id}", headers=as_staff("admin")
    ).json()
    assert shown["full_name"] == "Community-Lib"


def test_staff_listing_shows_only_the_callers_libraries(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    names = {
        s["username"] for s in client.get("/api/v1/staff", headers=as_staff("airport-lib")).json()
    }
    assert names == {"airport-lib", "airport-desk"}
    central = {
        s["username"] for s in client.get("/api/v1/staff", headers=as_staff("central-lib")).json()
    }
    # The consortium admin belongs to the consortium, above the central library.
    assert central == {"central-lib", "airport-lib", "community-lib", "airport-desk", "cataloguer"}


def test_reader_search_is_limited_to_the_scope(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    page = client.get("/api/v1/readers", headers=as_staff("community-lib")).json()
    assert [r["card_number"] for r in page["items"]] == ["CARD000002"] and page["total"] == 1
    page = client.get("/api/v1/readers", headers=as_staff("airport-lib")).json()
    assert page == {"total": 0, "items": []}


def test_any_desk_can_look_up_a_card_but_sees_a_summary_outside_its_scope(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    r = client.get("/api/v1/readers/by-card/CARD000002", headers=as_staff("airport-desk"))
    assert r.status_code == 200
    assert set(r.json()) == {
        "id",
        "card_number",
        "name",
        "home_library_id",
        "category",
        "status",
        "expires_on",
    }
    full = client.get(
        "/api/v1/readers/by-card/CARD000002", headers=as_staff("community-lib")
    ).json()
    assert full["email"] == "reader2@example.org" and full["birth_date"]
    missing = client.get("/api/v1/readers/by-card/NOPE", headers=as_staff("airport-desk"))
    assert missing.status_code == 404 and missing.json()["error"] == "reader_not_found"


def test_audit_log_records_who_did_what_and_respects_scope(
    client: TestClient, world: World, as_staff: Callable[[str], dict[str, str]]
) -> None:
    client.patch(
        f"/api/v1/readers/{world.reader_community.id}",
        json={"status": "blocked", "blocked_reason": "lost items"},
        headers=as_staff("community-lib"),
    )
    entries = client.get("/api/v1/audit", headers=as_staff("community-lib")).json()
    change = next(e for e in entries if e["action"] == "reader.change")
    assert change["actor_id"] == world.community_librarian.id
    assert change["entity"] == "reader" and change["entity_id"] == str(world.reader_community.id)
    assert change["details"] == {"fields": ["status"]}
    airport_view = client.get("/api/v1/audit", headers=as_staff("airport-lib")).json()
    assert all(e["org_unit_id"] == world.airport.id for e in airport_view)
    assert not any(e["action"] == "reader.change" for e in airport_view)
