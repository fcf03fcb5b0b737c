"""Holes an outside probe found, each kept shut by a test that failed before its fix:
rule scope on update (1), device kinds (2), sessions after a stolen one (6), reader data
across libraries (7), throttling and forwarded addresses (9)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import accounts, circulation
from biblioverse.app import create_app
from biblioverse.circulation.matrix import matrix
from biblioverse.deps import get_now
from biblioverse.settings import Settings
from tests import factories
from tests.api.conftest import token_for
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import NOW, READER_PW, STAFF_PW, World

Headers = Callable[[str], dict[str, str]]


def _default_rule(session: Session, w: World) -> int:
    factories.rule(session, w, loan_days=21, renewals=2, max_loans=10)
    session.commit()
    found = next(r.id for r in matrix(session) if r.org_path == w.consortium.path)
    session.commit()  # no transaction left open: SQLite's writer is the app's
    return found


def _rule_body(unit_id: int) -> dict[str, object]:
    return {"org_unit_id": unit_id, "name": "mine", "policy": {"loan_days": 7}}


# --- 1. an update checks the stored object's scope as well as the new one ---------------------


def test_a_branch_librarian_cannot_take_over_the_consortium_rule(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    rule_id = _default_rule(session, world)
    r = client.put(
        f"/api/v1/circulation/rules/{rule_id}",
        json=_rule_body(world.airport.id),
        headers=as_staff("airport-lib"),
    )
    assert r.status_code == 403, r.text
    session.expire_all()
    rule = next(x for x in matrix(session) if x.id == rule_id)
    assert rule.org_path == world.consortium.path and rule.policy.loan_days == 21
    factories.copies(session, world, "Still lendable", ["B1"])
    body = {"reader_id": world.reader_central.id, "barcode": "B1", "library_id": world.central.id}
    session.commit()
    lent = client.post("/api/v1/circulation/checkout", json=body, headers=as_staff("central-lib"))
    assert lent.status_code == 201, lent.text


def test_the_default_rule_keeps_its_place_even_for_an_admin(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    rule_id = _default_rule(session, world)
    r = client.put(
        f"/api/v1/circulation/rules/{rule_id}",
        json=_rule_body(world.airport.id),
        headers=as_staff("admin"),
    )
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["details"]] == ["org_unit_id"]
    changed = client.put(
        f"/api/v1/circulation/rules/{rule_id}",
        json=_rule_body(world.consortium.id),
        headers=as_staff("admin"),
    )
    assert changed.status_code == 200 and changed.json()["policy"]["loan_days"] == 7


def test_no_rule_is_a_refusal_not_a_server_error(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    factories.copies(session, world, "No rule for this", ["B2"])
    session.commit()
    r = client.post(
        "/api/v1/circulation/checkout",
        json={
            "reader_id": world.reader_central.id,
            "barcode": "B2",
            "library_id": world.central.id,
        },
        headers=as_staff("central-lib"),
    )
    assert r.status_code == 409 and r.json()["error"] == "no_circulation_rule"


# --- 2. a device does what its kind needs, nothing else --------------------------------------


def _device(session: Session, w: World, kind: str) -> dict[str, str]:
    _, key = accounts.create_device_key(
        session, None, name=f"A {kind}", kind=kind, org_unit_id=w.central.id, at=NOW
    )
    session.commit()
    return {"X-Device-Key": key}


@pytest.fixture()
def lent_and_held(session: Session, world: World) -> tuple[int, int]:
    """A loan and a hold of the central reader: what a stray device key must not touch."""
    factories.rule(session, world, loan_days=21, renewals=2, max_loans=10, max_holds=5)
    items = factories.copies(session, world, "Held title", ["H1"])
    factories.copies(session, world, "Lent title", ["L1"])
    loan = factories.lend(session, None, world.reader_community, "H1", world.central)
    mine = factories.lend(session, None, world.reader_central, "L1", world.central)
    hold = circulation.holds.place(
        session,
        None,
        reader_id=world.reader_central.id,
        record_id=items[0].record_id,
        pickup_unit_id=world.central.id,
        at=NOW,
    )
    session.commit()
    assert loan.id
    return mine.id, hold.id


@pytest.mark.parametrize("kind", ["sensor", "shelf", "gate", "robot", "screen", "kiosk"])
def test_a_device_key_cannot_manage_readers_holds_and_loans(
    client: TestClient,
    session: Session,
    world: World,
    lent_and_held: tuple[int, int],
    kind: str,
) -> None:
    loan_id, hold_id = lent_and_held
    key = _device(session, world, kind)
    for method, path, body in [
        ("POST", f"/api/v1/circulation/holds/{hold_id}/cancel", None),
        ("POST", f"/api/v1/circulation/holds/{hold_id}/suspend", {"until": None}),
        ("POST", f"/api/v1/circulation/holds/{hold_id}/resume", None),
        (
            "PUT",
            f"/api/v1/circulation/holds/{hold_id}/pickup",
            {"pickup_library_id": world.airport.id},
        ),
        ("POST", f"/api/v1/circulation/loans/{loan_id}/renew", None),
        ("GET", f"/api/v1/circulation/holds?reader_id={world.reader_central.id}", None),
        ("GET", f"/api/v1/circulation/fees?reader_id={world.reader_central.id}", None),
        (
            "POST",
            "/api/v1/circulation/checkout",
            {"reader_id": world.reader_central.id, "barcode": "H1", "library_id": world.central.id},
        ),
    ]:
        r = client.request(method, path, json=body, headers=key)
        assert r.status_code == 403, (kind, method, path, r.text)
    session.expire_all()
    hold = session.get(circulation.Hold, hold_id)
    loan = session.get(circulation.Loan, loan_id)
    assert hold is not None and hold.status == "waiting" and hold.pickup_unit_id == world.central.id
    assert loan is not None and loan.renewals == 0


def test_each_device_kind_posts_only_its_own_messages(
    client: TestClient, session: Session, world: World
) -> None:
    sensor, shelf, gate = (_device(session, world, k) for k in ("sensor", "shelf", "gate"))
    tags = {"seq": 1, "ts": "2026-11-18T06:00:00Z", "type": "snapshot", "antenna": 1, "tags": []}
    reading = {
        "seq": 1,
        "ts": "2026-11-18T06:00:00Z",
        "readings": [{"metric": "humidity", "value": 50}],
    }
    assert client.post("/api/v1/devices/me/tags", json=tags, headers=sensor).status_code == 403
    assert (
        client.post("/api/v1/devices/me/readings", json=reading, headers=shelf).status_code == 403
    )
    assert (
        client.post("/api/v1/gates/check", json={"tags": ["E1"]}, headers=sensor).status_code == 403
    )
    assert (
        client.post("/api/v1/gates/check", json={"tags": ["E1"]}, headers=gate).status_code == 200
    )
    assert client.post("/api/v1/devices/me/tags", json=tags, headers=shelf).status_code != 403
    assert client.post("/api/v1/devices/me/heartbeat", json={}, headers=sensor).status_code != 403
    assert client.get("/api/v1/me", headers=sensor).status_code == 403


# --- 6. a stolen session is not enough to take the account --------------------------------------


def test_a_new_password_needs_the_current_one_and_ends_other_sessions(
    client: TestClient, world: World, as_reader: Headers
) -> None:
    mine, stolen = as_reader("CARD000001"), as_reader("CARD000001")
    page = TestClient(client.app, base_url="http://testserver")
    sign_in(page, "reader", "CARD000001", READER_PW)
    assert page.get("/account", follow_redirects=False).status_code == 200

    for current in (None, "not-my-password"):
        body = {"new_password": "a-new-password-2026", "current_password": current}
        r = client.patch("/api/v1/readers/me", json=body, headers=stolen)
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "current_password"
    for field, value in (("new_pin", "2468"), ("email", "thief@example.org")):
        r = client.patch("/api/v1/readers/me", json={field: value}, headers=stolen)
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "current_password"
    assert client.get("/api/v1/readers/me", headers=mine).json()["email"] == "reader1@example.org"

    body = {"new_password": "a-new-password-2026", "current_password": READER_PW}
    assert client.patch("/api/v1/readers/me", json=body, headers=mine).status_code == 200
    assert client.get("/api/v1/readers/me", headers=mine).status_code == 200
    assert client.get("/api/v1/readers/me", headers=stolen).status_code == 401
    assert page.get("/account", follow_redirects=False).status_code == 303  # to sign in


def test_signing_out_ends_a_copied_session_cookie(
    client: TestClient, world: World, as_reader: Headers
) -> None:
    other_device = as_reader("CARD000001")
    page = TestClient(client.app, base_url="http://testserver")
    sign_in(page, "reader", "CARD000001", READER_PW)
    saved = dict(page.cookies)
    account = page.get("/account")
    assert account.status_code == 200
    out = page.post("/signout", data={"csrf_token": csrf_of(account.text)}, follow_redirects=False)
    assert out.status_code == 303
    thief = TestClient(client.app, base_url="http://testserver", cookies=saved)
    assert thief.get("/account", follow_redirects=False).status_code == 303
    assert thief.get("/account/data.json", follow_redirects=False).status_code == 401
    assert client.get("/api/v1/readers/me", headers=other_device).status_code == 401


def test_a_password_reset_by_a_manager_ends_the_staff_members_tokens(
    client: TestClient, world: World, as_staff: Headers
) -> None:
    desk = as_staff("airport-desk")
    r = client.patch(
        f"/api/v1/staff/{world.airport_desk.id}",
        json={"password": "a-brand-new-password-1"},
        headers=as_staff("airport-lib"),
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/me", headers=desk).status_code == 401


# --- 7. another library's desk serves the reader at the desk, no more ----------------------------


def test_another_librarys_desk_sees_only_what_serving_the_reader_needs(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    factories.rule(session, world, loan_days=21, renewals=2, max_loans=10, max_holds=5)
    a = factories.copies(session, world, "Collect at the airport", ["A1"])
    c = factories.copies(session, world, "Collect at central", ["C1"])
    factories.lend(session, None, world.reader_community, "A1", world.central)
    factories.lend(session, None, world.reader_community, "C1", world.central)
    reader = world.reader_central.id
    at_airport, at_central = (
        circulation.holds.place(
            session, None, reader_id=reader, record_id=i[0].record_id, pickup_unit_id=u.id, at=NOW
        )
        for i, u in ((a, world.airport), (c, world.central))
    )
    circulation.fees.charge_logistics(session, reader, world.central.id, Decimal(5), NOW, note="a")
    circulation.fees.charge_logistics(session, reader, world.airport.id, Decimal(2), NOW, note="b")
    session.commit()
    desk, home = as_staff("airport-desk"), as_staff("central-lib")

    seen = client.get(f"/api/v1/circulation/holds?reader_id={reader}", headers=desk).json()
    assert [h["id"] for h in seen] == [at_airport.id]
    everything = client.get(f"/api/v1/circulation/holds?reader_id={reader}", headers=home).json()
    assert {h["id"] for h in everything} == {at_airport.id, at_central.id}

    owed = client.get(f"/api/v1/circulation/fees?reader_id={reader}", headers=desk).json()
    assert owed["balance"] == "7.00" and [f["library_id"] for f in owed["fees"]] == [
        world.airport.id
    ]
    assert (
        client.get(
            f"/api/v1/circulation/courier-returns?reader_id={reader}", headers=desk
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/readers/{reader}", headers=desk).status_code == 403

    assert (
        client.post(f"/api/v1/circulation/holds/{at_central.id}/cancel", headers=desk).status_code
        == 403
    )
    assert (
        client.post(f"/api/v1/circulation/holds/{at_airport.id}/cancel", headers=desk).status_code
        == 200
    )
    assert (
        client.post(f"/api/v1/circulation/holds/{at_central.id}/cancel", headers=home).status_code
        == 200
    )


# --- 9. throttling per person, forwarded addresses only from configured proxies -------------------


def test_card_number_and_email_share_one_count_of_failures(
    client: TestClient, world: World
) -> None:
    for i in range(5):  # the policy locks an account after 5 failures
        login = "CARD000001" if i % 2 else "reader1@example.org"
        r = client.post(
            "/api/v1/auth/token", json={"kind": "reader", "login": login, "password": "guess"}
        )
        assert r.status_code == 401
    right = {"kind": "reader", "login": "CARD000001", "password": READER_PW}
    assert client.post("/api/v1/auth/token", json=right).status_code == 429


def _failure_keys(session: Session) -> set[str]:
    session.expire_all()
    return set(session.scalars(select(accounts.LoginThrottle.key)))


@pytest.mark.parametrize("trusted", ["", "testclient"])
def test_forwarded_addresses_only_from_configured_proxies(
    session: Session, database_url: str, tmp_path_factory: pytest.TempPathFactory, trusted: str
) -> None:
    app: FastAPI = create_app(
        Settings(
            database_url=database_url,
            data_dir=tmp_path_factory.mktemp("data"),
            secret_key="test-secret-key-not-for-production",
            offline_check_s=0,
            trusted_proxies=trusted,
        )
    )
    app.dependency_overrides[get_now] = lambda: NOW
    with TestClient(app) as c:
        c.post(
            "/api/v1/auth/token",
            json={"kind": "staff", "login": "nobody", "password": "x"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    expected = "addr:203.0.113.9" if trusted else "addr:testclient"
    assert expected in _failure_keys(session)


def test_the_staff_page_session_survives_nothing_it_should_not(
    client: TestClient, world: World
) -> None:
    # a staff member's page session ends when their password is reset
    page = TestClient(client.app, base_url="http://testserver")
    sign_in(page, "staff", "airport-desk", STAFF_PW)
    assert page.get("/staff", follow_redirects=False).status_code == 200
    manager = token_for(client, "staff", "airport-lib", STAFF_PW)
    client.patch(
        f"/api/v1/staff/{world.airport_desk.id}",
        json={"password": "a-brand-new-password-1"},
        headers=manager,
    )
    assert page.get("/staff", follow_redirects=False).status_code == 303
