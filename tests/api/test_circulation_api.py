"""The circulation rule matrix through the API: who may set rules where, and which rule
applies to a reader and a copy, with the reason and the due date."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import catalog
from tests import factories
from tests.factories import World

Headers = Callable[[str], dict[str, str]]


def test_rules_are_set_within_scope_and_explained(
    client: TestClient, session: Session, world: World, as_staff: Headers, as_reader: Headers
) -> None:
    record = catalog.save_record(
        session,
        world.actor(session, world.cataloguer),
        None,
        catalog.RecordForm(title="Rules of the road"),
        at=factories.NOW,
    )
    (item,) = catalog.add_items(
        session, None, [catalog.NewItem(record.id, "AIR-1", world.airport.id)], at=factories.NOW
    )
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
