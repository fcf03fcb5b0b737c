"""Cataloguing in the staff console through HTTP: forms, errors by field, scope."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import STAFF_PW, World


def test_a_cataloguer_creates_a_record_and_adds_a_copy(
    client: TestClient, session: Session, world: World
) -> None:
    airport_id = world.airport.id
    session.rollback()
    sign_in(client, "staff", "airport-lib", STAFF_PW)
    form = client.get("/staff/catalog/records/new")
    assert form.status_code == 200 and 'id="f-title"' in form.text
    data = {
        "csrf_token": csrf_of(form.text),
        "title": "",
        "year": "twenty",
        "language": "Chinese",
        "authors": "Lu, Xun\n\n",
    }
    bad = client.post("/staff/catalog/records/new", data=data)
    assert bad.status_code == 422
    assert 'aria-invalid="true" aria-describedby="e-title"' in bad.text
    assert "A year between 1000 and 2999." in bad.text
    assert "Lu, Xun" in bad.text  # what was typed is shown again
    data |= {"title": "Call to arms", "year": "1923", "language": "chi", "clc": "I210.6"}
    r = client.post("/staff/catalog/records/new", data=data, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "Saved." in page.text and "Call to arms" in page.text
    record_id = int(r.headers["location"].split("/")[-1].split("?")[0])
    copy = {
        "csrf_token": csrf_of(page.text),
        "barcode": "AIR-0001",
        "library_id": str(airport_id),
        "item_type": "book",
        "call_number": "I210.6/L9",
        "price": "28.00",
    }
    added = client.post(
        f"/staff/catalog/records/{record_id}/items", data=copy, follow_redirects=True
    )
    assert "Copy added." in added.text and "AIR-0001" in added.text
    again = client.post(f"/staff/catalog/records/{record_id}/items", data=copy)
    assert again.status_code == 422 and "This value is already on another copy." in again.text
    item = session.scalars(select(catalog.Item).where(catalog.Item.barcode == "AIR-0001")).one()
    assert (item.org_unit_id, item.call_number, str(item.price)) == (
        airport_id,
        "I210.6/L9",
        "28.00",
    )
    item_id = item.id
    session.rollback()
    edit = client.get(f"/staff/catalog/items/{item_id}")
    changed = client.post(
        f"/staff/catalog/items/{item_id}",
        data={
            "csrf_token": csrf_of(edit.text),
            "status": "missing",
            "item_type": "book",
            "location_id": "",
            "call_number": "I210.6/L9",
            "price": "30",
            "rfid_tag": "",
            "circulates": "yes",
        },
        follow_redirects=True,
    )
    assert "Saved." in changed.text
    edited = session.get(catalog.Item, item_id)
    assert edited is not None and (edited.status, str(edited.price)) == ("missing", "30.00")


def test_copies_of_another_library_are_out_of_reach(
    client: TestClient, session: Session, world: World
) -> None:
    cataloguer = world.actor(session, world.cataloguer)
    record = catalog.save_record(
        session, cataloguer, None, catalog.RecordForm(title="Held at the airport"), at=world_now()
    )
    (item,) = catalog.add_items(
        session, None, [catalog.NewItem(record.id, "AIR-0002", world.airport.id)], at=world_now()
    )
    session.commit()
    item_id = item.id
    sign_in(client, "staff", "community-lib", STAFF_PW)
    edit = client.get(f"/staff/catalog/items/{item_id}")
    r = client.post(
        f"/staff/catalog/items/{item_id}",
        data={"csrf_token": csrf_of(edit.text), "status": "lost"},
    )
    assert r.status_code == 403
    sign_in(client, "staff", "airport-desk", STAFF_PW)
    assert client.get("/staff/catalog").status_code == 403


def world_now() -> dt.datetime:
    from tests import factories

    return factories.NOW
