"""The reader record's use cases (issue 29) on both databases: the card renewed, blocked and
unblocked with a reason, contact details and notes, each in the home library's scope and
audited; possible duplicates found by name and birth date."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import audit, readers
from biblioverse.errors import DuplicateValue, PermissionDenied, ValidationFailed
from tests import factories

NOW = factories.NOW


def _actions(session: Session, reader_id: int) -> list[tuple[str, dict[str, object]]]:
    rows = session.scalars(
        select(audit.AuditEntry)
        .where(audit.AuditEntry.entity == "reader", audit.AuditEntry.entity_id == str(reader_id))
        .order_by(audit.AuditEntry.id)
    )
    return [(e.action, e.details) for e in rows if e.action != "reader.create"]


def test_the_card_is_renewed_blocked_and_unblocked_by_its_home_library(session: Session) -> None:
    w = factories.world(session)
    lib = w.actor(session, w.central_librarian)
    r = w.reader_central
    r.expires_on = dt.date(2026, 12, 1)  # two weeks left: the new period runs from it
    readers.renew_card(session, lib, r.id, at=NOW)
    assert r.expires_on == dt.date(2026, 12, 1) + dt.timedelta(days=3 * 365)
    r.expires_on = dt.date(2026, 1, 1)  # run out: from today (18 Nov 2026)
    readers.renew_card(session, lib, r.id, at=NOW)
    assert r.expires_on == dt.date(2026, 11, 18) + dt.timedelta(days=3 * 365)

    with pytest.raises(ValidationFailed) as no_reason:
        readers.block(session, lib, r.id, "  ", at=NOW)
    assert no_reason.value.errors[0].field == "reason"
    readers.block(session, lib, r.id, "card reported stolen", at=NOW)
    assert r.status == "blocked" and r.blocked_reason == "card reported stolen"
    with pytest.raises(readers.InvalidStatusChange):
        readers.renew_card(session, lib, r.id, at=NOW)  # unblock first
    with pytest.raises(readers.InvalidStatusChange):
        readers.block(session, lib, r.id, "again", at=NOW)
    readers.unblock(session, lib, r.id, "card found", at=NOW)
    assert r.status == "active" and r.blocked_reason is None
    with pytest.raises(readers.InvalidStatusChange):
        readers.unblock(session, lib, r.id, "not blocked", at=NOW)

    # another library's staff serve the reader but do not change their card (ADR 0025)
    airport = w.actor(session, w.airport_desk)
    for attempt in (
        lambda: readers.renew_card(session, airport, r.id, at=NOW),
        lambda: readers.block(session, airport, r.id, "no", at=NOW),
        lambda: readers.change_contact(session, airport, r.id, email="", phone="", at=NOW),
        lambda: readers.add_note(session, airport, r.id, "a note", at=NOW),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    session.flush()
    assert [a for a, _ in _actions(session, r.id)] == [
        "reader.renew_card",
        "reader.renew_card",
        "reader.block",
        "reader.unblock",
    ]
    assert _actions(session, r.id)[2][1] == {"reason": "card reported stolen"}


def test_contact_details_and_notes_name_the_field_and_stay_with_staff(session: Session) -> None:
    w = factories.world(session)
    lib = w.actor(session, w.central_librarian)
    r = w.reader_central
    with pytest.raises(ValidationFailed) as bad:
        readers.change_contact(session, lib, r.id, email="nope", phone="12", at=NOW)
    assert {e.field for e in bad.value.errors} == {"email", "phone"}
    with pytest.raises(DuplicateValue):
        readers.change_contact(session, lib, r.id, email="READER2@example.org", phone="", at=NOW)
    readers.change_contact(session, lib, r.id, email=" New@Example.org ", phone="", at=NOW)
    assert r.email == "new@example.org" and r.phone is None
    session.flush()
    # the audit names the field, never the address
    assert _actions(session, r.id) == [("reader.contact", {"fields": ["email"]})]

    with pytest.raises(ValidationFailed):
        readers.add_note(session, lib, r.id, "x" * 1001, at=NOW)
    readers.add_note(session, lib, r.id, "Prefers large print", at=NOW)
    readers.add_note(session, lib, r.id, "Moved house", at=NOW + dt.timedelta(hours=1))
    assert [n.text for n in readers.notes_of(session, lib, r.id)] == [
        "Moved house",
        "Prefers large print",
    ]
    assert readers.notes_of(session, w.actor(session, w.airport_desk), r.id) == []
    assert readers.notes_of(session, readers.actor_of(r), r.id) == []  # never the reader


def test_the_same_name_and_birth_date_is_a_possible_duplicate(session: Session) -> None:
    w = factories.world(session)
    lib = w.actor(session, w.central_librarian)
    same = readers.possible_duplicates(session, "  reader   1 ", dt.date(1990, 1, 2))
    assert [r.card_number for r in same] == ["CARD000001"]
    assert readers.possible_duplicates(session, "Reader 1", dt.date(1990, 1, 3)) == []
    data = readers.NewReader(
        name="READER 1",
        birth_date=dt.date(1990, 1, 2),
        category="adult",
        home_library_id=w.central.id,
    )
    with pytest.raises(readers.PossibleDuplicate) as dup:
        readers.create_by_staff(session, lib, data, at=NOW, duplicate_ok=False)
    assert dup.value.details["readers"][0]["card_number"] == "CARD000001"
    again = readers.create_by_staff(session, lib, data, at=NOW, duplicate_ok=True)
    assert again.card_number != "CARD000001"
