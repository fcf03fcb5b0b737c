"""A copy's life: which statuses follow which, who lends reference books (the rule matrix),
and precious books, which never leave the building."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import catalog, circulation, demo
from biblioverse.circulation import errors
from biblioverse.errors import ValidationFailed
from tests import factories
from tests.factories import World

NOW = factories.NOW


def typed_copy(session: Session, w: World, barcode: str, item_type: str) -> catalog.Item:
    (item,) = factories.copies(session, w, "T", [barcode], item_type=item_type)
    return item


def test_the_demo_matrix_lends_reference_books_for_three_hours_at_the_desk(
    session: Session,
) -> None:
    w = factories.world(session)
    demo.seed_rules(session, at=NOW, consortium_id=w.consortium.id, airport_id=w.airport.id)
    ref = typed_copy(session, w, "REF-1", "reference")
    assert ref.circulates  # nothing at import keeps it in: the matrix decides
    applied = circulation.explain(
        session, w.reader_central.id, ref.id, at_unit_id=w.central.id, at=NOW
    )
    assert applied.explanation.rule.name == "Reference, in the reading room"
    assert applied.refusal is None and applied.due == NOW + dt.timedelta(hours=3)
    for channel in ("kiosk", "mobile"):
        with pytest.raises(errors.ChannelNotAllowed):
            factories.lend(session, None, w.reader_central, "REF-1", w.central, channel=channel)
    desk = w.actor(session, w.central_librarian)
    loan = factories.lend(session, desk, w.reader_central, "REF-1", w.central)
    assert loan.due_at == NOW + dt.timedelta(hours=3) and ref.status == "on_loan"


def test_a_type_the_matrix_does_not_lend_is_refused_and_explain_says_so(
    session: Session,
) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(
            w.consortium.id, item_type="reference", policy=circulation.Policy(max_loans=0)
        ),
        at=NOW,
    )
    ref = typed_copy(session, w, "REF-2", "reference")
    applied = circulation.explain(session, w.reader_central.id, ref.id, at_unit_id=None, at=NOW)
    assert isinstance(applied.refusal, errors.NotLentToReader)
    with pytest.raises(errors.NotLentToReader):
        factories.lend(session, None, w.reader_central, "REF-2", w.central)


def test_precious_books_never_leave_the_building(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w)  # lends any type, so the precious copy's own type must refuse
    old = typed_copy(session, w, "PRE-1", "precious")
    assert not old.circulates
    applied = circulation.explain(session, w.reader_central.id, old.id, at_unit_id=None, at=NOW)
    assert isinstance(applied.refusal, errors.ItemNotLoanable)
    assert applied.refusal.details == {
        "why": "Not lent: precious and ancient books never leave the building."
    }
    with pytest.raises(errors.ItemNotLoanable, match="never leave the building"):
        factories.lend(session, None, w.reader_central, "PRE-1", w.central)
    cataloguer = w.actor(session, w.cataloguer)
    with pytest.raises(ValidationFailed) as refused:
        catalog.update_item(
            session, cataloguer, old.id, catalog.ItemChange(circulates=True), at=NOW
        )
    assert [e.field for e in refused.value.errors] == ["circulates"] and not old.circulates
    with pytest.raises(ValidationFailed) as no_rule:
        circulation.save_rule(
            session,
            None,
            circulation.RuleInput(w.consortium.id, item_type="precious"),
            at=NOW,
        )
    assert [e.field for e in no_rule.value.errors] == ["item_type"]
    # A book recatalogued as precious is kept in; recatalogued back, it may be lent again.
    book = typed_copy(session, w, "PRE-2", "book")
    catalog.update_item(
        session, cataloguer, book.id, catalog.ItemChange(item_type="precious"), at=NOW
    )
    assert not book.circulates
    catalog.update_item(session, cataloguer, book.id, catalog.ItemChange(item_type="book"), at=NOW)
    assert book.circulates


def test_the_database_itself_keeps_precious_books_in(session: Session) -> None:
    w = factories.world(session)
    old = typed_copy(session, w, "PRE-3", "precious")
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE items SET circulates = true WHERE id = :id"), {"id": old.id})
        session.flush()


def test_staff_cannot_put_a_copy_into_or_take_it_out_of_circulation_by_hand(
    session: Session,
) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    (item,) = factories.copies(session, w, "By hand", ["H-1"])
    cataloguer = w.actor(session, w.cataloguer)
    with pytest.raises(ValidationFailed) as into:
        catalog.update_item(
            session, cataloguer, item.id, catalog.ItemChange(status="on_loan"), at=NOW
        )
    assert [e.field for e in into.value.errors] == ["status"] and item.status == "available"
    factories.lend(session, None, w.reader_central, "H-1", w.central)
    with pytest.raises(ValidationFailed):
        catalog.update_item(
            session, cataloguer, item.id, catalog.ItemChange(status="available"), at=NOW
        )
    assert item.status == "on_loan"
    # Circulation itself cannot skip the lifecycle either: a lent copy is not missing.
    with pytest.raises(catalog.IllegalStatusChange, match="on_loan and cannot become missing"):
        catalog.next_status(item, catalog.ItemStatus.MISSING)
    circulation.checkin(session, None, barcode="H-1", at_unit_id=w.central.id, at=NOW)
    for status in ("missing", "available", "withdrawn", "in_processing", "available"):
        catalog.update_item(session, cataloguer, item.id, catalog.ItemChange(status=status), at=NOW)
        assert item.status == status
