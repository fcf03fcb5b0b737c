"""The world the generated permission matrix runs in: every kind of record an operation of
the API can name, owned by the central library and its reader, and a credential for every
kind of caller. Staff of the airport branch are "another library": their roles cover the
airport only, so the central library's records are outside their scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from biblioverse import accounts, circulation, libraries, readers, shelves, twin
from biblioverse.access import DeviceKind, PrincipalKind, Role
from biblioverse.building import service as building
from biblioverse.circulation.matrix import matrix
from biblioverse.shelves import inventory, tagdata
from biblioverse.twin import layout
from tests import factories
from tests.factories import NOW, World

# The callers, in the matrix's column order: who they are, and a short column name.
PRINCIPALS: tuple[tuple[str, str], ...] = (
    ("anonymous", "anon"),
    ("reader", "rdr"),  # the central reader, whose loan, hold, fee and courier these are
    ("other-reader", "oth"),  # another reader
    *((f"device:{k.value}", k.value[:3]) for k in DeviceKind),
    ("admin", "adm"),  # the consortium's administrator
    ("central-lib", "lib"),  # librarian of the central library (and its branches)
    ("cataloguer", "cat"),  # cataloguer of the central library
    ("central-desk", "cir"),  # circulation desk of the central library
    ("airport-lib", "xlib"),  # librarian of another library
    ("airport-desk", "xcir"),  # circulation desk of another library
)


@dataclass
class MatrixWorld:
    w: World
    ids: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


def _token(session: Session, kind: PrincipalKind, principal_id: int) -> dict[str, str]:
    actor = accounts.actor_for(session, kind.value, principal_id)
    assert actor is not None
    token, _ = accounts.issue_token(session, actor, at=NOW, ttl_s=86_400 * 365)
    return {"Authorization": f"Bearer {token}"}


def build(session: Session) -> MatrixWorld:
    w = factories.world(session)
    desk = factories.staff(session, "central-desk", Role.CIRCULATION, w.central)
    factories.rule(session, w, loan_days=21, renewals=2, max_loans=10, max_holds=5)
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(
            w.central.id, reader_category="child", name="children", policy=circulation.Policy()
        ),
        at=NOW,
    )
    items = factories.copies(session, w, "Matrix title", ["M1", "M3"])
    held = factories.copies(session, w, "Held title", ["M2"])
    travelling = factories.copies(session, w, "Travelling title", ["M4"])
    wanted = factories.copies(session, w, "Wanted title", ["M6"])
    parcel_copy = factories.copies(session, w, "Parcel title", ["M5"])
    record_id = items[0].record_id
    loan = factories.lend(session, None, w.reader_central, "M1", w.central)
    for barcode in ("M2", "M4", "M6"):
        factories.lend(session, None, w.reader_community, barcode, w.central)
    hold = circulation.holds.place(
        session,
        None,
        reader_id=w.reader_central.id,
        record_id=held[0].record_id,
        pickup_unit_id=w.central.id,
        at=NOW,
    )
    back = circulation.checkin(
        session, None, barcode="M4", rfid_tag=None, at_unit_id=w.airport.id, at=NOW
    )
    assert back.routing.transit is not None and travelling
    # Enough owed for each principal's payment of 1.00 (a courier's fee is charged only
    # when it collects, so the parcel below owes nothing yet).
    fee = circulation.fees.charge_logistics(
        session, w.reader_central.id, w.central.id, Decimal(8), NOW, note="matrix"
    )
    courier_loan = factories.lend(
        session, None, w.reader_central, "M5", w.central, at=NOW - dt.timedelta(days=1)
    )
    assert parcel_copy
    parcel = circulation.courier.request(
        session,
        None,
        reader_id=w.reader_central.id,
        loan_ids=[courier_loan.id],
        address="1 Library Road",
        pickup_at=NOW + dt.timedelta(days=1),
        at=NOW,
    )
    system = factories.World.actor(w, session, w.admin)
    pending = readers.register_online(
        session,
        readers.NewReader(
            name="Pending Reader",
            birth_date=dt.date(1991, 2, 3),
            category="adult",
            home_library_id=w.central.id,
            email="pending@example.org",
            password="a-long-password-2026",
        ),
        at=NOW,
    )
    loc = libraries.add_location(
        session,
        None,
        w.central,
        libraries.LocationInput("1F-A", 1, "A", "Reading room", "阅览室", "A-1", "A-1"),
        at=NOW,
    )
    shelf = libraries.add_shelf(
        session, None, w.central, libraries.ShelfInput(loc.id, "A-1", "A", "Z"), at=NOW
    )
    keys: dict[str, str] = {}
    device_ids: dict[str, int] = {}
    for kind in DeviceKind:
        row, key = accounts.create_device_key(
            session,
            None,
            name=f"The {kind.value}",
            kind=kind.value,
            org_unit_id=w.central.id,
            at=NOW,
        )
        keys[kind.value], device_ids[kind.value] = key, row.id
    shelves.add_antenna(
        session, None, device_id=device_ids["shelf"], antenna=1, shelf_id=shelf.id, level=1, at=NOW
    )
    building.place_sensor(
        session, system, device_id=device_ids["sensor"], location_id=loc.id, at=NOW
    )
    gate = session.get(accounts.DeviceKey, device_ids["gate"])
    assert gate is not None
    alarm = building.raise_gate_alarm(session, device=gate, item_id=items[1].id, tag="E1", at=NOW)
    assert alarm is not None
    linkage = building.add_rule(
        session,
        system,
        w.central.id,
        building.RuleInput("Tell the desk", [{"type": "notify", "to": "desk@example.org"}]),
        at=NOW,
    )
    taking_stock = inventory.start(
        session, system, w.central.id, inventory.ScopeInput("library"), at=NOW
    )
    m3 = items[1]
    m3.location_id, m3.call_number = loc.id, "K825/1"
    a_shelf = layout.ShelfSpec("A-1", "clc", "A", "Z")
    plan = layout.draft(
        [
            layout.FloorSpec(
                1,
                "Ground floor",
                "一层",
                [layout.ZoneSpec("1F-A", "reading_room", "A", "甲", [a_shelf])],
            )
        ]
    )
    twin.import_plan(session, system, w.central, plan, at=NOW)
    session.flush()
    rule_id = next(r.id for r in matrix(session) if r.org_path == w.central.path)
    mw = MatrixWorld(w)
    mw.ids = {
        "central": w.central.id,
        "airport": w.airport.id,
        "consortium": w.consortium.id,
        "reader": w.reader_central.id,
        "card": w.reader_central.card_number,
        "staff": desk.id,
        "record": record_id,
        "item": items[1].id,
        "wanted": wanted[0].record_id,
        "barcode": "M3",
        "loan": loan.id,
        "hold": hold.id,
        "courier": parcel.id,
        "transit": back.routing.transit.id,
        "fee": fee.id,
        "rule": rule_id,
        "linkage_rule": linkage.id,
        "location": loc.id,
        "shelf": shelf.id,
        "sensor": device_ids["sensor"],
        "shelf_reader": device_ids["shelf"],
        "robot": device_ids["robot"],  # rotated and retired by the matrices
        "alarm": alarm.id,
        "inventory": taking_stock.id,
        "pending_reader": pending.id,
        "plan": plan,
        "tag_data": tagdata.encode(tagdata.TagContent(tagdata.TagFormat.ISO28560_3, "M3")),
    }
    people = {
        "reader": (PrincipalKind.READER, w.reader_central.id),
        "other-reader": (PrincipalKind.READER, w.reader_community.id),
        "admin": (PrincipalKind.STAFF, w.admin.id),
        "central-lib": (PrincipalKind.STAFF, w.central_librarian.id),
        "cataloguer": (PrincipalKind.STAFF, w.cataloguer.id),
        "central-desk": (PrincipalKind.STAFF, desk.id),
        "airport-lib": (PrincipalKind.STAFF, w.airport_librarian.id),
        "airport-desk": (PrincipalKind.STAFF, w.airport_desk.id),
    }
    mw.headers = {"anonymous": {}}
    for who, (principal, pid) in people.items():
        mw.headers[who] = _token(session, principal, pid)
    for kind_name, key in keys.items():
        mw.headers[f"device:{kind_name}"] = {"X-Device-Key": key}
    session.commit()
    return mw
