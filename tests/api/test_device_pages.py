"""Device accounts in the staff console: create one (errors named field by field), change
it, see its counts and live log; only staff whose role includes devices, and only their
libraries."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import security, sip2
from biblioverse.sip2.service import Traffic
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import NOW, STAFF_PW, World


def _form(page: str, **values: str) -> dict[str, str]:
    return {
        "csrf_token": csrf_of(page),
        "name": "Entrance kiosk",
        "kind": "kiosk",
        "login": "kiosk-1",
        "password": "a-long-password",
        "location": "Ground floor",
        "charset": "utf-8",
        "locale": "zh_Hans",
        "enabled": "on",
        **values,
    }


def test_an_admin_registers_a_kiosk_and_watches_its_log(
    client: TestClient, session: Session, world: World
) -> None:
    central = str(world.central.id)
    session.commit()
    sign_in(client, "staff", "admin", STAFF_PW)
    page = client.get("/staff/devices/new")
    assert page.status_code == 200 and "New SIP2 device" in page.text

    bad = client.post(
        "/staff/devices/new",
        data=_form(page.text, org_unit_id=central, login="has space", password="short", name=""),
    )
    assert bad.status_code == 422
    assert "1 to 60 letters, digits" in bad.text and "At least 8 characters." in bad.text
    assert "A name for the device." in bad.text
    assert 'value="short"' not in bad.text  # a password is never sent back
    assert session.scalar(select(sip2.Sip2Account)) is None
    session.rollback()  # SQLite: let go before the app writes

    made = client.post("/staff/devices/new", data=_form(page.text, org_unit_id=central))
    assert made.status_code == 201 and "shown this once" in made.text and "bvd_" in made.text
    session.rollback()
    account = session.scalar(select(sip2.Sip2Account))
    assert account is not None and account.locale == "zh_Hans" and not account.error_detection
    assert security.verify_secret(account.password_hash, "a-long-password")
    account_id = account.id
    session.rollback()
    taken = client.post("/staff/devices/new", data=_form(page.text, org_unit_id=central))
    assert taken.status_code == 422 and "Another device has this login." in taken.text

    # The server reports what the kiosk did; the page shows it.
    sip2.record_traffic(
        session,
        {
            account_id: Traffic(
                messages=2,
                errors=1,
                last_error="bad checksum",
                last_seen=NOW,
                address="10.0.0.7:51000",
                lines=[
                    (NOW, "in", "9900302.00"),
                    (NOW + dt.timedelta(seconds=1), "out", "98YYYYYN"),
                ],
            )
        },
    )
    session.commit()
    listing = client.get("/staff/devices")
    assert "Entrance kiosk" in listing.text and "bad checksum" in listing.text
    log = client.get(f"/staff/devices/{account_id}/log")
    assert log.status_code == 200
    assert log.text.index("98YYYYYN") < log.text.index("9900302.00")  # newest first
    assert "10.0.0.7:51000" in log.text

    edit = client.get(f"/staff/devices/{account_id}")
    changed = client.post(
        f"/staff/devices/{account_id}",
        data=_form(edit.text, org_unit_id=central, password="", error_detection="on"),
    )
    assert changed.status_code == 200 and "The device is saved." in changed.text
    session.rollback()
    account = session.get(sip2.Sip2Account, account_id)
    assert account is not None and account.error_detection
    assert security.verify_secret(account.password_hash, "a-long-password")  # kept
    session.rollback()


def test_devices_stay_within_the_role_and_the_library(
    client: TestClient, session: Session, world: World
) -> None:
    account, _key = sip2.create_sip2_account(
        session,
        None,
        sip2.Sip2AccountInput(
            name="Airport kiosk",
            login="kiosk-air",
            password="a-long-password",
            org_unit_id=world.airport.id,
        ),
        at=NOW,
    )
    account_id = account.id
    session.commit()
    sign_in(client, "staff", "central-lib", STAFF_PW)  # a librarian: no device role
    assert client.get("/staff/devices").status_code == 403
    assert client.get(f"/staff/devices/{account_id}/log").status_code == 403
    sign_in(client, "staff", "admin", STAFF_PW)
    assert "Airport kiosk" in client.get("/staff/devices").text
    assert client.get("/staff/devices/999999").status_code == 404
