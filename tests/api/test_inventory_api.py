"""Inventory over the API: start one for a run of shelves, the shelves and a handheld
reader report, the progress is counted live, the close marks what is missing; the report
as CSV; who may take stock of what."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import catalog
from tests.factories import NOW, World
from tests.integration.rfid_support import room

Headers = Callable[[str], dict[str, str]]
T = NOW - dt.timedelta(minutes=10)


def snapshot(seq: int, antenna: int, tags: list[str]) -> dict[str, object]:
    return {"type": "snapshot", "seq": seq, "ts": T.isoformat(), "antenna": antenna, "tags": tags}


def test_an_inventory_of_two_shelves_from_start_to_close(
    client: TestClient, session: Session, world: World, as_staff: Headers
) -> None:
    r = room(session, world)
    central = world.central.id
    session.rollback()
    librarian = as_staff("central-lib")
    base = f"/api/v1/libraries/{central}/inventories"

    # a shelf code that is not there, a floor scope without its floor: named
    bad = client.post(
        base,
        json={"scope": "shelves", "first_shelf": "I-1", "last_shelf": "Z-9"},
        headers=librarian,
    )
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "last_shelf"
    assert (
        client.post(base, json={"scope": "floor"}, headers=librarian).json()["details"][0]["field"]
        == "floor"
    )
    assert (
        client.post(base, json={"scope": "library"}, headers=as_staff("airport-lib")).status_code
        == 403
    )

    started = client.post(
        base,
        json={"scope": "shelves", "first_shelf": "I-1", "last_shelf": "I-2"},
        headers=librarian,
    )
    assert started.status_code == 201, started.text
    inv = started.json()
    assert (inv["state"], inv["expected"], inv["found"], inv["percent"]) == ("open", 4, 0, 0.0)

    # the shelves read: B1 in place, B3 on the wrong shelf, B4 in place, a stranger's tag
    key = {"X-Device-Key": r.key}
    posted = client.post(
        "/api/v1/devices/me/tags",
        json={
            "reports": [
                snapshot(1, 1, [r.tags["B1"]]),
                snapshot(2, 3, [r.tags["B3"], r.tags["B4"], "E2000000FEEDF00D"]),
            ]
        },
        headers=key,
    )
    assert posted.status_code == 200
    # a handheld at shelf I-2 reads a barcode that is no copy of ours
    hand = client.post(
        f"/api/v1/inventories/{inv['id']}/reads",
        json={"shelf": "I-2", "barcodes": ["NOPE-1"]},
        headers=librarian,
    )
    assert hand.json() == {"copies": 0, "unknown": 1}

    live = client.get(f"/api/v1/inventories/{inv['id']}", headers=librarian).json()
    assert {k: live[k] for k in ("expected", "found", "misplaced", "missing", "unexpected")} == {
        "expected": 4,
        "found": 3,
        "misplaced": 1,
        "missing": 1,
        "unexpected": 2,
    }
    assert live["percent"] == 75.0
    assert [
        (s["shelf"], s["expected"], s["found"], s["misplaced_here"]) for s in live["shelves"]
    ] == [
        ("I-1", 3, 2, 0),
        ("I-2", 1, 1, 1),
    ]
    assert (
        client.get(f"/api/v1/inventories/{inv['id']}", headers=as_staff("airport-lib")).status_code
        == 404
    )

    report = client.get(f"/api/v1/inventories/{inv['id']}/report?format=csv", headers=librarian)
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text.lstrip("\ufeff"))))
    assert sorted((x["kind"], x["barcode"], x["read_on"]) for x in rows) == [
        ("found", "B1", "I-1"),
        ("found", "B4", "I-2"),
        ("misplaced", "B3", "I-2"),
        ("missing", "B2", ""),
        ("unexpected", "E2000000FEEDF00D", "I-2"),
        ("unexpected", "barcode:NOPE-1", "I-2"),
    ]

    closed = client.post(
        f"/api/v1/inventories/{inv['id']}/close", json={"mark_missing": True}, headers=librarian
    )
    assert closed.status_code == 200
    assert (closed.json()["state"], closed.json()["marked_missing"], closed.json()["missing"]) == (
        "closed",
        1,
        1,
    )
    session.rollback()
    assert catalog.find_item(session, barcode="B2").status == "missing"
    session.rollback()
    late = client.post(
        f"/api/v1/inventories/{inv['id']}/reads", json={"barcodes": ["B2"]}, headers=librarian
    )
    assert late.status_code == 409

    # the next stocktake: the shelves' next round of snapshots, and B2 found with a handheld
    again = client.post(
        base, json={"scope": "zone", "location_id": r.location_id}, headers=librarian
    ).json()
    assert again["expected"] == 4  # a copy marked missing is still expected
    client.post(
        "/api/v1/devices/me/tags",
        json={
            "reports": [
                snapshot(3, 1, [r.tags["B1"], r.tags["B3"]]),
                snapshot(4, 3, [r.tags["B4"]]),
            ]
        },
        headers=key,
    )
    client.post(
        f"/api/v1/inventories/{again['id']}/reads", json={"barcodes": ["B2"]}, headers=librarian
    )
    done = client.post(
        f"/api/v1/inventories/{again['id']}/close", json={"mark_missing": True}, headers=librarian
    ).json()
    assert (done["found"], done["misplaced"], done["marked_missing"]) == (4, 0, 0)
    session.rollback()
    assert catalog.find_item(session, barcode="B2").status == "available"
    session.rollback()
    listed = client.get(base, headers=librarian).json()
    assert [(i["id"], i["state"]) for i in listed] == [
        (again["id"], "closed"),
        (inv["id"], "closed"),
    ]
