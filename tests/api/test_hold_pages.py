"""Holds, fees and borrowing by phone in the reader's pages; the staff page of what to
fetch, send and receive; lending past a refusal at the desk."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import audit, circulation
from biblioverse.circulation import fees
from tests import factories
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import READER_PW, STAFF_PW, World


def test_a_reader_places_a_hold_from_the_record_page_and_manages_it(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)
    (copy,) = factories.copies(session, world, "Wanted book", ["W-1"], world.airport)
    record_id, community = copy.record_id, world.community.id
    session.commit()
    record = client.get(f"/catalog/records/{record_id}")
    assert f'href="/catalog/records/{record_id}/hold"' in record.text
    assert (
        client.get(f"/catalog/records/{record_id}/hold", follow_redirects=False).status_code == 303
    )
    sign_in(client, "reader", "CARD000001", READER_PW)
    page = client.get(f"/catalog/records/{record_id}/hold")
    assert page.status_code == 200 and "Wanted book" in page.text
    token = csrf_of(page.text)
    nowhere = client.post(
        f"/catalog/records/{record_id}/hold", data={"csrf_token": token, "pickup_library_id": ""}
    )
    assert nowhere.status_code == 409 and "Choose a library to collect it at." in nowhere.text
    placed = client.post(
        f"/catalog/records/{record_id}/hold",
        data={"csrf_token": token, "pickup_library_id": str(community)},
    )
    assert placed.status_code == 200 and "Your hold is placed." in placed.text
    holds_part = placed.text.split('id="holds"')[1].split("</section>")[0]
    assert "Wanted book" in holds_part and "number 1 in the queue" in holds_part
    assert "Community" in holds_part
    again = client.get(f"/catalog/records/{record_id}/hold")
    assert "You are number 1 in the queue." in again.text
    hold_id = re.search(r"/account/holds/(\d+)/suspend", placed.text).group(1)  # type: ignore[union-attr]
    suspended = client.post(f"/account/holds/{hold_id}/suspend", data={"csrf_token": token})
    assert "Your hold is suspended" in suspended.text and "Resume" in suspended.text
    client.get("/lang/zh_Hans")
    resumed = client.post(f"/account/holds/{hold_id}/resume", data={"csrf_token": token})
    assert "您的预约已恢复。" in resumed.text and "排第 1 位" in resumed.text
    # Another reader cannot touch it.
    sign_in(client, "reader", "CARD000002", READER_PW)
    token2 = csrf_of(client.get("/account").text)
    theirs = client.post(f"/account/holds/{hold_id}/cancel", data={"csrf_token": token2})
    assert "此预约不在您的读者证上。" in theirs.text
    client.get("/lang/en")
    sign_in(client, "reader", "CARD000001", READER_PW)
    token = csrf_of(client.get("/account").text)
    gone = client.post(f"/account/holds/{hold_id}/cancel", data={"csrf_token": token})
    assert "Your hold is cancelled." in gone.text and "No holds." in gone.text


def test_a_reader_borrows_by_phone_and_sees_their_fees(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world, fine_per_day=Decimal("0.50"))
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(
            world.consortium.id,
            item_type="reference",
            policy=circulation.Policy(mobile_checkout=False),
        ),
        at=factories.NOW,
    )
    factories.copies(session, world, "Phone loan", ["B-1"])
    (ref,) = factories.copies(session, world, "Desk only", ["B-2"])
    ref.item_type = "reference"
    late = circulation.checkout(
        session,
        None,
        reader_id=world.reader_central.id,
        barcode="B-2",
        at_unit_id=world.central.id,
        at=factories.NOW - dt.timedelta(days=40),
    )
    fees.accrue(session, factories.NOW)
    circulation.checkin(session, None, barcode="B-2", at_unit_id=world.central.id, at=factories.NOW)
    assert late.returned_at is not None
    central = str(world.central.id)
    session.commit()
    assert client.get("/borrow", follow_redirects=False).status_code == 303
    sign_in(client, "reader", "CARD000001", READER_PW)
    page = client.get("/borrow")
    assert page.status_code == 200 and 'id="borrow-barcode"' in page.text
    form = {"csrf_token": csrf_of(page.text), "library_id": central}
    unknown = client.post("/borrow", data={**form, "barcode": "NOPE"})
    assert unknown.status_code == 409 and "No copy has this barcode." in unknown.text
    desk_only = client.post("/borrow", data={**form, "barcode": "B-2"})
    assert desk_only.status_code == 409 and "lent at the desk, not by phone" in desk_only.text
    lent = client.post("/borrow", data={**form, "barcode": "B-1"})
    assert lent.status_code == 200 and "You borrowed Phone loan. Due" in lent.text
    account = client.get("/account")
    fees_part = account.text.split('id="fees"')[1].split("</section>")[0]
    # 12 days late under the reference rule (0.10 a day).
    assert "You owe 1.20 in all." in fees_part and "Overdue" in fees_part
    assert 'id="history"' not in account.text  # no history kept by default
    data = client.get("/account/data.json")
    assert data.headers["content-disposition"].startswith("attachment")
    mine = data.json()
    assert mine["reader"]["card_number"] == "CARD000001"
    assert [x["title"] for x in mine["loans"]] == ["Phone loan"]
    assert [(f["kind"], f["amount"]) for f in mine["fees"]] == [("overdue", "1.20")]
    client.cookies.clear()
    assert client.get("/account/data.json").status_code == 401


def test_the_staff_page_lists_what_to_fetch_send_and_receive_and_the_desk_may_override(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world, max_loans=1)
    (far,) = factories.copies(session, world, "To fetch", ["T-1"], world.airport)
    factories.copies(session, world, "Second loan", ["T-2", "T-3"])
    circulation.holds.place(
        session,
        None,
        reader_id=world.reader_central.id,
        record_id=far.record_id,
        pickup_unit_id=world.central.id,
        at=factories.NOW,
    )
    airport, central = str(world.airport.id), str(world.central.id)
    session.commit()
    sign_in(client, "staff", "airport-lib", STAFF_PW)
    page = client.get(f"/staff/transits?library={airport}")
    pull = page.text.split('id="pull-list"')[1].split("</table>")[0]
    assert "T-1" in pull and "Central Library" in pull
    token = csrf_of(page.text)
    desk = {"csrf_token": token, "library_id": airport}
    scanned = client.post("/staff/desk/checkin", data={**desk, "barcode": "T-1"})
    assert "Send it to Central Library for a hold." in scanned.text
    page = client.get(f"/staff/transits?library={airport}")
    assert "Nothing to fetch." in page.text
    transit_id = re.search(r"/staff/transits/(\d+)/ship", page.text).group(1)  # type: ignore[union-attr]
    shipped = client.post(
        f"/staff/transits/{transit_id}/ship", data={"csrf_token": token, "library": airport}
    )
    assert "Marked as sent." in shipped.text and "Nothing to send." in shipped.text
    sign_in(client, "staff", "central-lib", STAFF_PW)
    page = client.get(f"/staff/transits?library={central}")
    coming = page.text.split('id="coming"')[1].split("</table>")[0]
    assert "T-1" in coming and "sent" in coming
    token = csrf_of(page.text)
    desk = {"csrf_token": token, "library_id": central, "card_number": "CARD000001"}
    arrived = client.post("/staff/desk/checkin", data={**desk, "barcode": "T-1"})
    assert "Put it on the hold shelf for Reader 1 (card CARD000001)." in arrived.text
    shelf = client.get(f"/staff/transits?library={central}").text.split('id="hold-shelf"')[1]
    assert "T-1" in shelf.split("</table>")[0]
    # The loan limit refuses a second loan; the librarian may lend anyway, with a reason.
    assert (
        "lent to Reader 1"
        in client.post("/staff/desk/checkout", data={**desk, "barcode": "T-1"}).text
    )
    refused = client.post("/staff/desk/checkout", data={**desk, "barcode": "T-2"})
    assert refused.status_code == 409 and "Lend anyway" in refused.text
    forced = client.post(
        "/staff/desk/checkout", data={**desk, "barcode": "T-2", "override": "travelling"}
    )
    assert forced.status_code == 200 and "T-2 lent to Reader 1" in forced.text
    session.rollback()
    entry = session.scalars(
        select(audit.AuditEntry).where(audit.AuditEntry.action == "circulation.override")
    ).one()
    assert entry.details["refusals"] == ["loan_limit"] and entry.details["reason"] == "travelling"
    session.rollback()
    # The circulation role sees the refusal but no way past it.
    sign_in(client, "staff", "airport-desk", STAFF_PW)
    token = csrf_of(client.get("/staff/desk").text)
    plain = client.post(
        "/staff/desk/checkout",
        data={
            "csrf_token": token,
            "library_id": airport,
            "card_number": "CARD000001",
            "barcode": "T-3",
        },
    )
    assert plain.status_code == 409 and "Lend anyway" not in plain.text
