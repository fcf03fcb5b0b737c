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
    # Catalogued as reference (not retyped behind the catalogue's back): the rule lends it.
    factories.copies(session, world, "Desk only", ["B-2"], item_type="reference")
    late = factories.lend(
        session,
        None,
        world.reader_central,
        "B-2",
        world.central,
        at=factories.NOW - dt.timedelta(days=40),
    )
    fees.accrue(session, factories.NOW)
    circulation.checkin(session, None, barcode="B-2", at_unit_id=world.central.id, at=factories.NOW)
    assert late.returned_at is not None
    central, code = str(world.central.id), world.central.here_code
    session.commit()
    assert client.get("/borrow", follow_redirects=False).status_code == 303
    sign_in(client, "reader", "CARD000001", READER_PW)
    # Not in a library yet: no form, but how to show where the phone is.
    page = client.get("/borrow")
    assert page.status_code == 200 and 'id="borrow-barcode"' not in page.text
    assert "scan a “You are here” sign in the library" in page.text
    anywhere = client.post("/borrow", data={"csrf_token": csrf_of(page.text), "barcode": "B-1"})
    assert anywhere.status_code == 409 and "scan a “You are here” sign" in anywhere.text
    guessed = client.get("/borrow", params={"library": central, "here": "guessed"})
    assert 'id="borrow-barcode"' not in guessed.text
    # The sign's link (from its QR code, through the map): the phone is in the library.
    page = client.get("/borrow", params={"library": central, "here": code})
    assert page.status_code == 200 and 'id="borrow-barcode"' in page.text
    assert "You are in Central Library (by the sign you scanned, until 17:00)." in page.text
    assert "You are in Central Library" in client.get("/borrow").text  # kept for a while
    form = {"csrf_token": csrf_of(page.text)}
    unknown = client.post("/borrow", data={**form, "barcode": "NOPE"})
    assert unknown.status_code == 404 and "No copy has this barcode." in unknown.text
    desk_only = client.post("/borrow", data={**form, "barcode": "B-2"})
    assert desk_only.status_code == 409 and "lent at the desk, not by phone" in desk_only.text
    lent = client.post("/borrow", data={**form, "barcode": "B-1"})
    assert lent.status_code == 200 and "You borrowed Phone loan. Due" in lent.text
    account = client.get("/account")
    fees_part = account.text.split('id="fees"')[1].split("</section>")[0]
    # 12 days late under the reference rule (0.10 a day).
    assert "You owe CN¥1.20 in all." in fees_part and "Overdue" in fees_part
    assert 'id="history"' not in account.text  # no history kept by default
    data = client.get("/account/data.json")
    assert data.headers["content-disposition"].startswith("attachment")
    mine = data.json()
    assert mine["reader"]["card_number"] == "CARD000001"
    # The reader's card, then each context's sections (circulation's, registered by the app).
    sections = ["loans", "reading_history", "holds", "fees", "courier_returns"]
    assert list(mine) == ["exported_at", "reader", *sections]
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
        "to Reader 1, card CARD000001."
        in client.post("/staff/desk/checkout", data={**desk, "barcode": "T-1"}).text
    )
    refused = client.post("/staff/desk/checkout", data={**desk, "barcode": "T-2"})
    assert refused.status_code == 409 and "Lend anyway" in refused.text
    forced = client.post(
        "/staff/desk/checkout", data={**desk, "barcode": "T-2", "override": "travelling"}
    )
    assert forced.status_code == 200 and "(T-2) to Reader 1" in forced.text
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


def test_a_reader_books_a_courier_in_their_account_and_the_branch_marks_it_collected(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world, loan_days=14)
    factories.copies(session, world, "Return me by courier", ["Q-1"], world.central)
    factories.copies(session, world, "Keep me a while", ["Q-2"], world.central)
    desk = world.actor(session, world.admin)
    for code in ("Q-1", "Q-2"):
        factories.lend(session, desk, world.reader_community, code, world.central)  # fmt: skip
    community = world.community.id
    session.commit()
    sign_in(client, "reader", "CARD000002", READER_PW)
    account = client.get("/account")
    assert 'href="/account/courier"' in account.text
    page = client.get("/account/courier")
    assert page.status_code == 200 and "Delivery fee: CN¥5.00" in page.text
    assert "Return me by courier" in page.text and "Keep me a while" in page.text
    token = csrf_of(page.text)
    loan_id = re.search(r'name="loan_id" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    # Nothing chosen, no address, a time in the past: each field says what is wrong, and
    # what was typed stays.
    bad = client.post(
        "/account/courier",
        data={"csrf_token": token, "address": "", "pickup_at": "2026-11-01T10:00"},
    )
    assert bad.status_code == 422
    assert "Choose at least one book to send back." in bad.text
    assert "Give the address to collect from" in bad.text
    assert "Choose a time from now to 30 days ahead." in bad.text
    assert 'value="2026-11-01T10:00"' in bad.text
    garbled = client.post(
        "/account/courier",
        data={
            "csrf_token": token,
            "loan_id": loan_id,
            "address": "5 Lake Road",
            "pickup_at": "soon",
        },
    )
    assert garbled.status_code == 422 and "Choose a time from now" in garbled.text
    booked = client.post(
        "/account/courier",
        data={
            "csrf_token": token,
            "loan_id": loan_id,
            "address": "5 Lake Road",
            "pickup_at": "2026-11-19T09:30",
        },
    )
    assert booked.status_code == 200 and "The courier is booked." in booked.text
    part = booked.text.split('id="courier"')[1].split("</section>")[0]
    assert "Courier booked" in part and "Return me by courier" in part
    assert "Keep me a while" not in part
    fees_part = booked.text.split('id="fees"')[1].split("</section>")[0]
    assert "You owe nothing." in fees_part  # the fee is charged when the courier collects
    assert "fee CN¥5.00" in part
    again = client.get("/account/courier")
    assert "1 book is already booked for a courier." in again.text
    assert "Return me by courier" not in again.text

    # The community branch's page lists the pickup; marking it collected closes the loan.
    client.post("/signout", data={"csrf_token": csrf_of(again.text)})
    sign_in(client, "staff", "community-lib", STAFF_PW)
    transits = client.get(f"/staff/transits?library={community}")
    pickups = transits.text.split('id="pickups"')[1].split("</table>")[0]
    assert "5 Lake Road" in pickups and "Q-1" in pickups and "Q-2" not in pickups
    courier_id = re.search(r"/staff/couriers/(\d+)/collect", pickups).group(1)  # type: ignore[union-attr]
    done = client.post(
        f"/staff/couriers/{courier_id}/collect",
        data={"csrf_token": csrf_of(transits.text), "library": str(community)},
    )
    assert done.status_code == 200 and "Marked as collected" in done.text
    coming = done.text.split('id="coming"')[1].split("</table>")[0]
    assert "Q-1" in coming and "a reader, by courier" in coming
    assert "No courier pickups booked." in done.text
    loans = [x.barcode for x in circulation.open_loans(session, world.reader_community.id)]
    session.rollback()  # SQLite: let the app's relay write
    assert loans == ["Q-2"]
