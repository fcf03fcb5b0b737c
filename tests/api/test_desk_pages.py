"""The circulation desk page through HTTP: reasons in the reader's language, and scope."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import circulation
from tests import factories
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import READER_PW, STAFF_PW, World


def test_the_desk_lends_says_why_not_in_chinese_and_stays_in_scope(
    client: TestClient, session: Session, world: World
) -> None:
    circulation.save_rule(
        session, None, circulation.RuleInput(world.consortium.id), at=factories.NOW
    )
    factories.copies(session, world, "At the desk", ["D-1"])
    central = str(world.central.id)
    session.commit()
    sign_in(client, "staff", "central-lib", STAFF_PW)
    page = client.get("/staff/desk")
    assert page.status_code == 200 and "Central Library" in page.text
    form = {"csrf_token": csrf_of(page.text), "library_id": central}
    lent = client.post(
        "/staff/desk/checkout", data={**form, "card_number": "CARD000001", "barcode": "D-1"}
    )
    assert lent.status_code == 200 and "D-1 lent to Reader 1, due" in lent.text
    client.get("/lang/zh_Hans")
    again = client.post(
        "/staff/desk/checkout", data={**form, "card_number": "CARD000001", "barcode": "D-1"}
    )
    assert again.status_code == 409 and "该复本已借出。" in again.text
    nobody = client.post(
        "/staff/desk/checkout", data={**form, "card_number": "NOBODY", "barcode": "D-1"}
    )
    assert nobody.status_code == 409 and "没有这个读者证号。" in nobody.text
    back = client.post("/staff/desk/checkin", data={**form, "barcode": "D-1"})
    assert back.status_code == 200 and "D-1 已归还。" in back.text
    sign_in(client, "staff", "cataloguer", STAFF_PW)
    assert client.get("/staff/desk").status_code == 403


def test_a_reader_sees_their_loans_and_renews_them_within_the_rule(
    client: TestClient, session: Session, world: World
) -> None:
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(world.consortium.id, policy=circulation.Policy(renewals=1)),
        at=factories.NOW,
    )
    factories.copies(session, world, "Mine to renew", ["R-1"])
    loan = circulation.checkout(
        session,
        None,
        reader_id=world.reader_central.id,
        barcode="R-1",
        at_unit_id=world.central.id,
        at=factories.NOW,
    )
    loan_id = loan.id
    session.commit()
    sign_in(client, "reader", "CARD000001", READER_PW)
    page = client.get("/account")
    assert "Mine to renew" in page.text and "R-1" in page.text
    token = csrf_of(page.text)
    first = client.post(f"/account/loans/{loan_id}/renew", data={"csrf_token": token})
    assert first.status_code == 200 and "Renewed." in first.text
    second = client.post(f"/account/loans/{loan_id}/renew", data={"csrf_token": token})
    assert "This loan cannot be renewed again." in second.text
    # Another reader cannot renew it.
    sign_in(client, "reader", "CARD000002", READER_PW)
    other = client.get("/account")
    assert "Mine to renew" not in other.text
    theirs = client.post(
        f"/account/loans/{loan_id}/renew", data={"csrf_token": csrf_of(other.text)}
    )
    assert "This loan is not open on your card." in theirs.text


def test_the_rules_page_says_which_rule_applies_and_why(
    client: TestClient, session: Session, world: World
) -> None:
    circulation.save_rule(
        session, None, circulation.RuleInput(world.consortium.id, name="Default"), at=factories.NOW
    )
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(
            world.airport.id, name="Travellers", policy=circulation.Policy(loan_days=14)
        ),
        at=factories.NOW,
    )
    factories.copies(session, world, "Why this rule", ["W-1"], world.airport)
    session.commit()
    sign_in(client, "staff", "airport-desk", STAFF_PW)
    page = client.get("/staff/rules", params={"card_number": "CARD000001", "barcode": "W-1"})
    assert page.status_code == 200
    assert "Travellers" in page.text and "more specific than rule" in page.text
    assert "due 2 Dec 2026" in page.text  # 14 days from 18 November
    missing = client.get("/staff/rules", params={"card_number": "CARD000001", "barcode": "NO"})
    assert "No copy has this barcode." in missing.text
