"""Building sensors over HTTP: a sensor posts readings, a zone's range raises an alarm that
staff see, acknowledge and resolve; linkage rules call a real webhook; who may see what."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import accounts, libraries
from biblioverse.building.linkage import sign
from tests.factories import NOW, World

Headers = Callable[[str], dict[str, str]]
T = NOW - dt.timedelta(minutes=5)


def reading(
    seq: int, metric: str, value: object, at: dt.datetime = T, **more: object
) -> dict[str, object]:
    return {
        "seq": seq,
        "ts": at.isoformat(),
        "readings": [{"metric": metric, "value": value, **more}],
    }


def ancient_room(session: Session, w: World) -> tuple[int, int, dict[str, str]]:
    """The ancient books room of the central library, a sensor in it; (location, device,
    the sensor's key header)."""
    loc = libraries.add_location(
        session,
        None,
        w.central,
        libraries.LocationInput("3F-ANC", 3, "ANC", "Ancient books room", "古籍阅览室"),
        at=NOW,
    )
    device, key = accounts.create_device_key(
        session, None, name="Climate ANC-1", kind="sensor", org_unit_id=w.central.id, at=NOW
    )
    session.commit()
    return loc.id, device.id, {"X-Device-Key": key}


def test_a_humidity_alarm_is_raised_acknowledged_and_resolved(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    loc, device, key = ancient_room(session, world)
    central = world.central.id
    session.rollback()
    admin, librarian = as_staff("admin"), as_staff("central-lib")

    # a sensor standing in no zone is told so
    unplaced = client.post(
        "/api/v1/devices/me/readings", json=reading(1, "humidity", 50), headers=key
    )
    assert unplaced.status_code == 422
    assert unplaced.json()["rejected"][0]["field"] == "device"

    placed = client.put(f"/api/v1/devices/{device}/zone", json={"location_id": loc}, headers=admin)
    assert placed.status_code == 200, placed.text
    rng = client.put(
        f"/api/v1/locations/{loc}/thresholds/humidity",
        json={"low": 45, "high": 55},
        headers=librarian,
    )
    assert rng.status_code == 200, rng.text

    ok = client.post("/api/v1/devices/me/readings", json=reading(2, "humidity", 52.0), headers=key)
    assert ok.status_code == 200 and ok.json()["alarms_raised"] == []
    high = client.post(
        "/api/v1/devices/me/readings",
        json=reading(3, "humidity", 58.5, T + dt.timedelta(minutes=1)),
        headers=key,
    )
    assert high.status_code == 200
    [alarm_id] = high.json()["alarms_raised"]

    listed = client.get(f"/api/v1/libraries/{central}/alarms", headers=librarian).json()
    assert [(a["id"], a["kind"], a["metric"], a["value"], a["state"]) for a in listed] == [
        (alarm_id, "threshold", "humidity", 58.5, "raised")
    ]
    assert (listed[0]["low"], listed[0]["high"], listed[0]["location_id"]) == (45, 55, loc)

    # worse, then a little better but not back by the dead band (1 %): one alarm, still open
    for seq, value in ((4, 61.0), (5, 54.5)):
        r = client.post(
            "/api/v1/devices/me/readings",
            json=reading(seq, "humidity", value, T + dt.timedelta(minutes=seq)),
            headers=key,
        )
        assert r.json()["alarms_raised"] == [] and r.json()["alarms_resolved"] == []
    zone = next(
        z
        for z in client.get(f"/api/v1/libraries/{central}/zones", headers=librarian).json()
        if z["location_id"] == loc
    )
    humidity = next(m for m in zone["metrics"] if m["metric"] == "humidity")
    assert (humidity["value"], humidity["low"], humidity["high"]) == (54.5, 45, 55)
    assert [a["id"] for a in zone["alarms"]] == [alarm_id]

    # another branch's librarian does not see it; nobody unsigned does
    assert (
        client.get(f"/api/v1/alarms/{alarm_id}", headers=as_staff("airport-lib")).status_code == 404
    )
    assert (
        client.get(
            f"/api/v1/libraries/{central}/alarms", headers=as_staff("airport-lib")
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/alarms/{alarm_id}").status_code == 401

    ack = client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", headers=librarian)
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert ack.json()["worst_value"] == 61.0

    back = client.post(
        "/api/v1/devices/me/readings",
        json=reading(6, "humidity", 53.5, T + dt.timedelta(minutes=6)),
        headers=key,
    )
    assert back.json()["alarms_resolved"] == [alarm_id]
    done = client.get(f"/api/v1/alarms/{alarm_id}", headers=librarian).json()
    assert (done["state"], done["note"], done["last_value"]) == ("resolved", "back in range", 53.5)
    assert client.get(f"/api/v1/libraries/{central}/alarms", headers=librarian).json() == []

    # out again: a new alarm, which a librarian closes by hand with a note
    again = client.post(
        "/api/v1/devices/me/readings",
        json=reading(7, "humidity", 40.0, T + dt.timedelta(minutes=7)),
        headers=key,
    )
    [second] = again.json()["alarms_raised"]
    assert second != alarm_id
    closed = client.post(
        f"/api/v1/alarms/{second}/resolve",
        json={"note": "dehumidifier switched off"},
        headers=librarian,
    )
    assert closed.status_code == 200
    assert (closed.json()["state"], closed.json()["note"]) == (
        "resolved",
        "dehumidifier switched off",
    )
    everything = client.get(
        f"/api/v1/libraries/{central}/alarms?state=all", headers=librarian
    ).json()
    assert [a["id"] for a in everything] == [second, alarm_id]


def test_a_late_reading_changes_nothing_and_a_new_range_judges_at_once(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    loc, device, key = ancient_room(session, world)
    session.rollback()
    admin, librarian = as_staff("admin"), as_staff("central-lib")
    client.put(f"/api/v1/devices/{device}/zone", json={"location_id": loc}, headers=admin)
    later = reading(5, "temperature", 21.0, T)
    earlier = reading(4, "temperature", 30.0, T - dt.timedelta(minutes=1))
    assert (
        client.post("/api/v1/devices/me/readings", json=later, headers=key).json()["readings"] == 1
    )
    assert (
        client.post("/api/v1/devices/me/readings", json=earlier, headers=key).json()["readings"]
        == 0
    )
    # the range comes after the reading: 21.0 is judged now, against 18-20
    rng = client.put(
        f"/api/v1/locations/{loc}/thresholds/temperature",
        json={"low": 18, "high": 20},
        headers=librarian,
    )
    assert rng.status_code == 200
    alarms = client.get(f"/api/v1/libraries/{world.central.id}/alarms", headers=librarian).json()
    assert [(a["metric"], a["value"]) for a in alarms] == [("temperature", 21.0)]
    # widening the range resolves it
    client.put(
        f"/api/v1/locations/{loc}/thresholds/temperature",
        json={"low": 18, "high": 22},
        headers=librarian,
    )
    assert (
        client.get(f"/api/v1/libraries/{world.central.id}/alarms", headers=librarian).json() == []
    )


def test_bad_readings_and_ranges_are_named(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    loc, device, key = ancient_room(session, world)
    session.rollback()
    client.put(
        f"/api/v1/devices/{device}/zone", json={"location_id": loc}, headers=as_staff("admin")
    )
    cases = [
        (reading(1, "smell", 3), "readings[0].metric"),
        (reading(1, "humidity", "damp"), "readings[0].value"),
        (reading(1, "humidity", 140), "readings[0].value"),
        (reading(1, "seat", 1), "readings[0].channel"),
        ({"seq": 1, "ts": T.isoformat(), "readings": []}, "readings"),
        ({"seq": -1, "ts": T.isoformat(), "readings": [{"metric": "co2", "value": 400}]}, "seq"),
        # beyond 64 bits, or before the calendar starts: named, not a server error
        (reading(10**30, "co2", 400), "seq"),
        (reading(1, "co2", 10**30), "readings[0].value"),
        ({**reading(1, "co2", 400), "ts": 10**30}, "ts"),
        ({**reading(1, "co2", 400), "ts": "0001-01-01T00:00:00+14:00"}, "ts"),
        ({"reports": [reading(10**30, "co2", 400)]}, "seq"),
    ]
    for body, field in cases:
        r = client.post("/api/v1/devices/me/readings", json=body, headers=key)
        assert r.status_code == 422, body
        assert r.json()["rejected"][0]["field"] == field, r.json()
    # the good ones of a batch go in, the bad one is named by its index
    mixed = client.post(
        "/api/v1/devices/me/readings",
        json={"reports": [reading(2, "co2", 650), reading(3, "noise", "loud")]},
        headers=key,
    )
    assert mixed.status_code == 200
    assert mixed.json()["readings"] == 1
    assert mixed.json()["rejected"] == [
        {"index": 1, "field": "readings[0].value", "message": "a number"}
    ]

    librarian = as_staff("central-lib")
    upside_down = client.put(
        f"/api/v1/locations/{loc}/thresholds/humidity",
        json={"low": 60, "high": 40},
        headers=librarian,
    )
    assert upside_down.status_code == 422
    assert upside_down.json()["details"][0]["field"] == "high"
    unknown = client.put(
        f"/api/v1/locations/{loc}/thresholds/smell", json={"high": 1}, headers=librarian
    )
    assert unknown.status_code == 422
    # the range of another library's room is not an airport librarian's to set
    other = client.put(
        f"/api/v1/locations/{loc}/thresholds/humidity",
        json={"low": 40, "high": 60},
        headers=as_staff("airport-lib"),
    )
    assert other.status_code == 403


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    answer: ClassVar[int] = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def webhook(answer: int = 204) -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    class Hook(_Hook):  # a list of its own for each webhook
        received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    Hook.answer = answer
    handler = Hook
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alarms", handler.received
    finally:
        server.shutdown()
        server.server_close()


def test_linkage_rules_notify_and_call_a_webhook_once(
    app: FastAPI, client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    loc, device, key = ancient_room(session, world)
    central = world.central.id
    session.rollback()
    admin = as_staff("admin")
    client.put(f"/api/v1/devices/{device}/zone", json={"location_id": loc}, headers=admin)
    client.put(
        f"/api/v1/locations/{loc}/thresholds/humidity", json={"low": 45, "high": 55}, headers=admin
    )
    bad = client.post(
        f"/api/v1/libraries/{central}/linkage-rules",
        json={"name": "x", "actions": [{"type": "webhook", "url": "ftp://x"}, {"type": "beep"}]},
        headers=admin,
    )
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json()["details"]] == [
        "actions[0].url",
        "actions[1].type",
    ]
    # a librarian may watch alarms but not wire the building
    assert (
        client.post(
            f"/api/v1/libraries/{central}/linkage-rules",
            json={"name": "x", "actions": [{"type": "notify"}]},
            headers=as_staff("central-lib"),
        ).status_code
        == 403
    )
    with webhook() as (url, received), webhook(answer=500) as (broken, _):
        rule = client.post(
            f"/api/v1/libraries/{central}/linkage-rules",
            json={
                "name": "Damp ancient books",
                "kind": "threshold",
                "metric": "humidity",
                "actions": [
                    {"type": "notify"},
                    {"type": "webhook", "url": url, "secret": "s3cret"},
                    {"type": "webhook", "url": broken},
                ],
            },
            headers=admin,
        )
        assert rule.status_code == 201, rule.text
        assert rule.json()["actions"][1]["secret"] == "***"
        # a rule for temperature does not fire on humidity
        client.post(
            f"/api/v1/libraries/{central}/linkage-rules",
            json={
                "name": "Hot",
                "metric": "temperature",
                "actions": [{"type": "webhook", "url": url}],
            },
            headers=admin,
        )
        raised = client.post(
            "/api/v1/devices/me/readings", json=reading(1, "humidity", 58.0), headers=key
        )
        [alarm_id] = raised.json()["alarms_raised"]
        app.state.linkage.wait()
        assert len(received) == 1
        headers, body = received[0]
        payload = json.loads(body)
        assert (payload["event"], payload["id"], payload["zone"], payload["value"]) == (
            "alarm.raised",
            alarm_id,
            "3F-ANC",
            58.0,
        )
        assert headers["X-Biblioverse-Signature"] == sign("s3cret", body)
        # the same event delivered again acts on nothing twice
        app.state.linkage.run(alarm_id, "raised")
        assert len(received) == 1
    seen = client.get(f"/api/v1/alarms/{alarm_id}", headers=admin).json()
    assert [(a["type"], a["status"], a["detail"]) for a in seen["actions"]] == [
        ("notify", "done", "shown on the staff console"),
        ("webhook", "done", "HTTP 204"),
        ("webhook", "failed", "HTTP 500"),
    ]


def test_a_gate_alarm_is_an_alarm_the_desk_sees(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    from tests.integration.rfid_support import room

    r = room(session, world)
    gate, gate_key = accounts.create_device_key(
        session, None, name="Gate", kind="gate", org_unit_id=world.central.id, at=NOW
    )
    gate_id = gate.id
    session.commit()
    central = world.central.id
    session.rollback()
    out = client.post(
        "/api/v1/gates/check", json={"tags": [r.tags["B1"]]}, headers={"X-Device-Key": gate_key}
    )
    assert out.json()["alarm"] is True
    alarms = client.get(
        f"/api/v1/libraries/{central}/alarms", headers=as_staff("central-lib")
    ).json()
    assert [(a["kind"], a["item_id"], a["device_id"]) for a in alarms] == [
        ("gate", r.items["B1"], gate_id)
    ]


def test_ids_and_numbers_beyond_their_columns_are_named_not_500(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    _, device, _ = ancient_room(session, world)
    central = world.central.id
    session.rollback()
    admin = as_staff("admin")
    huge = 10**30
    zone = client.put(f"/api/v1/devices/{device}/zone", json={"location_id": huge}, headers=admin)
    assert zone.status_code == 422 and zone.json()["details"][0]["field"] == "body.location_id"
    cases: list[tuple[dict[str, object], str]] = [
        ({"location_id": huge, "actions": [{"type": "notify"}]}, "body.location_id"),
        (
            {"actions": [{"type": "mqtt", "device_id": huge, "command": "on"}]},
            "actions[0].device_id",
        ),
        (
            {"actions": [{"type": "mqtt", "device_id": 2**31, "command": "on"}]},
            "actions[0].device_id",
        ),
        (
            {
                "actions": [
                    {"type": "mqtt", "device_id": device, "command": "on", "args": {"a": huge}}
                ]
            },
            "actions[0].args",
        ),
        ({"name": "dry\x00", "actions": [{"type": "notify"}]}, "body.name"),
    ]
    for body, field in cases:
        r = client.post(
            f"/api/v1/libraries/{central}/linkage-rules", json={"name": "x", **body}, headers=admin
        )
        assert r.status_code == 422, (body, r.text)
        assert r.json()["details"][0]["field"] == field, r.json()


def test_readings_that_are_not_json_are_named_not_500(
    client: TestClient, session: Session, world: World
) -> None:
    _, _, key = ancient_room(session, world)
    session.rollback()
    posted = client.post(
        "/api/v1/devices/me/readings",
        content=b"null",
        headers={**key, "Content-Type": "text/plain"},
    )
    assert posted.status_code == 422, posted.text
    assert posted.json()["details"][0]["field"] == "body"
