"""Holds, transits, fees and idempotency keys through the API, as a reader's phone and a
desk use them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biblioverse import circulation
from biblioverse.circulation import fees
from tests import factories
from tests.api.conftest import in_library
from tests.factories import World

Headers = Callable[[str], dict[str, str]]
API = "/api/v1/circulation"


def test_a_reader_reserves_a_copy_held_elsewhere_and_the_desks_move_it(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    factories.rule(session, world)
    (copy,) = factories.copies(session, world, "Far away", ["H-1"], world.airport)
    ids = {
        "record": copy.record_id,
        "community": world.community.id,
        "airport": world.airport.id,
        "other": world.reader_community.id,
    }
    sign = world.community.here_code
    session.commit()
    me, other = as_reader("CARD000001"), as_reader("CARD000002")
    ask = {"record_id": ids["record"], "pickup_library_id": ids["community"]}
    placed = client.post(f"{API}/holds", json=ask, headers=me)
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["status"] == "waiting" and hold["position"] == 1
    again = client.post(f"{API}/holds", json=ask, headers=me)
    assert again.status_code == 409 and again.json()["error"] == "already_requested"
    for_someone_else = {**ask, "reader_id": ids["other"]}
    assert client.post(f"{API}/holds", json=for_someone_else, headers=me).status_code == 403
    theirs = client.post(f"{API}/holds", json=ask, headers=other)
    assert theirs.status_code == 201 and theirs.json()["position"] == 2
    # Each reader sees their own holds only; another's hold does not exist for them.
    assert [h["id"] for h in client.get(f"{API}/holds", headers=me).json()] == [hold["id"]]
    assert client.post(f"{API}/holds/{hold['id']}/cancel", headers=other).status_code == 404
    paused = client.post(
        f"{API}/holds/{theirs.json()['id']}/suspend", json={"until": "2027-01-10"}, headers=other
    )
    assert paused.json()["status"] == "suspended" and paused.json()["suspended_until"]
    bad_date = client.post(
        f"{API}/holds/{theirs.json()['id']}/suspend", json={"until": "10/01/2027"}, headers=other
    )
    assert bad_date.status_code == 422

    # The airport's pull list shows the copy; scanning it sends it to the community branch.
    airport = as_staff("airport-lib")
    pull = client.get(f"{API}/pull-list", params={"library_id": ids["airport"]}, headers=airport)
    assert [(p["barcode"], p["hold_id"]) for p in pull.json()] == [("H-1", hold["id"])]
    community = as_staff("community-lib")
    assert (
        client.get(
            f"{API}/pull-list", params={"library_id": ids["airport"]}, headers=community
        ).status_code
        == 403
    )
    scanned = client.post(
        f"{API}/checkin", json={"barcode": "H-1", "library_id": ids["airport"]}, headers=airport
    )
    assert scanned.status_code == 200, scanned.text
    out = scanned.json()
    assert out["loan"] is None and out["action"] == "transit"
    assert out["library_id"] == ids["community"] and out["hold_id"] == hold["id"]
    send = client.get(f"{API}/transits", params={"library_id": ids["airport"]}, headers=airport)
    (transit,) = send.json()
    assert transit["barcode"] == "H-1" and transit["status"] == "created"
    assert client.post(f"{API}/transits/{transit['id']}/ship", headers=community).status_code == 403
    shipped = client.post(f"{API}/transits/{transit['id']}/ship", headers=airport)
    assert shipped.json()["status"] == "shipped"
    twice = client.post(f"{API}/transits/{transit['id']}/ship", headers=airport)
    assert twice.status_code == 409 and twice.json()["error"] == "illegal_transition"
    coming = client.get(
        f"{API}/transits",
        params={"library_id": ids["community"], "direction": "receive"},
        headers=community,
    )
    assert [t["id"] for t in coming.json()] == [transit["id"]]
    arrived = client.post(
        f"{API}/checkin", json={"barcode": "H-1", "library_id": ids["community"]}, headers=community
    )
    assert arrived.json()["action"] == "hold_shelf"
    mine = client.get(f"{API}/holds", headers=me).json()[0]
    assert mine["status"] == "ready" and mine["expires_at"]
    # Only the reader it waits for may borrow it, by phone at the pickup library.
    lend = {"barcode": "H-1", "library_id": ids["community"]}
    theirs = {**lend, "presence": in_library(client, other, ids["community"], sign)}
    refused = client.post(f"{API}/checkout", json=theirs, headers=other)
    assert refused.status_code == 409 and refused.json()["error"] == "item_held"
    mine = {**lend, "presence": in_library(client, me, ids["community"], sign)}
    assert client.post(f"{API}/checkout", json=mine, headers=me).status_code == 201
    assert client.get(f"{API}/holds", headers=me).json() == []


def test_a_retried_request_with_an_idempotency_key_lends_once(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    factories.rule(session, world)
    factories.copies(session, world, "Retry", ["K-1", "K-2"])
    central, neighbour = world.central.id, world.reader_community.id
    sign = world.central.here_code
    session.commit()
    phone = as_reader("CARD000001")
    ticket = in_library(client, phone, central, sign)
    body = {"barcode": "K-1", "library_id": central, "presence": ticket}
    first = client.post(f"{API}/checkout", json=body, headers={**phone, "Idempotency-Key": "a1"})
    retry = client.post(f"{API}/checkout", json=body, headers={**phone, "Idempotency-Key": "a1"})
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(circulation.Loan)) == 1
    session.rollback()
    other = {"barcode": "K-2", "library_id": central, "presence": ticket}
    reused = client.post(f"{API}/checkout", json=other, headers={**phone, "Idempotency-Key": "a1"})
    assert reused.status_code == 409 and reused.json()["error"] == "idempotency_key_reused"
    too_long = client.post(
        f"{API}/checkout", json=other, headers={**phone, "Idempotency-Key": "x" * 81}
    )
    assert too_long.status_code == 422
    # A refusal is not stored: the same key may be retried once the cause is gone.
    desk = as_staff("central-lib")
    taken = client.post(
        f"{API}/checkout",
        json={**other, "reader_id": neighbour},
        headers={**desk, "Idempotency-Key": "b1"},
    )
    assert taken.status_code == 201
    session.rollback()
    mine = client.post(f"{API}/checkout", json=other, headers={**phone, "Idempotency-Key": "c1"})
    assert mine.status_code == 409
    client.post(f"{API}/checkin", json={"barcode": "K-2", "library_id": central}, headers=desk)
    mine = client.post(f"{API}/checkout", json=other, headers={**phone, "Idempotency-Key": "c1"})
    assert mine.status_code == 201 and "Idempotent-Replayed" not in mine.headers


def test_fees_are_private_paid_at_a_desk_and_bad_amounts_change_nothing(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    factories.rule(
        session, world, loan_days=7, fine_per_day=Decimal("1.00"), block_threshold=Decimal("2")
    )
    factories.copies(session, world, "Late", ["M-1", "M-2"])
    reader_id = world.reader_central.id
    loan = circulation.checkout(
        session,
        None,
        reader_id=reader_id,
        barcode="M-1",
        at_unit_id=world.central.id,
        at=factories.NOW - dt.timedelta(days=12),
    )
    fees.accrue(session, factories.NOW)
    loan_id, central = loan.id, world.central.id
    session.commit()
    me = as_reader("CARD000001")
    mine = client.get(f"{API}/fees", headers=me).json()
    assert mine["balance"] == "5.00" and [f["kind"] for f in mine["fees"]] == ["overdue"]
    assert client.get(f"{API}/fees", params={"reader_id": 99}, headers=me).status_code == 403
    desk = as_staff("central-lib")
    blocked = client.post(
        f"{API}/checkout",
        json={"reader_id": reader_id, "barcode": "M-2", "library_id": central},
        headers=desk,
    )
    assert blocked.status_code == 409 and blocked.json()["error"] == "fee_limit"
    renew = client.post(f"{API}/loans/{loan_id}/renew", headers=me)
    assert renew.status_code == 409 and renew.json()["error"] == "fee_limit"
    for amount in ("-1", "0", "1.005", "6.00", "abc"):
        bad = client.post(
            f"{API}/payments", json={"reader_id": reader_id, "amount": amount}, headers=desk
        )
        assert bad.status_code == 422, (amount, bad.text)
        assert bad.json()["details"][0]["field"].endswith("amount")
    assert client.get(f"{API}/fees", headers=me).json()["balance"] == "5.00"
    assert (
        client.post(
            f"{API}/payments", json={"reader_id": reader_id, "amount": "1.00"}, headers=me
        ).status_code
        == 403
    )
    paid = client.post(
        f"{API}/payments", json={"reader_id": reader_id, "amount": "3.00"}, headers=desk
    )
    assert paid.status_code == 201 and [t["amount"] for t in paid.json()] == ["3.00"]
    fee_id = paid.json()[0]["fee_id"]
    no_reason = client.post(f"{API}/fees/{fee_id}/waive", json={}, headers=desk)
    assert no_reason.status_code == 422
    waived = client.post(f"{API}/fees/{fee_id}/waive", json={"note": "first time"}, headers=desk)
    assert waived.status_code == 201 and waived.json()["amount"] == "2.00"
    assert client.get(f"{API}/fees", headers=me).json() == {
        "reader_id": reader_id,
        "balance": "0.00",
        "fees": [],
    }
    # A librarian lends past a refusal with a reason; the desk role may not.
    override = {"reader_id": reader_id, "barcode": "M-2", "library_id": central}
    assert client.post(f"{API}/checkout", json=override, headers=desk).status_code == 201


def test_a_reader_books_a_courier_and_the_home_library_collects(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    factories.rule(session, world, courier_fee=Decimal("6.50"))
    factories.copies(session, world, "Heavy atlas", ["K-1"], world.central)
    desk = world.actor(session, world.admin)
    loan = factories.lend(session, desk, world.reader_community, "K-1", world.central)  # fmt: skip
    loan_id, community = loan.id, world.community.id
    session.commit()
    me, other = as_reader("CARD000002"), as_reader("CARD000001")
    pickup = "2026-11-20T10:00:00+08:00"
    ask = {"loan_ids": [loan_id], "address": "8 Harbour Street", "pickup_at": pickup}
    # Bad input names the field; nothing is booked.
    for bad, field in (
        ({**ask, "pickup_at": "20/11/2026 10:00"}, "pickup_at"),
        ({**ask, "loan_ids": []}, "loan_ids"),
        ({**ask, "address": "x"}, "address"),
        ({**ask, "pickup_at": "2026-11-20T10:00:00"}, "pickup_at"),  # no offset
    ):
        refused = client.post(f"{API}/courier-returns", json=bad, headers=me)
        assert refused.status_code == 422, (bad, refused.text)
        assert field in refused.text
    assert client.post(f"{API}/courier-returns", json=ask, headers=other).status_code == 404
    key = {**me, "Idempotency-Key": "courier-1"}
    booked = client.post(f"{API}/courier-returns", json=ask, headers=key)
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert body["status"] == "requested" and body["fee"] == "6.50"
    assert body["fee_charged"] is False  # charged when the courier collects
    assert body["library_id"] == community and body["items"] == [
        {"barcode": "K-1", "title": "Heavy atlas"}
    ]
    assert client.post(f"{API}/courier-returns", json=ask, headers=key).json() == body
    twice = client.post(f"{API}/courier-returns", json=ask, headers=me)
    assert twice.status_code == 409 and twice.json()["error"] == "courier_already_requested"
    assert client.get(f"{API}/fees", headers=me).json()["balance"] == "0.00"
    # Only the reader sees it; another reader cannot call it off.
    assert [c["id"] for c in client.get(f"{API}/courier-returns", headers=me).json()] == [
        body["id"]
    ]
    assert client.get(f"{API}/courier-returns", headers=other).json() == []
    assert (
        client.post(f"{API}/courier-returns/{body['id']}/cancel", headers=other).status_code == 404
    )
    # The community branch sees the pickup; the airport may not collect it.
    staff = as_staff("community-lib")
    waiting = client.get(f"{API}/courier-returns", params={"library_id": community}, headers=staff)
    assert [c["address"] for c in waiting.json()] == ["8 Harbour Street"]
    assert client.post(f"{API}/courier-returns/{body['id']}/collect", headers=me).status_code == 403
    airport = as_staff("airport-lib")
    assert (
        client.post(f"{API}/courier-returns/{body['id']}/collect", headers=airport).status_code
        == 403
    )
    collected = client.post(f"{API}/courier-returns/{body['id']}/collect", headers=staff)
    assert collected.status_code == 200 and collected.json()["status"] == "collected"
    assert collected.json()["fee_charged"] is True
    assert client.get(f"{API}/fees", headers=me).json()["balance"] == "6.50"
    coming = client.get(
        f"{API}/transits", params={"library_id": community, "direction": "receive"}, headers=staff
    ).json()
    assert [(t["barcode"], t["from_library_id"], t["reason"], t["status"]) for t in coming] == [
        ("K-1", None, "courier", "shipped")
    ]
    late = client.post(f"{API}/courier-returns/{body['id']}/cancel", headers=me)
    assert late.status_code == 409 and late.json()["error"] == "illegal_transition"


def test_who_may_ask_is_checked_before_the_idempotency_key(
    client: TestClient, session: Session, world: World, as_reader: Headers
) -> None:
    factories.rule(session, world)
    factories.copies(session, world, "Keys", ["Q-1"])
    central, sign = world.central.id, world.central.here_code
    session.commit()
    phone = as_reader("CARD000001")
    ticket = in_library(client, phone, central, sign)
    lent = client.post(
        f"{API}/checkout",
        json={"barcode": "Q-1", "library_id": central, "presence": ticket},
        headers={**phone, "Idempotency-Key": "k1"},
    )
    assert lent.status_code == 201, lent.text
    # The same key on requests the reader may not make: refused for who they are, not
    # answered as a reused key.
    back = client.post(
        f"{API}/checkin",
        json={"barcode": "Q-1", "library_id": central},
        headers={**phone, "Idempotency-Key": "k1"},
    )
    assert back.status_code == 403 and back.json()["error"] == "forbidden"
    theirs = client.post(
        f"{API}/checkout",
        json={"barcode": "Q-1", "library_id": central, "reader_id": world.reader_community.id},
        headers={**phone, "Idempotency-Key": "k1"},
    )
    assert theirs.status_code == 403
    # Without credentials, a bad key is not looked at: sign in first.
    anonymous = client.post(
        f"{API}/checkin", json={"barcode": "Q-1"}, headers={"Idempotency-Key": "x" * 81}
    )
    assert anonymous.status_code == 401
