"""Lending, taking back and renewing copies: every refusal by its reason, and desks racing
for one copy on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from biblioverse import catalog, circulation, readers
from biblioverse.circulation import errors
from biblioverse.db import make_session_factory
from biblioverse.errors import PermissionDenied
from tests import factories
from tests.factories import World

NOW = factories.NOW  # Wednesday 18 November 2026, 14:00 in Beijing


def shelf(session: Session, w: World, n: int = 3) -> list[catalog.Item]:
    return factories.copies(session, w, "Loans", [f"L-{i:04d}" for i in range(n)])


def test_a_loan_is_due_at_closing_time_and_comes_back_anywhere(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w, loan_days=14, renewals=1)
    (item,) = shelf(session, w, 1)
    desk = w.actor(session, w.central_librarian)
    loan = factories.lend(session, desk, w.reader_central, "L-0000", w.central)
    assert item.status == "on_loan"
    assert loan.due_at == dt.datetime(2026, 12, 2, 13, 0, tzinfo=dt.UTC)  # 21:00 in Beijing
    renewed = circulation.renew(session, desk, loan.id, at=NOW + dt.timedelta(days=10))
    assert renewed.renewals == 1 and renewed.due_at.date() == dt.date(2026, 12, 12)
    with pytest.raises(errors.RenewalLimitReached):
        circulation.renew(session, desk, loan.id, at=NOW + dt.timedelta(days=11))
    back = circulation.checkin(
        session,
        w.actor(session, w.airport_librarian),
        barcode="L-0000",
        at_unit_id=w.airport.id,
        at=NOW,
    )
    assert back.loan is not None and back.loan.returned_unit_id == w.airport.id
    # Returned at a branch that does not own it: it travels home.
    assert back.routing.action is circulation.holds.Action.TRANSIT
    assert back.routing.unit_id == w.central.id and item.status == "in_transit"
    home = circulation.checkin(session, desk, barcode="L-0000", at_unit_id=w.central.id, at=NOW)
    assert home.loan is None and home.routing.action is circulation.holds.Action.SHELVE
    assert item.status == "available" and item.at_unit_id is None
    with pytest.raises(errors.NotOnLoan):
        circulation.checkin(session, desk, barcode="L-0000", at_unit_id=w.central.id, at=NOW)


def test_every_refusal_names_its_reason(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w, max_loans=1, mobile_checkout=False)
    items = shelf(session, w, 3)
    desk = w.actor(session, w.central_librarian)
    reader = w.reader_central

    def lend(barcode: str, reader_id: int | None = None, channel: str = "desk") -> circulation.Loan:
        return circulation.checkout(
            session,
            desk,
            reader_id=reader.id if reader_id is None else reader_id,
            barcode=barcode,
            at_unit_id=w.central.id,
            channel=channel,
            at=NOW,
            present_at=w.central.id,
        )

    with pytest.raises(errors.ChannelNotAllowed):
        lend("L-0000", channel="mobile")
    lend("L-0000")
    with pytest.raises(errors.ItemOnLoan):
        lend("L-0000", reader_id=w.reader_community.id)
    with pytest.raises(errors.LoanLimitReached, match="1 loans"):
        lend("L-0001")
    items[2].circulates = False
    with pytest.raises(errors.ItemNotLoanable, match="for use in the library"):
        lend("L-0002", reader_id=w.reader_community.id)
    reader.status = readers.Status.BLOCKED.value
    with pytest.raises(errors.ReaderBlocked):
        lend("L-0001")
    reader.status, reader.expires_on = readers.Status.ACTIVE.value, dt.date(2026, 1, 1)
    with pytest.raises(errors.CardExpired, match="2026-01-01"):
        lend("L-0001")
    with pytest.raises(catalog.ItemNotFound):
        lend("NO-SUCH-COPY")
    with pytest.raises(PermissionDenied):  # a desk of another library
        circulation.checkout(
            session,
            w.actor(session, w.community_librarian),
            reader_id=w.reader_community.id,
            barcode="L-0001",
            at_unit_id=w.central.id,
            at=NOW,
        )
    # Nothing of the refused loans was written.
    assert session.scalar(select(func.count()).select_from(circulation.Loan)) == 1


def test_desks_racing_for_one_copy_lend_it_once(session: Session, engine: Engine) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    shelf(session, w, 1)
    contenders = [factories.reader(session, w.central, 100 + n) for n in range(8)]
    session.commit()
    ids = [r.id for r in contenders]
    factory = make_session_factory(engine)
    barrier = threading.Barrier(len(ids))
    outcomes: list[str] = []

    def race(reader_id: int) -> None:
        s = factory()
        try:
            barrier.wait()
            circulation.checkout(
                s, None, reader_id=reader_id, barcode="L-0000", at_unit_id=w_central, at=NOW
            )
            s.commit()
            outcomes.append("lent")
        except errors.ItemOnLoan:
            s.rollback()
            outcomes.append("on loan")
        finally:
            s.close()

    w_central = w.central.id
    threads = [threading.Thread(target=race, args=(rid,)) for rid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lent"] + ["on loan"] * 7
    session.expire_all()
    open_loans = session.scalar(
        select(func.count())
        .select_from(circulation.Loan)
        .where(circulation.Loan.returned_at.is_(None))
    )
    assert open_loans == 1


def test_a_loan_undone_with_its_savepoint_leaves_nothing_in_the_session(
    session: Session,
) -> None:
    """The loan and the copy are written past the session's unit of work (ADR 0021): a
    desk page's savepoint that rolls back must still undo them in memory, and the copy can
    be lent again at once (on SQLite the new loan may get the same id)."""
    w = factories.world(session)
    factories.rule(session, w)
    (item,) = shelf(session, w, 1)
    desk = w.actor(session, w.central_librarian)
    session.commit()
    with pytest.raises(RuntimeError), session.begin_nested():
        loan = factories.lend(session, desk, w.reader_central, "L-0000", w.central)
        assert item.status == "on_loan"
        raise RuntimeError("the page failed after the loan")
    assert item.status == "available"  # read again: the loan was rolled back
    assert loan not in session
    again = factories.lend(session, desk, w.reader_central, "L-0000", w.central)
    back = circulation.checkin(session, desk, barcode="L-0000", at_unit_id=w.central.id, at=NOW)
    assert back.loan is again and again.status == "returned" and item.status == "available"
    session.rollback()
    assert item.status == "available"
    assert session.scalar(select(func.count()).select_from(circulation.Loan)) == 0


def test_a_return_ends_its_loan_no_earlier_than_it_began(session: Session) -> None:
    """Whoever takes the copy back (a desk now, a machine with the date it stored), the
    loan ends between its start and now: one rule, in the service."""
    w = factories.world(session)
    factories.rule(session, w)
    shelf(session, w, 3)
    desk = w.actor(session, w.central_librarian)
    lent = NOW - dt.timedelta(days=10)
    for n in range(3):
        factories.lend(session, desk, w.reader_central, f"L-{n:04d}", w.central, at=lent)
    claims = {
        "L-0000": lent - dt.timedelta(days=1),  # before the loan
        "L-0001": NOW + dt.timedelta(hours=1),  # in the future
        "L-0002": None,  # the desk: now
    }
    ended = {}
    for barcode, claimed in claims.items():
        back = circulation.checkin(
            session, desk, barcode=barcode, at_unit_id=w.central.id, at=NOW, returned=claimed
        )
        assert back.loan is not None
        ended[barcode] = back.loan.returned_at
    assert ended == {"L-0000": lent, "L-0001": NOW, "L-0002": NOW}
