"""The librarians' live pages: the shelves (a mis-shelved copy flagged with where it
belongs, an inventory started and closed) and the building (a zone out of range, the alarm
acknowledged and resolved from the page)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import accounts, libraries
from biblioverse.building import service as building
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import NOW, STAFF_PW, World
from tests.integration.rfid_support import room

T = NOW - dt.timedelta(minutes=3)


def test_the_shelves_page_flags_a_mis_shelved_copy_and_runs_an_inventory(
    client: TestClient, session: Session, world: World
) -> None:
    r = room(session, world)
    central = world.central.id
    session.rollback()
    client.post(
        "/api/v1/devices/me/tags",
        json={
            "type": "snapshot",
            "seq": 1,
            "ts": T.isoformat(),
            "antenna": 3,
            "tags": [r.tags["B3"], r.tags["B4"]],
        },
        headers={"X-Device-Key": r.key},
    )
    sign_in(client, "staff", "central-lib", STAFF_PW)
    page = client.get(f"/staff/shelves?library={central}")
    assert page.status_code == 200
    assert 'id="misplaced"' in page.text and "<code>B3</code>" in page.text
    live = client.get(f"/staff/shelves/live?library={central}").text
    assert "<strong>I-1</strong></td>" in live  # B3 belongs on I-1
    assert "belongs on I-1" in live  # ... and the newest moves say so too
    csv = client.get(f"/staff/shelves/{central}/misplaced.csv")
    assert csv.status_code == 200 and "B3" in csv.text

    bad = client.post(
        "/staff/inventories",
        data={"csrf_token": csrf_of(page.text), "library": str(central), "scope": "floor"},
    )
    assert bad.status_code == 422 and "The floor to count." in bad.text
    client.get("/lang/zh_Hans")
    bad = client.post(
        "/staff/inventories",
        data={"csrf_token": csrf_of(page.text), "library": str(central), "scope": "floor"},
    )
    assert bad.status_code == 422 and "请填写要盘点的楼层。" in bad.text
    client.get("/lang/en")
    started = client.post(
        "/staff/inventories",
        data={"csrf_token": csrf_of(page.text), "library": str(central), "scope": "library"},
    )
    assert started.status_code == 200 and 'id="inventories"' in started.text
    assert "0.0%" in started.text
    # an airport librarian does not see the central library's shelves
    sign_in(client, "staff", "airport-lib", STAFF_PW)
    assert "<code>B3</code>" not in client.get(f"/staff/shelves?library={central}").text
    # a circulation desk has no shelves page
    sign_in(client, "staff", "airport-desk", STAFF_PW)
    assert client.get("/staff/shelves").status_code == 403


def test_the_building_page_shows_a_zone_out_of_range_and_resolves_its_alarm(
    client: TestClient, session: Session, world: World
) -> None:
    loc = libraries.add_location(
        session,
        None,
        world.central,
        libraries.LocationInput("3F-ANC", 3, "ANC", "Ancient books room", "古籍阅览室"),
        at=NOW,
    )
    sensor, key = accounts.create_device_key(
        session, None, name="Climate", kind="sensor", org_unit_id=world.central.id, at=NOW
    )
    admin = world.actor(session, world.admin)
    building.place_sensor(session, admin, device_id=sensor.id, location_id=loc.id, at=NOW)
    building.set_threshold(
        session, admin, location_id=loc.id, metric="humidity", low=45, high=55, at=NOW
    )
    building.add_rule(
        session,
        admin,
        world.central.id,
        building.RuleInput(name="Tell the desk", actions=[{"type": "notify"}]),
        at=NOW,
    )
    central = world.central.id
    session.commit()
    posted = client.post(
        "/api/v1/devices/me/readings",
        json={
            "seq": 1,
            "ts": T.isoformat(),
            "readings": [
                {"metric": "humidity", "value": 58.2},
                {"metric": "temperature", "value": 19.5},
            ],
        },
        headers={"X-Device-Key": key},
    )
    [alarm_id] = posted.json()["alarms_raised"]
    client.app.state.linkage.wait()  # type: ignore[attr-defined]

    sign_in(client, "staff", "central-lib", STAFF_PW)
    page = client.get(f"/staff/building?library={central}")
    assert page.status_code == 200
    assert "Ancient books room" in page.text and "58.2%" in page.text
    assert "out of range" in page.text and f'id="alarm-{alarm_id}"' in page.text
    badge = client.get("/staff/alarms/badge").text
    assert ">1</a>" in badge

    ack = client.post(
        f"/staff/alarms/{alarm_id}/acknowledge",
        data={"csrf_token": csrf_of(page.text)},
        headers={"HX-Request": "true"},
    )
    assert ack.status_code == 200 and "Acknowledged" in ack.text
    assert client.get("/staff/alarms/badge").text == ""  # seen: no more to acknowledge
    done = client.post(
        f"/staff/alarms/{alarm_id}/resolve",
        data={"csrf_token": csrf_of(page.text), "note": "window closed"},
    )
    assert done.status_code == 200  # redirected back to the page
    assert f'id="alarm-{alarm_id}"' not in done.text

    client.get("/lang/zh_Hans")
    zh = client.get(f"/staff/building?library={central}")
    assert "古籍阅览室" in zh.text


def test_a_gate_alarm_on_the_building_page_names_the_copy(
    client: TestClient, session: Session, world: World
) -> None:
    r = room(session, world)
    gate, _key = accounts.create_device_key(
        session, None, name="Main gate", kind="gate", org_unit_id=world.central.id, at=NOW
    )
    alarm = building.raise_gate_alarm(
        session, device=gate, item_id=r.items["B2"], tag=r.tags["B2"], at=NOW
    )
    assert alarm is not None
    alarm_id, central = alarm.id, world.central.id
    session.commit()
    sign_in(client, "staff", "central-lib", STAFF_PW)
    live = client.get(f"/staff/building/live?library={central}").text
    row = live[live.index(f'id="alarm-{alarm_id}"') :]
    row = row[: row.index("</li>")]
    assert "红楼梦, barcode B2" in row and r.tags["B2"] in row  # the title, the barcode, the tag
    client.get("/lang/zh_Hans")
    live = client.get(f"/staff/building/live?library={central}").text
    assert "红楼梦，条码 B2" in live
