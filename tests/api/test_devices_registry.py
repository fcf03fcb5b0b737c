"""The devices page lists every kind of device with its status, last seen time and errors;
an admin registers one of any kind (its key shown once), gives it a new key (the old one is
refused at once) and retires it after a confirmation (its key refused, its history kept);
only within the admin's libraries, each action audited."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import accounts, audit, devices, sip2
from biblioverse.access import Role
from tests import factories
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import NOW, STAFF_PW, World


def _key_of(html: str) -> str:
    m = re.search(r'<code class="secret">(bvd_[^<]+)</code>', html)
    assert m, "no key shown"
    return m.group(1)


def _me(client: TestClient, key: str) -> int:
    status: int = client.get("/api/v1/devices/me", headers={"X-Device-Key": key}).status_code
    return status


def test_an_admin_registers_a_gate_gives_it_a_new_key_and_retires_it(
    client: TestClient, session: Session, world: World
) -> None:
    central = str(world.central.id)
    session.commit()
    sign_in(client, "staff", "admin", STAFF_PW)
    form = client.get("/staff/devices/keys/new")
    assert (
        form.status_code == 200 and "Security gate" in form.text and "Building sensor" in form.text
    )
    csrf = csrf_of(form.text)

    bad = client.post(
        "/staff/devices/keys/new",
        data={"csrf_token": csrf, "name": " ", "kind": "toaster", "org_unit_id": central},
    )
    assert bad.status_code == 422
    assert "a device name is required" in bad.text and "one of kiosk" in bad.text
    for unit in ("", "abc", "99999999", "1" * 40):
        odd = client.post(
            "/staff/devices/keys/new",
            data={"csrf_token": csrf, "name": "Gate", "kind": "gate", "org_unit_id": unit},
        )
        assert odd.status_code == 422 and "Choose a library." in odd.text
    session.rollback()
    assert session.scalar(select(accounts.DeviceKey)) is None
    session.rollback()  # SQLite: let go before the app writes

    made = client.post(
        "/staff/devices/keys/new",
        data={"csrf_token": csrf, "name": "North gate", "kind": "gate", "org_unit_id": central},
    )
    assert made.status_code == 201 and "shown this once" in made.text
    first = _key_of(made.text)
    assert _me(client, first) == 200
    session.rollback()
    gate = session.scalar(select(accounts.DeviceKey).where(accounts.DeviceKey.name == "North gate"))
    assert gate is not None and gate.kind == "gate"
    gate_id = gate.id
    session.rollback()

    listing = client.get("/staff/devices")
    row = re.search(rf'<tr data-device="{gate_id}">(.*?)</tr>', listing.text, re.S)
    assert row and "North gate" in row.group(1) and "Security gate" in row.group(1)
    assert "online" in row.group(1)  # its key was used just now (the clock is the test's)
    page = client.get(f"/staff/devices/keys/{gate_id}")
    assert first not in page.text  # the key is shown once only
    assert first[:10] in page.text  # its first characters tell it apart

    rotated = client.post(
        f"/staff/devices/keys/{gate_id}/rotate", data={"csrf_token": csrf_of(page.text)}
    )
    assert rotated.status_code == 200 and "the old one is refused" in rotated.text
    second = _key_of(rotated.text)
    assert second != first
    assert _me(client, first) == 401 and _me(client, second) == 200

    # Retiring asks first; a POST without the confirmation only shows the question.
    skipped = client.post(
        f"/staff/devices/keys/{gate_id}/retire",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert skipped.status_code == 303 and skipped.headers["location"].endswith("/retire")
    assert _me(client, second) == 200
    ask = client.get(f"/staff/devices/keys/{gate_id}/retire")
    assert "Retire North gate?" in ask.text and "history" in ask.text
    done = client.post(
        f"/staff/devices/keys/{gate_id}/retire",
        data={"csrf_token": csrf_of(ask.text), "confirm": "retire"},
    )
    assert done.status_code == 200 and "The device is retired" in done.text
    assert "New key" not in done.text
    assert _me(client, second) == 401
    again = client.post(
        f"/staff/devices/keys/{gate_id}/rotate", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert again.status_code == 303 and _me(client, second) == 401
    listing = client.get("/staff/devices")
    row = re.search(rf'<tr data-device="{gate_id}">(.*?)</tr>', listing.text, re.S)
    assert row and "retired" in row.group(1)  # still listed: its history stays

    session.rollback()
    actions = [
        e.action
        for e in session.scalars(
            select(audit.AuditEntry).where(
                audit.AuditEntry.entity == "device", audit.AuditEntry.entity_id == str(gate_id)
            )
        )
    ]
    assert sorted(actions) == ["device.create", "device.retire", "device.rotate"]


def test_every_kind_is_listed_with_its_health_and_sip2_counts(
    client: TestClient, session: Session, world: World
) -> None:
    shelf, _k = accounts.create_device_key(
        session, None, name="Shelf A", kind="shelf", org_unit_id=world.central.id, at=NOW
    )
    sensor, _k = accounts.create_device_key(
        session, None, name="Damp sensor", kind="sensor", org_unit_id=world.central.id, at=NOW
    )
    session.add(
        devices.DeviceHealth(
            device_id=shelf.id,
            last_seq=3,
            last_message_at=NOW - dt.timedelta(hours=2),
            messages=3,
            reads=40,
            errors=2,
            error_counts={"clock_skew": 2},
            last_error="clock_skew: the reader's clock runs ahead",
            last_error_at=NOW - dt.timedelta(hours=2),
        )
    )
    account, _k = sip2.create_sip2_account(
        session,
        None,
        sip2.Sip2AccountInput("Entrance kiosk", "kiosk-1", world.central.id, "a-long-password"),
        at=NOW,
    )
    sip2.record_traffic(
        session,
        {account.id: sip2.Traffic(messages=5, errors=1, last_error="bad checksum", last_seen=NOW)},
    )
    ids = (shelf.id, sensor.id, account.device_id)
    session.commit()
    sign_in(client, "staff", "admin", STAFF_PW)
    text = client.get("/staff/devices").text
    rows = {i: re.search(rf'<tr data-device="{i}">(.*?)</tr>', text, re.S) for i in ids}
    assert all(rows.values())
    shelf_row, sensor_row, kiosk_row = (rows[i].group(1) for i in ids)  # type: ignore[union-attr]
    assert "Smart shelf reader" in shelf_row and "silent" in shelf_row and "clock_skew" in shelf_row
    assert "2" in shelf_row and "12:00" in shelf_row  # two hours ago, in Beijing time
    assert "Building sensor" in sensor_row and "never seen" in sensor_row
    assert "Self-service kiosk" in kiosk_row and "online" in kiosk_row
    assert "bad checksum" in kiosk_row and "kiosk-1" in kiosk_row
    assert f'href="/staff/devices/{account.id}"' in kiosk_row
    page = client.get(f"/staff/devices/keys/{shelf.id}")
    assert "clock_skew: 2" in page.text


def test_an_admin_of_one_library_sees_and_changes_only_its_devices(
    client: TestClient, session: Session, world: World
) -> None:
    factories.staff(session, "airport-admin", Role.ADMIN, world.airport)
    central, _k = accounts.create_device_key(
        session, None, name="Central gate", kind="gate", org_unit_id=world.central.id, at=NOW
    )
    airport, _k = accounts.create_device_key(
        session, None, name="Airport gate", kind="gate", org_unit_id=world.airport.id, at=NOW
    )
    central_id, airport_id, central_unit = central.id, airport.id, str(world.central.id)
    session.commit()
    sign_in(client, "staff", "airport-admin", STAFF_PW)
    text = client.get("/staff/devices").text
    assert "Airport gate" in text and "Central gate" not in text
    assert client.get(f"/staff/devices/keys/{central_id}").status_code == 404
    csrf = csrf_of(client.get(f"/staff/devices/keys/{airport_id}").text)
    for step in ("rotate", "retire"):
        r = client.post(
            f"/staff/devices/keys/{central_id}/{step}",
            data={"csrf_token": csrf, "confirm": "retire"},
        )
        assert r.status_code == 404
    form = client.get("/staff/devices/keys/new").text
    assert "Airport Library" in form and "Central Library" not in form
    refused = client.post(
        "/staff/devices/keys/new",
        data={"csrf_token": csrf, "name": "Sneaky", "kind": "gate", "org_unit_id": central_unit},
    )
    assert refused.status_code == 403 and "devices of this library" in refused.text
    session.rollback()
    row = session.get(accounts.DeviceKey, central_id)
    assert row is not None and row.revoked_at is None
    assert (
        session.scalar(select(accounts.DeviceKey).where(accounts.DeviceKey.name == "Sneaky"))
        is None
    )
    session.rollback()
    sign_in(client, "staff", "central-lib", STAFF_PW)  # a librarian: no device role
    assert client.get("/staff/devices/keys/new").status_code == 403


def test_the_api_rotates_and_retires_a_key(
    client: TestClient, session: Session, world: World
) -> None:
    from tests.api.conftest import token_for

    row, key = accounts.create_device_key(
        session, None, name="Screen", kind="screen", org_unit_id=world.central.id, at=NOW
    )
    device_id = row.id
    session.commit()
    admin = token_for(client, "staff", "admin", STAFF_PW)
    r = client.post(f"/api/v1/devices/{device_id}/key", headers=admin)
    assert r.status_code == 200 and r.json()["key"] != key
    new = r.json()["key"]
    assert _me(client, key) == 401 and _me(client, new) == 200
    r = client.post(f"/api/v1/devices/{device_id}/retire", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert _me(client, new) == 401
    r = client.post(f"/api/v1/devices/{device_id}/retire", headers=admin)
    assert r.status_code == 409 and r.json()["error"] == "device_retired"
    assert client.post("/api/v1/devices/999999/key", headers=admin).status_code == 404
