"""Borrowing by phone is bound to where the reader stands (ADR 0040): the phone shows it is
in a library (a "you are here" sign's code, or the library's network), and the copy stands
in that library."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, circulation, libraries
from biblioverse.circulation import errors, presence
from biblioverse.errors import PermissionDenied
from tests import factories
from tests.factories import NOW

SECRET = "a-secret-key-for-these-tests-only"
MINUTES = 180


def test_a_phone_that_has_not_shown_where_it_is_cannot_borrow(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    factories.copies(session, w, "On the shelf", ["P-1"])
    phone = accounts.actor_for_reader(w.reader_central)

    def borrow(present_at: int | None) -> circulation.Loan:
        return circulation.checkout(
            session,
            phone,
            reader_id=w.reader_central.id,
            barcode="P-1",
            at_unit_id=w.central.id,
            channel="mobile",
            at=NOW,
            present_at=present_at,
        )

    with pytest.raises(errors.NotInLibrary):
        borrow(None)  # a free pick of the library
    with pytest.raises(errors.NotInLibrary):
        borrow(w.airport.id)  # in another library than the one it names
    assert borrow(w.central.id).channel == "mobile"


def test_a_copy_of_another_library_is_refused_and_named(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    [far] = factories.copies(session, w, "At the airport", ["A-1"], library=w.airport)
    [floating] = factories.copies(session, w, "Kept where returned", ["F-1"], library=w.airport)
    floating.at_unit_id = w.central.id  # an airport copy standing in the central library
    session.flush()
    with pytest.raises(errors.ItemElsewhere) as refused:
        factories.lend(session, None, w.reader_central, "A-1", w.central, channel="mobile")
    assert refused.value.details == {"library_id": w.airport.id}
    assert far.status == "available"
    loan = factories.lend(session, None, w.reader_central, "F-1", w.central, channel="mobile")
    assert loan.org_unit_id == w.central.id
    # at a desk a copy may be lent wherever it is said to be: staff hold it in their hands
    desk = w.actor(session, w.central_librarian)
    factories.lend(session, desk, w.reader_central, "A-1", w.central)
    assert catalog.get_item(session, far.id).status == "on_loan"


def test_a_signs_code_gives_a_ticket_for_a_while_and_a_new_code_ends_the_old(
    session: Session,
) -> None:
    w = factories.world(session)
    code = libraries.here_code(session, w.actor(session, w.admin), w.central.id)
    assert (
        presence.scanned(session, SECRET, w.central.id, "guessed", at=NOW, minutes=MINUTES) is None
    )
    assert presence.scanned(session, SECRET, w.airport.id, code, at=NOW, minutes=MINUTES) is None
    got = presence.scanned(session, SECRET, w.central.id, code, at=NOW, minutes=MINUTES)
    assert got is not None
    ticket, here = got
    assert here == presence.Presence(w.central.id, NOW + dt.timedelta(minutes=MINUTES))
    assert presence.of_ticket(SECRET, ticket, at=NOW + dt.timedelta(minutes=179)) == here
    assert presence.of_ticket(SECRET, ticket, at=NOW + dt.timedelta(minutes=180)) is None
    assert presence.of_ticket("another key", ticket, at=NOW) is None  # forged
    assert presence.of_ticket(SECRET, ticket[:-2] + "xx", at=NOW) is None
    assert presence.of_ticket(SECRET, "", at=NOW) is None

    librarian = w.actor(session, w.central_librarian)
    new = libraries.renew_here_code(session, librarian, w.central.id, at=NOW)
    assert new != code
    assert presence.scanned(session, SECRET, w.central.id, code, at=NOW, minutes=MINUTES) is None
    assert presence.scanned(session, SECRET, w.central.id, new, at=NOW, minutes=MINUTES)
    # who does not make the signs does not see the code
    with pytest.raises(PermissionDenied, match=r"plans\.manage"):
        libraries.here_code(session, w.actor(session, w.cataloguer), w.central.id)
    with pytest.raises(PermissionDenied, match=r"plans\.manage"):
        libraries.renew_here_code(
            session, w.actor(session, w.airport_librarian), w.central.id, at=NOW
        )


def test_a_phone_on_a_librarys_network_is_in_that_library(session: Session) -> None:
    w = factories.world(session)
    networks = libraries.parse_networks(
        f"{w.central.code}=10.1.0.0/16, 2001:db8::/48; {w.airport.code}=192.168.5.0/24"
    )

    def where(address: str | None, ticket: str | None = None) -> presence.Presence | None:
        return presence.where(
            session, SECRET, ticket=ticket, address=address, networks=networks, at=NOW
        )

    assert where("10.1.200.3") == presence.Presence(w.central.id, None)
    assert where("2001:db8::42") == presence.Presence(w.central.id, None)
    assert where("192.168.5.9") == presence.Presence(w.airport.id, None)
    assert where("10.2.0.1") is None and where("unknown") is None and where(None) is None
    code = w.airport.here_code
    got = presence.scanned(session, SECRET, w.airport.id, code, at=NOW, minutes=MINUTES)
    assert got is not None
    assert where("8.8.8.8", got[0]) == got[1]  # off the network: the sign scanned counts
    assert where("10.1.0.7", got[0]) == presence.Presence(w.central.id, None)  # walked over


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("central", "expected LIBRARY_CODE=network"),
        ("=10.0.0.0/8", "expected LIBRARY_CODE=network"),
        ("central=10.0.0.300/8", "central: '10.0.0.300/8' is not a network"),
        ("central=wifi", "central: 'wifi' is not a network"),
    ],
)
def test_a_wrong_network_setting_names_the_part(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        libraries.parse_networks(text)
