"""The smart-shelf API: a reader posting over HTTP, a gate, where a book is, tag
programming, and the collection checks, with who may see what."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog
from biblioverse.devices.models import DeviceHealth
from biblioverse.shelves.models import GateEvent
from tests.factories import NOW, World, lend, rule
from tests.integration.rfid_support import room

Headers = Callable[[str], dict[str, str]]
T = NOW - dt.timedelta(hours=1)


def snapshot(seq: int, antenna: int, tags: list[str], at: dt.datetime = T) -> dict[str, object]:
    return {"type": "snapshot", "seq": seq, "ts": at.isoformat(), "antenna": antenna, "tags": tags}


def test_a_shelf_reader_posts_reads_and_staff_see_what_is_wrong(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    r = room(session, world)
    central = world.central.id
    key = {"X-Device-Key": r.key}
    # B3 (I247.5) belongs on I-1 but stands on I-2; B4 (I313) belongs on I-2 and is there
    body = {
        "reports": [
            snapshot(1, 1, [r.tags["B1"], r.tags["B2"]]),
            snapshot(2, 3, [r.tags["B3"], r.tags["B4"], "E2000000FEEDF00D"]),
        ]
    }
    session.rollback()
    posted = client.post("/api/v1/devices/me/tags", json=body, headers=key)
    assert posted.status_code == 200, posted.text
    assert posted.json() == {
        "accepted": 2,
        "reads": 5,
        "moved": 4,
        "unknown_tags": 1,
        "rejected": [],
    }

    bad = client.post(
        "/api/v1/devices/me/tags",
        json={"type": "snapshot", "seq": 3, "ts": "soon", "antenna": 1},
        headers=key,
    )
    assert bad.status_code == 422
    assert bad.json()["rejected"] == [
        {"index": 0, "field": "ts", "message": "an ISO 8601 time such as 2026-11-21T09:30:00Z"}
    ]
    # a device speaks only for itself
    other = client.post(
        "/api/v1/devices/me/tags",
        json={**snapshot(4, 1, []), "device": r.device_id + 1},
        headers=key,
    )
    assert other.status_code == 422 and other.json()["rejected"][0]["field"] == "device"
    session.rollback()
    h = session.get(DeviceHealth, r.device_id)
    assert h is not None and h.error_counts == {"malformed": 1, "wrong_device": 1}
    session.rollback()

    librarian = as_staff("central-lib")
    misplaced = client.get(
        f"/api/v1/libraries/{central}/shelf-reports/misplaced", headers=librarian
    )
    assert misplaced.status_code == 200
    assert [(m["barcode"], m["shelf"], m["belongs"]) for m in misplaced.json()] == [
        ("B3", "I-2", "I-1")
    ]
    unknown = client.get(
        f"/api/v1/libraries/{central}/shelf-reports/unknown-tags", headers=librarian
    ).json()
    assert [(u["tag"], u["shelf"]) for u in unknown] == [("E2000000FEEDF00D", "I-2")]

    as_csv = client.get(
        f"/api/v1/libraries/{central}/shelf-reports/misplaced?format=csv",
        headers=librarian,
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text.lstrip("\ufeff"))))
    assert rows[0]["barcode"] == "B3" and rows[0]["title"] == "红楼梦"

    counts = client.get(f"/api/v1/libraries/{central}/reconciliation", headers=librarian).json()
    assert counts == {
        "expected": 4,
        "found": 4,
        "correct": 3,
        "misplaced": 1,
        "missing": 0,
        "unexpected": 0,
    }

    # another branch's librarian, a reader and no one at all may not look
    airport = as_staff("airport-lib")
    url = f"/api/v1/libraries/{central}/shelf-reports/misplaced"
    assert client.get(url, headers=airport).status_code == 403
    assert client.get(url).status_code == 401


def test_where_is_a_book_from_rfid_first_then_its_call_number(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    r = room(session, world)
    central = world.central.id
    session.rollback()
    # B4 was last read three days ago, B1 just now; B2 and B3 never
    for report in (
        snapshot(1, 3, [r.tags["B4"]], NOW - dt.timedelta(days=3)),
        snapshot(2, 2, [r.tags["B1"]]),
    ):
        posted = client.post(
            "/api/v1/devices/me/tags", json=report, headers={"X-Device-Key": r.key}
        )
        assert posted.status_code == 200, posted.text
    seen = client.get("/api/v1/items/B1/where").json()
    assert seen["source"] == "rfid" and seen["shelf"] == "I-1" and seen["level"] == 2
    assert seen["location"] == "2F-LIT" and seen["floor"] == 2 and seen["on_shelf"]
    guessed = client.get("/api/v1/items/B3/where").json()
    assert guessed["source"] == "call_number" and guessed["shelf"] == "I-1"
    assert guessed["level"] is None
    assert client.get("/api/v1/items/NOPE/where").status_code == 404
    missing = client.get(
        f"/api/v1/libraries/{central}/shelf-reports/missing", headers=as_staff("central-lib")
    ).json()
    assert [(m["barcode"], m["belongs"], m["level"]) for m in missing] == [
        ("B2", "I-1", None),
        ("B3", "I-1", None),
        ("B4", "I-2", 1),
    ]


def test_a_gate_lets_lent_copies_out_and_alarms_for_the_others(
    client: TestClient, session: Session, world: World
) -> None:
    r = room(session, world)
    gate, gate_key = accounts.create_device_key(
        session, None, name="Main gate", kind="gate", org_unit_id=world.central.id, at=NOW
    )
    rule(session, world)
    lend(session, None, world.reader_central, "B1", world.central)
    session.commit()
    gate_id = gate.id
    session.rollback()
    answer = client.post(
        "/api/v1/gates/check",
        json={"tags": [r.tags["B1"], r.tags["B2"], "E2000000ABCD0001"]},
        headers={"X-Device-Key": gate_key},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["alarm"] is True
    assert [(t["barcode"], t["allowed"], t["reason"]) for t in body["tags"]] == [
        ("B1", True, "on_loan"),
        ("B2", False, "not_checked_out"),
        (None, True, "not_ours"),
    ]
    assert body["tags"][1]["title"] == "红楼梦"
    session.rollback()
    alarms = [(e.device_id, e.item_id) for e in session.scalars(select(GateEvent))]
    assert alarms == [(gate_id, r.items["B2"])]
    session.rollback()
    # a shelf reader is no gate
    refused = client.post(
        "/api/v1/gates/check", json={"tags": [r.tags["B2"]]}, headers={"X-Device-Key": r.key}
    )
    assert refused.status_code == 403


def test_a_programming_station_encodes_and_binds_a_new_tag(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    room(session, world)
    card = world.reader_central.card_number
    session.rollback()
    cataloguer = as_staff("cataloguer")
    made = client.post("/api/v1/rfid/encode", json={"barcode": "B1"}, headers=cataloguer)
    assert made.status_code == 200, made.text
    block = made.json()
    assert block["owner_isil"] == "CN-T0001" and len(block["data"]) == 64
    read = client.post("/api/v1/rfid/decode", json={"data": block["data"]}, headers=cataloguer)
    assert read.json()["barcode"] == "B1" and read.json()["owner_isil"] == "CN-T0001"
    broken = block["data"][:10] + ("0" if block["data"][10] != "0" else "1") + block["data"][11:]
    bad = client.post("/api/v1/rfid/decode", json={"data": broken}, headers=cataloguer)
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "crc"
    uhf = client.post(
        "/api/v1/rfid/encode",
        json={"barcode": "B1", "format": "giai-96", "company_prefix": "6901234"},
        headers=cataloguer,
    )
    assert uhf.status_code == 422 and uhf.json()["details"][0]["field"] == "barcode"

    bound = client.post(
        "/api/v1/rfid/bind", json={"barcode": "B1", "tag": "e004015000000001"}, headers=cataloguer
    )
    assert bound.status_code == 200
    session.rollback()
    item = session.scalar(select(catalog.Item).where(catalog.Item.barcode == "B1"))
    assert item is not None and item.rfid_tag == "E004015000000001"
    session.rollback()
    reader = as_reader(card)
    assert (
        client.post("/api/v1/rfid/encode", json={"barcode": "B1"}, headers=reader).status_code
        == 403
    )


def test_numbers_and_times_beyond_the_columns_are_named_not_500(
    client: TestClient, session: Session, world: World
) -> None:
    r = room(session, world)
    key = {"X-Device-Key": r.key}
    session.rollback()
    huge = 10**30  # beyond 64 bits: orjson could not write it back out
    cases = [
        ({**snapshot(huge, 1, []), "device": r.device_id}, "/tags", "seq"),
        ({**snapshot(1, 1, []), "ts": huge}, "/tags", "ts"),
        ({**snapshot(1, 1, []), "ts": "0001-01-01T00:00:00+14:00"}, "/tags", "ts"),
        ({**snapshot(1, 1, []), "ts": "0001-01-02T00:00:00Z"}, "/tags", "ts"),
        (snapshot(1, 2**31, []), "/tags", "antenna"),
        ({"seq": huge, "ts": T.isoformat()}, "/heartbeat", "seq"),
    ]
    for body, path, field in cases:
        posted = client.post(f"/api/v1/devices/me{path}", json=body, headers=key)
        assert posted.status_code == 422, (body, posted.text)
        assert posted.json()["rejected"][-1]["field"] == field, posted.json()
    # a batch: the good report goes in, the huge one is named by its index
    mixed = {"reports": [{**snapshot(1, 1, []), "note": [huge]}, snapshot(huge, 1, [])]}
    posted = client.post("/api/v1/devices/me/tags", json=mixed, headers=key)
    assert posted.status_code == 200, posted.text
    assert posted.json()["rejected"] == [
        {"index": 1, "field": "seq", "message": "a whole number, 0 or more"}
    ]


def test_a_body_that_is_not_json_is_named_not_500(
    client: TestClient, session: Session, world: World
) -> None:
    key = {"X-Device-Key": room(session, world).key, "Content-Type": "text/plain"}
    session.rollback()
    for path in ("/tags", "/heartbeat"):
        posted = client.post(f"/api/v1/devices/me{path}", content=b"null", headers=key)
        assert posted.status_code == 422, (path, posted.text)
        assert posted.json()["details"][0]["field"] == "body"


def test_ids_beyond_their_columns_are_named_not_500(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    r = room(session, world)
    central = world.central.id
    session.rollback()
    admin, huge = as_staff("admin"), 10**30
    cases = [
        (
            f"/api/v1/libraries/{central}/shelves",
            {"location_id": huge, "code": "X", "first_call": "A", "last_call": "B"},
            "body.location_id",
        ),
        (
            f"/api/v1/devices/{r.device_id}/antennas",
            {"antenna": 9, "shelf_id": huge, "level": 1},
            "body.shelf_id",
        ),
        (
            f"/api/v1/libraries/{central}/inventories",
            {"scope": "zone", "location_id": huge},
            "body.location_id",
        ),
    ]
    for path, body, field in cases:
        posted = client.post(path, json=body, headers=admin)
        assert posted.status_code == 422, (path, posted.text)
        assert posted.json()["details"][0]["field"] == field, posted.json()
