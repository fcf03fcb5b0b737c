"""The circulation rule matrix through the API: who may set rules where, and which rule
applies to a reader and a copy, with the reason and the due date."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.factories import World

Headers = Callable[[str], dict[str, str]]


def test_rules_are_set_within_scope_and_explained(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    (item,) = factories.copies(session, world, "Rules of the road", ["AIR-1"], world.airport)
    ids = {
        "consortium": world.consortium.id,
        "airport": world.airport.id,
        "community": world.community.id,
        "item": item.id,
        "reader": world.reader_central.id,
        "other_reader": world.reader_community.id,
    }
    session.commit()
    admin, airport = as_staff("admin"), as_staff("airport-lib")

    default = {"org_unit_id": ids["consortium"], "name": "Default", "policy": {"loan_days": 28}}
    assert client.post("/api/v1/circulation/rules", json=default, headers=admin).status_code == 201
    again = client.post("/api/v1/circulation/rules", json=default, headers=admin)
    assert again.status_code == 409 and again.json()["details"]["field"] == "cell"
    own = {"org_unit_id": ids["airport"], "name": "Travellers", "policy": {"loan_days": 14}}
    r = client.post("/api/v1/circulation/rules", json=own, headers=airport)
    assert r.status_code == 201, r.text
    elsewhere = {**own, "org_unit_id": ids["community"]}
    assert (
        client.post("/api/v1/circulation/rules", json=elsewhere, headers=airport).status_code == 403
    )
    bad = {**own, "item_type": "book", "policy": {"loan_days": 0, "fine_cap": "-1"}}
    r = client.post("/api/v1/circulation/rules", json=bad, headers=airport)
    assert r.status_code == 422 and {"loan_days", "fine_cap"} <= {
        d["field"].split(".")[-1] for d in r.json()["details"]
    }
    listed = client.get("/api/v1/circulation/rules", headers=as_staff("airport-desk")).json()
    assert [x["name"] for x in listed] == ["Default", "Travellers"]

    # The copy belongs to the airport: the airport's rule wins over the consortium's.
    query = {"reader_id": ids["reader"], "item_id": ids["item"]}
    why = client.get("/api/v1/circulation/explain", params=query, headers=as_staff("airport-desk"))
    assert why.status_code == 200, why.text
    body = why.json()
    assert body["rule"]["name"] == "Travellers" and len(body["considered"]) == 2
    assert body["reasons"][0].startswith(f"rule {body['rule']['id']} (Travellers)")
    # 14 days from Wednesday 18 November, due at closing time (21:00 in Beijing).
    assert body["due_if_borrowed_now"] == "2026-12-02T21:00:00+08:00"
    mine = client.get("/api/v1/circulation/explain", params=query, headers=as_reader("CARD000001"))
    assert mine.status_code == 200
    theirs = {"reader_id": ids["other_reader"], "item_id": ids["item"]}
    assert (
        client.get(
            "/api/v1/circulation/explain", params=theirs, headers=as_reader("CARD000001")
        ).status_code
        == 403
    )
    assert (
        client.get(
            "/api/v1/circulation/explain", params=query, headers=as_staff("cataloguer")
        ).status_code
        == 403
    )


def test_lending_by_desk_and_by_phone_with_reasons(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    factories.copies(session, world, "Borrowed twice", ["C-0", "C-1"])
    central, airport, consortium = world.central.id, world.airport.id, world.consortium.id
    sign_code = world.central.here_code
    reader_id, stranger_id = world.reader_central.id, world.reader_community.id
    session.commit()
    admin = as_staff("admin")
    rule = {"org_unit_id": consortium, "policy": {"loan_days": 21}}
    assert client.post("/api/v1/circulation/rules", json=rule, headers=admin).status_code == 201
    desk = as_staff("central-lib")
    lend = {"reader_id": reader_id, "barcode": "C-0", "library_id": central}
    r = client.post("/api/v1/circulation/checkout", json=lend, headers=desk)
    assert r.status_code == 201, r.text
    # 21 days, due at 21:00 in Beijing on Wednesday 9 December: 13:00 UTC.
    assert r.json()["channel"] == "api" and r.json()["due_at"] == "2026-12-09T13:00:00Z"
    again = client.post("/api/v1/circulation/checkout", json=lend, headers=desk)
    assert again.status_code == 409 and again.json()["error"] == "item_on_loan"
    # A reader borrows the other copy by phone, on their own card only, in the library
    # whose "you are here" sign the phone scanned.
    phone = as_reader("CARD000001")
    by_phone = {"barcode": "C-1", "library_id": central}
    nowhere = client.post("/api/v1/circulation/checkout", json=by_phone, headers=phone)
    assert nowhere.status_code == 409 and nowhere.json()["error"] == "not_in_library"
    wrong = {"library_id": central, "code": "guessed-code"}
    refused = client.post("/api/v1/circulation/presence", json=wrong, headers=phone)
    assert refused.status_code == 409 and refused.json()["error"] == "not_in_library"
    sign = {"library_id": central, "code": sign_code}
    scanned = client.post("/api/v1/circulation/presence", json=sign, headers=phone)
    assert scanned.status_code == 200 and scanned.json()["library_id"] == central
    assert scanned.json()["until"] == "2026-11-18T09:00:00Z"  # three hours after NOW
    ticket = scanned.json()["ticket"]
    elsewhere = {**by_phone, "library_id": airport, "presence": ticket}
    there = client.post("/api/v1/circulation/checkout", json=elsewhere, headers=phone)
    assert there.status_code == 409 and there.json()["error"] == "not_in_library"
    mine = client.post(
        "/api/v1/circulation/checkout", json={**by_phone, "presence": ticket}, headers=phone
    )
    assert mine.status_code == 201 and mine.json()["channel"] == "mobile"
    stranger = {"reader_id": stranger_id, "barcode": "C-1", "library_id": central}
    assert (
        client.post("/api/v1/circulation/checkout", json=stranger, headers=phone).status_code == 403
    )
    renewed = client.post(f"/api/v1/circulation/loans/{mine.json()['id']}/renew", headers=phone)
    assert renewed.status_code == 200 and renewed.json()["renewals"] == 1
    # Returned at the airport; the search shows the copy in again.
    back = client.post(
        "/api/v1/circulation/checkin",
        json={"barcode": "C-0", "library_id": airport},
        headers=as_staff("airport-lib"),
    )
    assert back.status_code == 200 and back.json()["loan"]["returned_at"]
    # The airport does not own it: the desk is told to send it home.
    assert back.json()["action"] == "transit" and back.json()["library_id"] == central
    unknown = client.post(
        "/api/v1/circulation/checkin",
        json={"barcode": "NOPE", "library_id": airport},
        headers=as_staff("airport-lib"),
    )
    assert unknown.status_code == 404
    assert (
        client.post(
            "/api/v1/circulation/checkout", json=lend, headers=as_staff("cataloguer")
        ).status_code
        == 403
    )


def test_a_loan_reaches_search_availability_through_the_relay_after_the_answer(
    client: TestClient, session: Session, world: World, as_staff: Headers, app: FastAPI
) -> None:
    """Requests leave availability refreshes to the app's relay: the answer does not wait
    for the search index, and the index catches up a moment later."""
    factories.rule(session, world)
    factories.copies(session, world, "Quickly relayed", ["RL-1"], world.central)
    central = world.central.id
    session.commit()

    def available() -> int:
        hits = client.get("/api/v1/catalog/search", params={"q": "quickly relayed"}).json()
        return int(hits["hits"][0]["holdings"][0]["available"])

    assert app.state.relay.drain(timeout=10)  # the copy made in the test's own session
    assert available() == 1
    desk = as_staff("central-lib")
    lent = client.post(
        "/api/v1/circulation/checkout",
        json={"reader_id": world.reader_central.id, "barcode": "RL-1", "library_id": central},
        headers=desk,
    )
    assert lent.status_code == 201, lent.text
    assert app.state.relay.drain(timeout=10)
    assert available() == 0
    back = client.post(
        "/api/v1/circulation/checkin", json={"barcode": "RL-1", "library_id": central}, headers=desk
    )
    assert back.status_code == 200
    assert app.state.relay.drain(timeout=10)
    assert available() == 1


def test_with_no_rule_in_the_matrix_circulation_answers_409_not_500(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    (copy,) = factories.copies(session, world, "Before any rule", ["N-0"])
    ids = {"record": copy.record_id, "item": copy.id, "reader": world.reader_central.id}
    central = world.central.id
    session.commit()
    desk, phone = as_staff("central-lib"), as_reader("CARD000001")
    answers = [
        client.get(
            "/api/v1/circulation/explain",
            params={"reader_id": ids["reader"], "item_id": ids["item"]},
            headers=desk,
        ),
        client.post(
            "/api/v1/circulation/checkout",
            json={"reader_id": ids["reader"], "barcode": "N-0", "library_id": central},
            headers=desk,
        ),
        client.post(
            "/api/v1/circulation/holds",
            json={"record_id": ids["record"], "pickup_library_id": central},
            headers=phone,
        ),
    ]
    for r in answers:
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "no_circulation_rule"
