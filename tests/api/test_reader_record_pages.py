"""The reader record in the staff console (issue 29) through HTTP: what each desk sees, and
the actions on loans, holds, fees and the card, each audited."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import audit, circulation, readers
from biblioverse.deps import get_now
from tests import factories
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import STAFF_PW, World

LATER = factories.NOW + dt.timedelta(days=40)  # both loans overdue


def _setup(session: Session, world: World) -> tuple[int, int, int, int]:
    """Reader 1 (central) with a loan from central and one from the airport, a fee owed
    to each, and a hold to collect at central. Returns the reader, the two fees and the
    hold."""
    factories.rule(session, world, loan_days=14, renewals=3, fine_per_day=Decimal("0"))
    factories.copies(session, world, "Central book", ["RC-1"])
    factories.copies(session, world, "Airport book", ["RA-1"], library=world.airport)
    factories.copies(session, world, "Held book", ["RH-1"])
    factories.lend(session, None, world.reader_central, "RC-1", world.central)
    factories.lend(session, None, world.reader_central, "RA-1", world.airport)
    r = world.reader_central
    central_fee = circulation.fees.charge_logistics(
        session, r.id, world.central.id, Decimal("3.50"), factories.NOW, "courier"
    )
    airport_fee = circulation.fees.charge_logistics(
        session, r.id, world.airport.id, Decimal("2.00"), factories.NOW, "courier"
    )
    factories.lend(session, None, world.reader_community, "RH-1", world.central)
    record_id = session.scalar(
        select(circulation.Loan.item_id).order_by(circulation.Loan.id.desc()).limit(1)
    )
    item = session.get(__import__("biblioverse").catalog.Item, record_id)
    assert item is not None
    hold = circulation.holds.place(
        session,
        None,
        reader_id=r.id,
        record_id=item.record_id,
        pickup_unit_id=world.central.id,
        at=factories.NOW,
    )
    session.commit()
    return r.id, central_fee.id, airport_fee.id, hold.id


def test_home_library_staff_see_the_whole_record_and_act_on_it(
    client: TestClient, session: Session, world: World, app: FastAPI
) -> None:
    reader_id, central_fee, _airport_fee, hold_id = _setup(session, world)
    app.dependency_overrides[get_now] = lambda: LATER
    sign_in(client, "staff", "central-lib", STAFF_PW)
    found = client.get("/staff/readers/find", params={"card": " CARD000001 "})
    assert found.status_code == 200 and str(found.url).endswith(f"/staff/readers/{reader_id}")
    page = found.text
    assert "reader1@example.org" in page  # contact details: home library
    assert "Central book" in page and "Airport book" in page
    assert "26 days overdue" in page  # due 2 Dec, seen on 27 Dec
    assert "CN¥5.50" in page  # owed in all, with its currency
    assert "Held book" in page and "Place in queue" in page
    assert not re.search(r"\d\d:\d\d:\d\d", page), "dates without seconds"
    token = csrf_of(page)

    renewed = client.post(f"/staff/readers/{reader_id}/renew", data={"csrf_token": token})
    assert renewed.status_code == 200 and "2 loans renewed." in renewed.text

    paid = client.post(
        f"/staff/readers/{reader_id}/pay",
        data={"csrf_token": token, "amount": "1.50", "note": "cash"},
    )
    assert paid.status_code == 200 and "/receipt?" in str(paid.url)
    assert "CN¥1.50" in paid.text and "Still owed: CN¥4.00" in paid.text
    too_much = client.post(
        f"/staff/readers/{reader_id}/pay", data={"csrf_token": token, "amount": "99"}
    )
    assert too_much.status_code == 422 and 'id="e-amount"' in too_much.text
    nonsense = client.post(
        f"/staff/readers/{reader_id}/pay", data={"csrf_token": token, "amount": "lots"}
    )
    assert nonsense.status_code == 422 and 'id="e-amount"' in nonsense.text
    for typed in ("1e999999", "NaN", "-1", "0.001", "1,5"):
        odd = client.post(
            f"/staff/readers/{reader_id}/pay", data={"csrf_token": token, "amount": typed}
        )
        assert odd.status_code == 422 and 'id="e-amount"' in odd.text, typed

    ask = client.post(
        f"/staff/readers/{reader_id}/fees/{central_fee}/waive",
        data={"csrf_token": token, "reason": "courier failed"},
    )
    assert ask.status_code == 200 and "Please confirm" in ask.text
    assert session.get(circulation.Fee, central_fee).waived == 0  # type: ignore[union-attr]
    session.rollback()  # end the read, so the app may write
    waived = client.post(
        f"/staff/readers/{reader_id}/fees/{central_fee}/waive",
        data={"csrf_token": token, "reason": "courier failed", "confirm": "yes"},
    )
    assert waived.status_code == 200 and "The fee is waived." in waived.text

    cancel = client.post(
        f"/staff/readers/{reader_id}/holds/{hold_id}/cancel", data={"csrf_token": token}
    )
    assert "Please confirm" in cancel.text and "Held book" in cancel.text
    cancelled = client.post(
        f"/staff/readers/{reader_id}/holds/{hold_id}/cancel",
        data={"csrf_token": token, "confirm": "yes"},
    )
    assert cancelled.status_code == 200 and "The hold is cancelled." in cancelled.text

    no_reason = client.post(
        f"/staff/readers/{reader_id}/block", data={"csrf_token": token, "reason": " "}
    )
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    blocked = client.post(
        f"/staff/readers/{reader_id}/block",
        data={"csrf_token": token, "reason": "lost card reported", "confirm": "yes"},
    )
    assert blocked.status_code == 200 and "Blocked: lost card reported" in blocked.text
    unblocked = client.post(
        f"/staff/readers/{reader_id}/unblock",
        data={"csrf_token": token, "reason": "card found"},
    )
    assert unblocked.status_code == 200 and "The card is unblocked." in unblocked.text

    before = readers.get(session, reader_id).expires_on
    session.rollback()
    renewed_card = client.post(f"/staff/readers/{reader_id}/card/renew", data={"csrf_token": token})
    assert renewed_card.status_code == 200 and "The card is renewed." in renewed_card.text
    session.expire_all()
    assert readers.get(session, reader_id).expires_on == before + dt.timedelta(days=3 * 365)
    session.rollback()

    bad_mail = client.post(
        f"/staff/readers/{reader_id}/contact",
        data={"csrf_token": token, "email": "not-an-address", "phone": ""},
    )
    assert bad_mail.status_code == 422 and 'id="e-email"' in bad_mail.text
    taken = client.post(
        f"/staff/readers/{reader_id}/contact",
        data={"csrf_token": token, "email": "reader2@example.org", "phone": ""},
    )
    assert taken.status_code == 409
    contact = client.post(
        f"/staff/readers/{reader_id}/contact",
        data={"csrf_token": token, "email": "new@example.org", "phone": "13800000000"},
    )
    assert contact.status_code == 200 and "new@example.org" in contact.text

    note = client.post(
        f"/staff/readers/{reader_id}/notes",
        data={"csrf_token": token, "text": "Prefers large print"},
    )
    assert note.status_code == 200 and "Prefers large print" in note.text

    actions = set(session.scalars(select(audit.AuditEntry.action)))
    assert {
        "loan.renew",
        "fee.payment",
        "fee.waiver",
        "reader.block",
        "reader.unblock",
        "reader.renew_card",
        "reader.contact",
        "reader.note",
    } <= actions
    session.rollback()
    client.get("/lang/zh_Hans")
    zh = client.get(f"/staff/readers/{reader_id}")
    assert zh.status_code == 200 and "¥" in zh.text and "读者记录" in zh.text


def test_another_librarys_desk_sees_what_serving_the_reader_needs(
    client: TestClient, session: Session, world: World, app: FastAPI
) -> None:
    reader_id, central_fee, airport_fee, hold_id = _setup(session, world)
    app.dependency_overrides[get_now] = lambda: LATER
    # the airport desk: circulation at the airport only; the reader's home is central
    sign_in(client, "staff", "airport-desk", STAFF_PW)
    page = client.get("/staff/readers/find", params={"card": "CARD000001"})
    assert page.status_code == 200
    text = page.text
    assert "CARD000001" in text and "CN¥5.50" in text  # the card and the total owed
    assert "reader1@example.org" not in text and "1990" not in text  # no contact, no birth
    assert "Airport book" in text and "Central book" not in text  # the loans it lent
    assert "Held book" not in text  # a hold collected elsewhere
    assert f"/fees/{central_fee}/" not in text  # another library's fee line
    assert "Prefers" not in text and "Renew the card" not in text
    token = csrf_of(text)
    assert (
        client.post(f"/staff/readers/{reader_id}/card/renew", data={"csrf_token": token})
    ).status_code == 403
    assert (
        client.post(
            f"/staff/readers/{reader_id}/holds/{hold_id}/cancel",
            data={"csrf_token": token, "confirm": "yes"},
        )
    ).status_code == 404
    renewed = client.post(f"/staff/readers/{reader_id}/renew", data={"csrf_token": token})
    assert "1 loan renewed." in renewed.text
    paid = client.post(
        f"/staff/readers/{reader_id}/pay", data={"csrf_token": token, "amount": "5.50"}
    )
    assert paid.status_code == 200 and "CN¥5.50" in paid.text  # a desk takes any payment
    del airport_fee
    sign_in(client, "staff", "cataloguer", STAFF_PW)
    assert client.get(f"/staff/readers/{reader_id}").status_code == 403
    missing = client.get("/staff/readers/find", params={"card": "NOBODY'<"})
    assert missing.status_code in (403, 404)


def test_a_card_not_on_file_and_odd_input_get_clear_answers(
    client: TestClient, session: Session, world: World
) -> None:
    sign_in(client, "staff", "central-lib", STAFF_PW)
    missing = client.get("/staff/readers/find", params={"card": "NOBODY"})
    assert missing.status_code == 404 and "No reader has this card number." in missing.text
    assert client.get("/staff/readers/999999").status_code == 404
    page = client.get(f"/staff/readers/{world.reader_central.id}")
    token = csrf_of(page.text)
    odd = client.post(
        f"/staff/readers/{world.reader_central.id}/renew",
        data={"csrf_token": token, "loan_id": "1; drop"},
    )
    assert odd.status_code == 422
    long_note = client.post(
        f"/staff/readers/{world.reader_central.id}/notes",
        data={"csrf_token": token, "text": "x" * 1500},
    )
    assert long_note.status_code == 422 and 'id="e-text"' in long_note.text


def test_registering_again_is_warned_without_showing_the_card(
    client: TestClient, session: Session, world: World
) -> None:
    form = {
        "name": "reader 1",  # Reader 1, born 2 January 1990, is on file
        "birth_date": "1990-01-02",
        "category": "adult",
        "home_library_id": str(world.central.id),
        "email": "again@example.org",
        "password": "a-long-password-2026",
        "password2": "a-long-password-2026",
    }
    token = csrf_of(client.get("/register").text)
    warned = client.post("/register", data={"csrf_token": token, **form})
    assert warned.status_code == 409 and 'id="duplicate-warning"' in warned.text
    assert "CARD000001" not in warned.text  # no card shown to whoever typed the name
    registered = client.post(
        "/register", data={"csrf_token": token, **form, "not_me": "on"}, follow_redirects=False
    )
    assert registered.status_code == 303


def test_staff_entry_shows_the_card_already_on_file(client: TestClient, world: World) -> None:
    from tests.api.conftest import token_for

    staff = token_for(client, "staff", "central-lib", STAFF_PW)
    body = {
        "name": "Reader 1",
        "birth_date": "1990-01-02",
        "category": "adult",
        "home_library_id": world.central.id,
    }
    r = client.post("/api/v1/readers", json=body, headers=staff)
    assert r.status_code == 409 and r.json()["error"] == "possible_duplicate"
    assert r.json()["details"]["readers"][0]["card_number"] == "CARD000001"
    ok = client.post("/api/v1/readers", json={**body, "duplicate_ok": True}, headers=staff)
    assert ok.status_code == 201
    page_client = client
    sign_in(page_client, "staff", "central-lib", STAFF_PW)
    record = page_client.get(f"/staff/readers/{ok.json()['id']}")
    assert 'id="record-duplicates"' in record.text and "CARD000001" in record.text
