"""Safety and clarity in the pages (issue 29): a hold's "not needed after" date, steps that
cannot be undone ask first, and one date and money format per language."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import libraries
from biblioverse.shelves import inventory
from tests import factories
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import READER_PW, STAFF_PW, World


def test_a_reader_says_until_when_they_want_a_title_and_confirms_a_cancel(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)
    (copy,) = factories.copies(session, world, "Wanted for a trip", ["NN-1"])
    factories.lend(session, None, world.reader_community, "NN-1", world.central)
    record_id, central = copy.record_id, str(world.central.id)
    session.commit()
    sign_in(client, "reader", "CARD000001", READER_PW)
    page = client.get(f"/catalog/records/{record_id}/hold")
    assert 'type="date"' in page.text and "Not needed after (optional)" in page.text
    form = {"csrf_token": csrf_of(page.text), "pickup_library_id": central}
    url = f"/catalog/records/{record_id}/hold"
    for typed, words in (
        ("31/12/2026", "A date as YYYY-MM-DD, or leave it empty."),
        ("tomorrow", "A date as YYYY-MM-DD, or leave it empty."),
        ("2026-11-17", "A date from today to a year ahead, or leave it empty."),
        ("2099-01-01", "A date from today to a year ahead, or leave it empty."),
    ):
        bad = client.post(url, data={**form, "not_needed_after": typed})
        assert bad.status_code == 422 and words in bad.text, typed
        assert 'aria-invalid="true" aria-describedby="e-not_needed_after"' in bad.text
        assert f'value="{typed}"' in bad.text  # what was typed stays to be corrected
    long = client.post(url, data={**form, "not_needed_after": "9" * 41})
    assert long.status_code == 422 and "not_needed_after" in long.text
    placed = client.post(url, data={**form, "not_needed_after": "2026-12-24"})
    assert placed.status_code == 200 and "not needed after 24 Dec 2026" in placed.text
    assert (
        'data-confirm="Cancel your hold on Wanted for a trip? You lose your place in the queue."'
        in placed.text
    )
    client.get("/lang/zh_Hans")
    zh = client.get("/account")
    assert (
        "2026年12月24日 后不再需要" in zh.text
        and 'data-confirm="取消《Wanted for a trip》' in zh.text
    )


def test_closing_an_inventory_asks_first(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)
    system = world.actor(session, world.admin)
    loc = libraries.add_location(
        session,
        None,
        world.central,
        libraries.LocationInput("1F-A", 1, "A", "Reading room", "阅览室", "A-1", "A-1"),
        at=factories.NOW,
    )
    libraries.add_shelf(
        session,
        None,
        world.central,
        libraries.ShelfInput(loc.id, "A-1", "A", "Z"),
        at=factories.NOW,
    )
    inventory.start(
        session, system, world.central.id, inventory.ScopeInput("library"), at=factories.NOW
    )
    session.commit()
    sign_in(client, "staff", "central-lib", STAFF_PW)
    live = client.get(f"/staff/shelves/live?library={world.central.id}")
    assert live.status_code == 200
    close = live.text.split('/close"')[1].split(">")[0]
    assert 'data-confirm="Close this inventory? It cannot be reopened' in close


def test_a_courier_is_booked_in_its_service_hours_and_its_fee_waits_for_the_pickup(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)
    factories.copies(session, world, "Heavy to carry", ["CR-1"])
    loan = factories.lend(session, None, world.reader_central, "CR-1", world.central)
    loan_id = loan.id
    session.commit()
    sign_in(client, "reader", "CARD000001", READER_PW)
    page = client.get("/account/courier")
    assert "charged when the courier collects the books" in page.text
    form = {"csrf_token": csrf_of(page.text), "loan_id": str(loan_id), "address": "1 Elm Road"}
    night = client.post("/account/courier", data={**form, "pickup_at": "2026-11-20T22:30"})
    assert night.status_code == 422
    assert "The courier comes only while your library is open" in night.text
    assert 'aria-describedby="e-pickup_at"' in night.text
    booked = client.post("/account/courier", data={**form, "pickup_at": "2026-11-20T10:30"})
    assert booked.status_code == 200 and "You owe nothing." in booked.text
