""" "Which rule applies?" and checkout agree: for every reader and every copy of a varied
library, explain says a copy may be lent exactly when a desk's checkout lends it, and names
the refusal checkout meets when it does not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from biblioverse import catalog, circulation, demo, readers
from biblioverse.circulation import errors, fees
from biblioverse.db import make_session_factory
from tests import factories

NOW = factories.NOW


def test_explain_and_checkout_agree_for_every_reader_and_copy(session: Session) -> None:
    w = factories.world(session)
    demo.seed_rules(session, at=NOW, consortium_id=w.consortium.id, airport_id=w.airport.id)
    for data in (
        # visitors borrow nothing; a low fee limit so that one overdue loan blocks
        circulation.RuleInput(
            w.consortium.id, reader_category="visitor", policy=circulation.Policy(max_loans=0)
        ),
        circulation.RuleInput(
            w.consortium.id,
            reader_category="student",
            policy=circulation.Policy(max_loans=1, block_threshold=Decimal("0.50")),
        ),
    ):
        circulation.save_rule(session, None, data, at=NOW)
    people = [
        w.reader_central,
        factories.reader(
            session,
            w.central,
            11,
            category="child",
            birth_date=dt.date(2018, 3, 1),
            guardian_name="A Parent",
        ),
        factories.reader(session, w.central, 12, category="visitor"),
        factories.reader(session, w.central, 13, category="student"),
        factories.reader(session, w.airport, 14),
        factories.reader(session, w.central, 15),
        factories.reader(session, w.central, 16),
        factories.reader(session, w.central, 17, category="student"),
    ]
    people[5].status = readers.Status.BLOCKED.value
    people[6].expires_on = (NOW - dt.timedelta(days=1)).date()
    copies = [
        *factories.copies(session, w, "Book", ["X-BOOK", "X-MISS", "X-WDRN", "X-LENT", "X-KEPT"]),
        *factories.copies(session, w, "Ref", ["X-REF"], item_type="reference"),
        *factories.copies(session, w, "Old", ["X-OLD"], item_type="precious"),
        *factories.copies(session, w, "AV", ["X-AV"], library=w.airport, item_type="audiovisual"),
        *factories.copies(session, w, "Kids", ["X-KID"], item_type="children"),
        *factories.copies(session, w, "New", ["X-NEW"]),
    ]
    cataloguer = w.actor(session, w.cataloguer)
    for barcode, change in (
        ("X-MISS", catalog.ItemChange(status="missing")),
        ("X-WDRN", catalog.ItemChange(status="withdrawn")),
        ("X-KEPT", catalog.ItemChange(circulates=False)),
        ("X-NEW", catalog.ItemChange(status="in_processing")),
    ):
        item = next(c for c in copies if c.barcode == barcode)
        catalog.update_item(session, cataloguer, item.id, change, at=NOW)
    factories.lend(session, None, w.reader_community, "X-LENT", w.central)
    # The student's one loan is long overdue: at the loan limit and above the fee limit.
    (late,) = factories.copies(session, w, "Late", ["X-LATE"])
    factories.lend(session, None, people[3], "X-LATE", w.central, at=NOW - dt.timedelta(days=40))
    # Another student has one loan, not late: at the loan limit only.
    factories.copies(session, w, "Current", ["X-CUR"])
    factories.lend(session, None, people[7], "X-CUR", w.central)
    fees.accrue(session, NOW)
    session.flush()

    seen: dict[str | None, int] = {}
    for person in people:
        for copy in copies:
            applied = circulation.explain(session, person.id, copy.id, at_unit_id=None, at=NOW)
            said = applied.refusal.code if applied.refusal else None
            savepoint = session.begin_nested()
            try:
                circulation.checkout(
                    session,
                    None,
                    reader_id=person.id,
                    barcode=copy.barcode,
                    at_unit_id=copy.org_unit_id,
                    at=NOW,
                )
                done: str | None = None
            except errors.Refused as exc:
                done = exc.code
            finally:
                savepoint.rollback()
                session.expire_all()
            assert said == done, (person.card_number, person.category, copy.barcode)
            seen[said] = seen.get(said, 0) + 1
    # The library above meets every kind of refusal a desk can meet without a hold.
    assert set(seen) == {
        None,
        "item_not_loanable",
        "item_on_loan",
        "library_does_not_lend",
        "reader_blocked",
        "card_expired",
        "loan_limit",
        "fee_limit",
    }, seen
    assert late.status == "on_loan"


def test_explain_only_asks_it_locks_no_hold(session: Session, engine: Engine) -> None:
    """ "Which rule applies?" reads the reader's hold the loan would fill without locking it:
    a desk filling that hold meanwhile is not kept waiting by someone asking."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: one writer locks the whole file")
    w = factories.world(session)
    factories.rule(session, w)
    [copy, other] = factories.copies(session, w, "Wanted", ["W-1", "W-2"])
    other.status = "on_loan"  # so the hold waits rather than being set aside at once
    copy.status = "on_loan"
    session.flush()
    hold = circulation.holds.place(
        session,
        None,
        reader_id=w.reader_central.id,
        record_id=copy.record_id,
        pickup_unit_id=w.central.id,
        at=NOW,
    )
    copy.status = "available"
    session.commit()
    circulation.explain(session, w.reader_central.id, copy.id, at_unit_id=w.central.id, at=NOW)
    # still in the explaining transaction: another one takes the hold's row at once
    with make_session_factory(engine)() as desk:
        desk.execute(
            select(circulation.Hold.id)
            .where(circulation.Hold.id == hold.id)
            .with_for_update(nowait=True)
        ).one()
    session.rollback()
