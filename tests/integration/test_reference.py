"""Reference data kept per process (libraries, hours, rules, API tokens): a change is seen
by the next loan, in this process at once and in another within the check interval."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from biblioverse import circulation, libraries, reference
from biblioverse.db import make_session_factory
from biblioverse.reference import ReferenceState
from tests.factories import NOW, World, copies, lend, rule, world


@pytest.fixture()
def w(session: Session) -> World:
    return world(session)


def _loan_days(session: Session) -> int:
    (row,) = circulation.matrix(session)
    return row.policy.loan_days


def _version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(ReferenceState.version)) or 0)


def test_a_rule_changed_in_one_session_applies_to_the_next_loan_of_another(
    engine: Engine, session: Session, w: World
) -> None:
    rule(session, w, loan_days=14)
    copies(session, w, "Kept rules", ["R1", "R2"])
    session.commit()
    other = make_session_factory(engine)()
    try:
        assert _loan_days(other) == 14  # read and kept
        other.rollback()
        (row,) = session.scalars(select(circulation.CirculationRule))
        row.loan_days = 3
        session.commit()
        loan = lend(other, None, w.reader_central, "R1", w.central)
        other.commit()
        assert loan.due_at.date() == (NOW + dt.timedelta(days=3)).date()
    finally:
        other.close()


def test_a_change_not_yet_committed_is_seen_by_its_own_session_only(
    engine: Engine, session: Session, w: World
) -> None:
    rule(session, w, loan_days=14)
    session.commit()
    other = make_session_factory(engine)()
    try:
        assert _loan_days(other) == 14
        other.rollback()
        (row,) = session.scalars(select(circulation.CirculationRule))
        row.loan_days = 5
        session.flush()
        assert _loan_days(session) == 5  # its own uncommitted row
        assert _loan_days(other) == 14  # not another's
        other.rollback()
        session.rollback()
        assert _loan_days(session) == 14  # rolled back: nothing changed
        assert _loan_days(other) == 14
    finally:
        other.close()


def test_the_counter_moves_with_reference_data_and_not_with_loans(
    engine: Engine, session: Session, w: World
) -> None:
    rule(session, w)
    copies(session, w, "Counted", ["C1"])
    session.commit()
    before = _version(engine)
    lend(session, None, w.reader_central, "C1", w.central)
    session.commit()
    assert _version(engine) == before
    libraries.add_closed_day(session, None, w.central, NOW.date() + dt.timedelta(days=20), at=NOW)
    session.commit()
    assert _version(engine) == before + 1


def test_another_process_change_is_seen_when_the_counter_is_next_read(
    engine: Engine, session: Session, w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's change comes as a row and a bumped counter, no event here: it is
    seen once this process looks at the counter again (every CHECK_EVERY seconds)."""
    rule(session, w, loan_days=14)
    session.commit()
    assert _loan_days(session) == 14
    session.rollback()
    with engine.begin() as conn:  # "another process": plain SQL, no session events
        conn.execute(text("UPDATE circulation_rules SET loan_days = 9"))
        conn.execute(update(ReferenceState).values(version=ReferenceState.version + 1))
    monkeypatch.setattr(reference, "CHECK_EVERY", 3600.0)
    assert _loan_days(session) == 14  # kept: the counter was read less than an hour ago
    session.rollback()
    monkeypatch.setattr(reference, "CHECK_EVERY", 0.0)
    assert _loan_days(session) == 9
