"""The shelves page's "not read for two days" and the missing-copies download are one rule
(`shelves.rules.missing`): with copies either side of the cut-off, the count and the rows
agree, and the download writes its times in the library's zone with the offset. The live
panel answers during an inventory and after it is closed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog
from biblioverse.shelves import reports
from biblioverse.shelves.models import Antenna, ItemPosition
from biblioverse.shelves.rules import MISSING_AFTER
from tests.api.conftest import token_for
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import NOW, STAFF_PW, World
from tests.integration.rfid_support import Room, room

SINCE = NOW - MISSING_AFTER
SECOND = dt.timedelta(seconds=1)


def _boundary(session: Session, world: World) -> tuple[Room, set[str]]:
    """Copies either side of the cut-off; returns the room and the barcodes missing."""
    r = room(session, world)
    record_id = session.get(catalog.Item, r.items["B1"]).record_id  # type: ignore[union-attr]
    more = [
        catalog.NewItem(record_id, b, world.central.id, location_id=r.location_id, call_number=c)
        for b, c in (("B5", "I242.4/5"), ("B6", "I242.4/6"), ("B7", "I242.4/7"))
    ]
    r.items.update({i.barcode: i.id for i in catalog.add_items(session, None, more, at=NOW)})
    antennas = {
        a.antenna: a
        for a in session.scalars(select(Antenna).where(Antenna.device_id == r.device_id))
    }
    antennas[3].snapshot_at = SINCE  # its last snapshot, exactly at the cut-off, held B4

    def at(barcode: str, antenna: int, state: str, seen: dt.datetime) -> None:
        a = antennas[antenna]
        session.add(
            ItemPosition(
                item_id=r.items[barcode],
                antenna_id=a.id,
                shelf_id=a.shelf_id,
                level=a.level,
                side="A",
                state=state,
                seen_at=seen,
                seen_seq=1,
            )
        )

    at("B1", 1, "on_shelf", SINCE)  # read exactly at the cut-off: not missing
    at("B2", 1, "on_shelf", SINCE - SECOND)  # a second before it: missing
    at("B3", 2, "off_shelf", SINCE + dt.timedelta(hours=1))  # read lately, then taken: not
    at("B4", 3, "on_shelf", SINCE - dt.timedelta(days=1))  # its antenna's snapshot holds it
    at("B5", 2, "off_shelf", SINCE - SECOND)  # taken a second before the cut-off: missing
    # B6 and B7 were never read: missing
    session.commit()
    return r, {"B2", "B5", "B6", "B7"}


def test_the_count_and_the_download_agree_at_the_cut_off(
    client: TestClient, session: Session, world: World
) -> None:
    _room, missing = _boundary(session, world)
    central = world.central.id
    counted = reports.reconcile(session, [central], at=NOW).missing
    listed = {row.barcode for row in reports.missing(session, central, at=NOW)}
    assert listed == missing and counted == len(missing)
    session.rollback()

    sign_in(client, "staff", "central-lib", STAFF_PW)
    live = client.get(f"/staff/shelves/live?library={central}").text
    shown = re.search(r'id="count-missing">(\d+)<', live)
    assert shown and int(shown.group(1)) == len(missing)
    download = client.get(f"/staff/shelves/{central}/missing.csv")
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text.lstrip("\ufeff"))))
    assert {row["barcode"] for row in rows} == missing
    seen = {row["barcode"]: row["seen_at"] for row in rows}
    # 2026-11-16T05:59:59Z is 13:59 in Beijing; a copy never read has no time
    assert seen["B2"] == "2026-11-16T13:59+08:00" and seen["B5"] == "2026-11-16T13:59+08:00"
    assert seen["B6"] == ""
    staff = token_for(client, "staff", "central-lib", STAFF_PW)
    api = client.get(f"/api/v1/libraries/{central}/reconciliation", headers=staff).json()
    assert api["missing"] == len(missing)
    listed_by_api = client.get(
        f"/api/v1/libraries/{central}/shelf-reports/missing", headers=staff
    ).json()
    assert {row["barcode"] for row in listed_by_api} == missing


def test_the_live_panel_during_and_after_an_inventory(
    client: TestClient, session: Session, world: World
) -> None:
    r, _missing = _boundary(session, world)
    tag = r.tags["B1"]
    central = world.central.id
    sign_in(client, "staff", "central-lib", STAFF_PW)
    page = client.get(f"/staff/shelves?library={central}")
    assert client.get(f"/staff/shelves/live?library={central}").status_code == 200  # none yet
    started = client.post(
        "/staff/inventories",
        data={"csrf_token": csrf_of(page.text), "library": str(central), "scope": "library"},
    )
    assert started.status_code == 200
    during = client.get(f"/staff/shelves/live?library={central}")
    assert during.status_code == 200 and 'id="inventories"' in during.text
    assert "%" in during.text and 'id="count-missing">4<' in during.text
    read = {"type": "snapshot", "seq": 9, "ts": NOW.isoformat(), "antenna": 1, "tags": [tag]}
    posted = client.post("/api/v1/devices/me/tags", json=read, headers={"X-Device-Key": r.key})
    assert posted.status_code == 200, posted.text
    assert client.get(f"/staff/shelves/live?library={central}").status_code == 200
    inventory_id = int(re.search(r"/staff/inventories/(\d+)/close", during.text).group(1))  # type: ignore[union-attr]
    closed = client.post(
        f"/staff/inventories/{inventory_id}/close",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=True,
    )
    assert closed.status_code == 200
    after = client.get(f"/staff/shelves/live?library={central}")
    assert after.status_code == 200 and "Report (CSV)" in after.text
    assert 'id="count-missing">4<' in after.text
    report = client.get(f"/staff/inventories/{inventory_id}.csv")
    assert report.status_code == 200
    times = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d[+-]\d\d:\d\d", report.text)
    assert times and all(t.endswith("+08:00") for t in times)
    # a second inventory started after the first was closed: the panel still answers
    again = client.post(
        "/staff/inventories",
        data={"csrf_token": csrf_of(page.text), "library": str(central), "scope": "library"},
    )
    assert again.status_code == 200
    assert client.get(f"/staff/shelves/live?library={central}").status_code == 200
