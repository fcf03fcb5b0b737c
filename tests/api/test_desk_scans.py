"""The desk after each scan (issue 29): the result names the title, the reader, the due date
or the fine and what to do with the copy; the barcode field comes back empty and focused; a
copy already on loan says to whom, as far as this desk may know (ADR 0025); a second scan of
a return says it is already back."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biblioverse import circulation
from tests import factories
from tests.api.test_pages import csrf_of, sign_in
from tests.factories import STAFF_PW, World

HTMX = {"HX-Request": "true"}


def _desk(client: TestClient, login: str, library: int) -> dict[str, str]:
    sign_in(client, "staff", login, STAFF_PW)
    page = client.get("/staff/desk", params={"library": library})
    assert page.status_code == 200
    return {"csrf_token": csrf_of(page.text), "library_id": str(library)}


def _focused(html: str) -> str:
    """The id of the field the page puts the focus in, and it must be empty."""
    found = re.findall(r'<input id="([\w-]+)"[^>]*?value="([^"]*)"[^>]*data-focus-after-swap', html)
    assert len(found) == 1, found
    return found[0][0] if found[0][0] == "lend-card" or found[0][1] == "" else "not empty"


def test_lending_and_taking_back_say_title_reader_due_fine_and_keep_the_scanning_field(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)  # 0.10 a day
    factories.copies(session, world, "Dream of the Red Chamber", ["S-1", "S-2"])
    factories.lend(
        session,
        None,
        world.reader_central,
        "S-2",
        world.central,
        at=factories.NOW - dt.timedelta(days=40),
    )
    session.commit()
    form = _desk(client, "central-lib", world.central.id)
    lent = client.post(
        "/staff/desk/checkout",
        data={**form, "card_number": "CARD000001", "barcode": " S-1 "},
        headers=HTMX,
    )
    assert lent.status_code == 200 and "<html" not in lent.text  # only the working area
    assert "Lent: Dream of the Red Chamber (S-1) to Reader 1, card CARD000001." in lent.text
    assert "Due 16 Dec 2026, 21:00." in lent.text  # 28 days, to closing time; no seconds
    assert _focused(lent.text) == "lend-barcode"
    assert 'value="CARD000001"' in lent.text  # the card stays for the next copy

    back = client.post("/staff/desk/checkin", data={**form, "barcode": "S-1"}, headers=HTMX)
    assert "Back: Dream of the Red Chamber (S-1), from Reader 1, card CARD000001." in back.text
    assert "Back in time: no fine." in back.text and "Put it back on the shelf." in back.text
    assert _focused(back.text) == "return-barcode"
    assert 'class="slip"' not in back.text  # a copy for the shelf needs no slip

    late = client.post("/staff/desk/checkin", data={**form, "barcode": "S-2"}, headers=HTMX)
    assert re.search(r"Fine charged: CN¥\d+\.\d\d\.", late.text), late.text

    # The second scan of the same return: already back, when and where, not an error.
    again = client.post("/staff/desk/checkin", data={**form, "barcode": "S-1"}, headers=HTMX)
    assert again.status_code == 200
    assert (
        "Already back: Dream of the Red Chamber (S-1) was taken back 18 Nov 2026, 14:00 "
        "at Central Library." in again.text
    )
    assert _focused(again.text) == "return-barcode"
    client.get("/lang/zh_Hans")
    zh = client.post("/staff/desk/checkin", data={**form, "barcode": "S-1"}, headers=HTMX)
    assert "已经归还过了" in zh.text and "2026年11月18日 14:00" in zh.text

    # A copy never lent, and any typed string: said plainly, never a 500.
    client.get("/lang/en")
    for typed in ("NO-SUCH", "<b>x</b>", "' OR 1=1 --", "条码"):
        r = client.post("/staff/desk/checkin", data={**form, "barcode": typed}, headers=HTMX)
        assert r.status_code == 404 and "No copy has this barcode." in r.text
    long = client.post("/staff/desk/checkin", data={**form, "barcode": "9" * 65})
    assert long.status_code == 422 and "barcode" in long.text


def test_already_on_loan_says_to_whom_as_far_as_this_desk_may_know_and_offers_check_in(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)
    factories.copies(session, world, "On someone's shelf", ["L-1"], world.airport)
    factories.lend(session, None, world.reader_central, "L-1", world.central)
    session.commit()
    # The reader's home library sees the whole loan.
    form = _desk(client, "central-lib", world.central.id)
    home = client.post(
        "/staff/desk/checkout",
        data={**form, "card_number": "CARD000002", "barcode": "L-1"},
        headers=HTMX,
    )
    assert home.status_code == 409 and "This copy is already on loan." in home.text
    assert "On someone&#39;s shelf (L-1) is on loan to Reader 1, card CARD000001." in home.text
    assert "Lent 18 Nov 2026, 14:00 at Central Library, due" in home.text
    assert 'id="desk-offer-checkin"' in home.text
    # The same reader scanning their own copy again.
    own = client.post(
        "/staff/desk/checkout",
        data={**form, "card_number": "CARD000001", "barcode": "L-1"},
        headers=HTMX,
    )
    assert "Reader 1 already has On someone&#39;s shelf on loan, due" in own.text
    assert 'id="desk-offer-checkin"' not in own.text
    # Another library's desk: the card's summary only, not when or where it was lent.
    form = _desk(client, "airport-desk", world.airport.id)
    other = client.post(
        "/staff/desk/checkout",
        data={**form, "card_number": "CARD000002", "barcode": "L-1"},
        headers=HTMX,
    )
    assert "is on loan to Reader 1, card CARD000001, of Central Library." in other.text
    assert "Lent " not in other.text and "due" not in other.text.split('id="desk-refusal"')[1]
    # Taking it back from the offer.
    back = client.post("/staff/desk/checkin", data={**form, "barcode": "L-1"}, headers=HTMX)
    assert "Back: On someone&#39;s shelf (L-1), from Reader 1" in back.text


def test_a_copy_for_a_hold_or_another_library_comes_with_a_slip_and_a_rescan_changes_nothing(
    client: TestClient, session: Session, world: World
) -> None:
    factories.rule(session, world)
    [held, _] = factories.copies(session, world, "Wanted", ["H-1", "H-2"])
    factories.copies(session, world, "From the airport", ["T-1"], world.airport)
    factories.lend(session, None, world.reader_central, "H-1", world.central)
    factories.lend(session, None, world.reader_central, "H-2", world.central)
    factories.lend(session, None, world.reader_central, "T-1", world.central)
    circulation.holds.place(
        session,
        None,
        reader_id=world.reader_community.id,
        record_id=held.record_id,
        pickup_unit_id=world.central.id,
        at=factories.NOW,
    )
    session.commit()
    form = _desk(client, "central-lib", world.central.id)
    hold = client.post("/staff/desk/checkin", data={**form, "barcode": "H-1"}, headers=HTMX)
    assert "Put it on the hold shelf for Reader 2 (card CARD000002)." in hold.text
    slip = hold.text.split('class="slip"')[1]
    assert "Hold slip" in slip and "Reader 2" in slip and "CARD000002" in slip
    assert "Keep until" in slip and "data-print" in hold.text
    again = client.post("/staff/desk/checkin", data={**form, "barcode": "H-1"}, headers=HTMX)
    assert "Already scanned in: Wanted (H-1)." in again.text
    assert "hold shelf for Reader 2" in again.text

    away = client.post("/staff/desk/checkin", data={**form, "barcode": "T-1"}, headers=HTMX)
    assert "Send it home to Airport Library." in away.text
    slip = away.text.split('class="slip"')[1]
    assert "Transit slip" in slip and "Airport Library" in slip and "Central Library" in slip
    twice = client.post("/staff/desk/checkin", data={**form, "barcode": "T-1"}, headers=HTMX)
    assert "Already scanned in: From the airport (T-1)." in twice.text
    assert "Send it home to Airport Library." in twice.text
    transits = session.scalar(select(func.count()).select_from(circulation.Transit))
    session.rollback()
    assert transits == 1  # the second scan kept the transit it had
