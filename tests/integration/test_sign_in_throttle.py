"""Failed sign-ins under concurrency, on SQLite and PostgreSQL: every attempt is counted in
one atomic statement before its password is judged, so guesses sent together cannot pass
the throttle's check side by side and leave a count lower than their number."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from biblioverse import accounts, readers
from biblioverse.access import PrincipalKind
from biblioverse.db import make_session_factory
from biblioverse.errors import Throttled, ValidationFailed
from biblioverse.security import verify_secret
from tests import factories
from tests.factories import NOW, READER_PW

POLICY = accounts.ThrottlePolicy(window_s=900, account_failures=5, address_failures=30)
GUESSES = 12


def _sign_in(engine: Engine, password: str, start: threading.Barrier | None = None) -> str:
    """One sign-in in its own session, as a request would make it; what it was answered."""
    with make_session_factory(engine)() as session:
        if start is not None:
            start.wait(10)
        try:
            with accounts.failures_kept(session):
                accounts.authenticate(
                    session,
                    kind=PrincipalKind.READER,
                    login="CARD000001",
                    secret=password,
                    address="203.0.113.7",
                    at=NOW,
                    policy=POLICY,
                )
            session.commit()
            return "signed in"
        except accounts.BadCredentials:
            return "wrong password"
        except Throttled:
            return "throttled"
        except Exception as exc:  # a database error under the race is an answer too
            session.rollback()
            return type(exc).__name__


def test_wrong_passwords_sent_together_are_all_counted_and_lock_the_account(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = factories.world(session)
    key = f"reader#{w.reader_central.id}"
    session.rollback()  # let go of SQLite before the threads write
    real_verify = verify_secret

    def slow_verify(stored: str | None, secret: str) -> bool:
        time.sleep(0.05)  # argon2's real cost, so that the guesses overlap
        return real_verify(stored, secret)

    monkeypatch.setattr(accounts.service, "verify_secret", slow_verify)
    start = threading.Barrier(GUESSES)
    with ThreadPoolExecutor(GUESSES) as pool:
        answers = list(pool.map(lambda _: _sign_in(engine, "a guess", start), range(GUESSES)))
    # no more guesses were judged than the limit allows; the others were refused unjudged
    assert sorted(answers) == ["throttled"] * 7 + ["wrong password"] * 5
    session.expire_all()
    counted = session.scalar(
        select(accounts.LoginThrottle.failures).where(accounts.LoginThrottle.key == key)
    )
    assert counted == GUESSES
    with pytest.raises(Throttled):
        accounts.check_throttle(session, [key], NOW)
    session.rollback()
    assert _sign_in(engine, READER_PW) == "throttled"  # the right password too, while locked


def _count(session: Session, key: str, at: dt.datetime, address: str | None = None) -> str:
    try:
        accounts.count_attempt(session, person=key, address=address, policy=POLICY, at=at)
        return "counted"
    except Throttled as exc:
        return f"throttled {exc.retry_after_s}s"


def _failures(session: Session, key: str) -> int | None:
    return session.scalar(
        select(accounts.LoginThrottle.failures).where(accounts.LoginThrottle.key == key)
    )


def test_the_count_locks_at_the_limit_for_a_window_and_starts_again_after(
    session: Session,
) -> None:
    second = dt.timedelta(seconds=1)
    assert [_count(session, "reader#1", NOW + i * second) for i in range(5)] == ["counted"] * 5
    # the fifth reached the limit at NOW + 4 s: locked for a window from then
    assert _count(session, "reader#1", NOW + 5 * second) == "throttled 899s"
    assert _count(session, "reader#1", NOW + 903 * second) == "throttled 1s"
    assert _failures(session, "reader#1") == 7  # refused attempts count too
    assert _count(session, "reader#1", NOW + 904 * second) == "counted"
    assert _failures(session, "reader#1") == 1  # a new window
    # a right secret starts the person's count again and takes itself back from the address
    _count(session, "reader#2", NOW, address="addr:x")
    _count(session, "reader#2", NOW, address="addr:x")
    accounts.attempt_succeeded(session, person="reader#2", address="addr:x", policy=POLICY)
    assert (_failures(session, "reader#2"), _failures(session, "addr:x")) == (None, 1)


def test_an_attempt_counts_only_against_the_key_that_refused_it(session: Session) -> None:
    for i in range(30):
        _count(session, f"reader#{100 + i}", NOW, address="addr:x")
    # the address is at its limit: the next attempt is refused, and not held against the
    # person it named
    assert _count(session, "reader#1", NOW, address="addr:x").startswith("throttled")
    assert (_failures(session, "reader#1"), _failures(session, "addr:x")) == (None, 31)
    # a person locked out: attempts on them do not fill the address's count
    for _ in range(6):
        _count(session, "reader#2", NOW, address="addr:y")
    assert (_failures(session, "reader#2"), _failures(session, "addr:y")) == (6, 5)


def test_a_change_refused_for_its_fields_is_not_counted_as_a_wrong_password(
    session: Session,
) -> None:
    """The settings page answers a field's error and commits: the attempt counted before
    the fields were checked is taken back, as its password was never looked at."""
    w = factories.world(session)
    actor = accounts.actor_for_reader(w.reader_central)
    for _ in range(6):
        with pytest.raises(ValidationFailed):
            accounts.change_own_account(
                session,
                actor,
                readers.OwnChange(email="a@b"),
                current_password=READER_PW,
                address="203.0.113.7",
                policy=POLICY,
                keep_token=None,
                at=NOW,
            )
    assert _failures(session, f"reader#{w.reader_central.id}") is None
    assert _failures(session, "addr:203.0.113.7") is None
