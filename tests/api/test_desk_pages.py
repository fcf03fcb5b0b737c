"""The circulation desk page through HTTP: reasons in the reader's language, and scope."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import audit, circulation
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
    assert lent.status_code == 200
    assert "Lent: At the desk (D-1) to Reader 1, card CARD000001." in lent.text
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
    assert back.status_code == 200 and "已归还：At the desk（D-1），读者 Reader 1" in back.text
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
    loan = factories.lend(session, None, world.reader_central, "R-1", world.central)
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
    assert (
        "Travellers" in page.text and "for any item type and for any reader category" in page.text
    )
    assert "It is the most specific of the 2 rows that match." in page.text
    assert "/1/" not in page.text.split('id="why"')[1].split("</div>")[0]  # words, not paths
    assert "due 2 Dec 2026" in page.text  # 14 days from 18 November
    missing = client.get("/staff/rules", params={"card_number": "CARD000001", "barcode": "NO"})
    assert "No copy has this barcode." in missing.text


def test_librarians_edit_the_rule_matrix_in_the_console_within_their_libraries(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)  # the consortium's default, loan 28 days
    factories.copies(session, world, "Edited rule", ["E-1"], world.airport)
    airport, central = str(world.airport.id), str(world.central.id)
    session.commit()

    def rows() -> list[circulation.Rule]:
        found = circulation.matrix(session)
        session.rollback()  # SQLite: let the app's requests write
        return found

    default_id = rows()[0].id
    # The circulation desk sees the matrix but may not change it.
    sign_in(client, "staff", "airport-desk", STAFF_PW)
    assert 'href="/staff/rules/new"' not in client.get("/staff/rules").text
    assert client.get("/staff/rules/new").status_code == 403

    sign_in(client, "staff", "airport-lib", STAFF_PW)
    matrix = client.get("/staff/rules")
    assert 'href="/staff/rules/new"' in matrix.text
    assert f'href="/staff/rules/{default_id}"' not in matrix.text  # the consortium's is not theirs
    assert client.get(f"/staff/rules/{default_id}").status_code == 403
    form_page = client.get("/staff/rules/new")
    assert form_page.status_code == 200
    options = form_page.text.split('id="f-org_unit_id"')[1].split("</select>")[0]
    assert "Airport Library" in options and "Central Library" not in options
    token = csrf_of(form_page.text)
    good = {
        "csrf_token": token,
        "org_unit_id": airport,
        "item_type": "",
        "reader_category": "",
        "name": "Travellers",
        "loan_days": "7",
        "loan_hours": "",
        "renewals": "1",
        "max_loans": "5",
        "max_holds": "3",
        "hold_shelf_days": "5",
        "hold_priority": "0",
        "hold_pickup": "any",
        "fine_per_day": "0.20",
        "fine_cap": "5.00",
        "lost_after_days": "45",
        "lost_fee": "30.00",
        "block_threshold": "10.00",
        "courier_fee": "4.00",
        "self_service": "on",
    }
    # Garbage and values out of range are named field by field; nothing is saved.
    bad = client.post(
        "/staff/rules/new",
        data={**good, "loan_days": "seven", "fine_cap": "1.234", "renewals": "-1"},
    )
    assert bad.status_code == 422
    assert 'id="e-loan_days"' in bad.text and "A whole number." in bad.text
    assert 'id="e-fine_cap"' in bad.text and 'value="seven"' in bad.text
    assert len(rows()) == 1
    out_of_range = client.post("/staff/rules/new", data={**good, "renewals": "-1"})
    assert out_of_range.status_code == 422 and "A number from 0 to 10,000." in out_of_range.text
    elsewhere = client.post("/staff/rules/new", data={**good, "org_unit_id": central})
    assert elsewhere.status_code == 403 and "You may not set loan rules" in elsewhere.text
    saved = client.post("/staff/rules/new", data=good)
    assert saved.status_code == 200 and "The rule is saved." in saved.text
    (row,) = [r for r in rows() if r.name == "Travellers"]
    assert row.policy.loan_days == 7 and row.policy.courier_fee == Decimal("4.00")
    assert row.policy.self_service and not row.policy.mobile_checkout
    clash = client.post("/staff/rules/new", data=good)
    assert clash.status_code == 422 and "already has a rule" in clash.text

    # Change it: the explain view uses the new row at once; the change is audited.
    edit = client.get(f"/staff/rules/{row.id}")
    assert 'value="Travellers"' in edit.text and 'value="7"' in edit.text
    changed = client.post(f"/staff/rules/{row.id}", data={**good, "loan_days": "10"})
    assert changed.status_code == 200
    why = client.get("/staff/rules", params={"card_number": "CARD000001", "barcode": "E-1"})
    assert "Travellers" in why.text and "due 28 Nov 2026" in why.text
    saves = session.scalars(
        select(audit.AuditEntry.entity_id).where(audit.AuditEntry.action == "circulation.rule.save")
    ).all()
    session.rollback()
    assert saves == [str(row.id)] * 2
    client.get("/lang/zh_Hans")
    assert "借期（天）" in client.get(f"/staff/rules/{row.id}").text
