"""The outbox relay: what a process leaves to it is published, nudged or not, all of it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from biblioverse import events
from biblioverse.db import make_session_factory
from tests import factories


def _relay(engine: Engine, seen: list[dict[str, Any]], *, interval: float) -> events.Relay:
    return events.Relay(
        make_session_factory(engine),
        make_session_factory(engine, read_only=True),
        {"test.relayed": [lambda _topic, payload: seen.append(payload)]},
        {},
        interval=interval,
    )


def _unpublished(engine: Engine) -> int:
    with make_session_factory(engine)() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(events.OutboxEvent)
                .where(events.OutboxEvent.published_at.is_(None))
            )
            or 0
        )


def test_events_of_another_process_are_published_on_the_timer(
    session: Session, engine: Engine
) -> None:
    """Nobody nudges the relay for events a command committed: its timer finds them."""
    seen: list[dict[str, Any]] = []
    relay = _relay(engine, seen, interval=0.05)
    relay.start()
    try:
        for n in range(3):
            events.record(session, "test.relayed", {"n": n}, at=factories.NOW)
        session.commit()
        deadline = time.monotonic() + 10
        while _unpublished(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        relay.stop()
    assert sorted(p["n"] for p in seen) == [0, 1, 2]
    assert _unpublished(engine) == 0


def test_a_nudged_pass_publishes_more_than_one_batch(
    session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass goes on while full batches come back, so a backlog larger than a batch is
    published by one nudge, in order, each event once."""
    monkeypatch.setattr(events, "RELAY_BATCH", 3)
    for n in range(8):
        events.record(session, "test.relayed", {"n": n}, at=factories.NOW)
    session.commit()
    seen: list[dict[str, Any]] = []
    relay = _relay(engine, seen, interval=3600)  # only a nudge wakes it
    relay.start()
    try:
        assert relay.drain(timeout=10)
    finally:
        relay.stop()
    assert [p["n"] for p in seen] == list(range(8))
    assert _unpublished(engine) == 0


@pytest.mark.parametrize("how", ["nudged", "urgent"])
def test_a_writer_goes_on_while_the_subscribers_run(
    session: Session, engine: Engine, how: str
) -> None:
    """The subscribers (a search index refresh and its commit) run with no write lock held,
    in the relay's thread after a nudge and in the request's own thread for an urgent event:
    on SQLite, whose one write lock covers the whole database, a pass that held it kept
    every kiosk and desk waiting for the index."""
    started, writer_done = threading.Event(), threading.Event()
    waited: list[bool] = []

    def slow_subscriber(_topic: str, _payload: dict[str, Any]) -> None:
        started.set()
        waited.append(writer_done.wait(10))

    handlers = {"test.relayed": [slow_subscriber]}
    relay = events.Relay(
        make_session_factory(engine),
        make_session_factory(engine, read_only=True),
        handlers,
        {},
        interval=3600,
    )
    relay.start()
    events.record(session, "test.relayed", {"n": 1}, at=factories.NOW, urgent=how == "urgent")
    session.commit()
    if how == "urgent":  # the request publishes before it answers, in its own thread
        publisher = threading.Thread(
            target=events.publish_after_commit, args=(session, relay, handlers, {})
        )
        publisher.start()
    else:
        relay.nudge()

    publisher_waiting: list[bool] = []

    def write() -> None:
        with make_session_factory(engine)() as other:
            events.record(other, "test.elsewhere", {"n": 2}, at=factories.NOW)
            other.commit()
        # the request answers only once its urgent event was handed over (looked at before
        # the subscriber is let go: after it, the publisher may end at any moment)
        publisher_waiting.append(how != "urgent" or publisher.is_alive())
        writer_done.set()

    try:
        assert started.wait(10)
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(5)
        went_on = not writer.is_alive()
    finally:
        writer_done.set()  # let the subscriber and a held-up writer finish either way
        if how == "urgent":
            publisher.join(40)
    drained = relay.drain(timeout=40)
    relay.stop()
    assert went_on, "the write waited for the subscriber"
    assert publisher_waiting == [True]
    assert drained and waited == [True]
    assert _unpublished(engine) == 0


def test_two_relays_hand_each_event_over_once(session: Session, engine: Engine) -> None:
    """Two processes' relays (here two relays, each with its own lock file handle) take turns:
    on SQLite through a lock file, on PostgreSQL by skipping the rows the other holds. Passes
    that overlapped handed every event over once per relay."""
    seen: list[int] = []
    lock = threading.Lock()

    def slow(_topic: str, payload: dict[str, Any]) -> None:
        time.sleep(0.01)  # as an index refresh takes a while: passes would overlap
        with lock:
            seen.append(payload["n"])

    relays = [
        events.Relay(
            make_session_factory(engine),
            make_session_factory(engine, read_only=True),
            {"test.relayed": [slow]},
            {},
            interval=0.02,
        )
        for _ in range(2)
    ]
    for r in relays:
        r.start()
    try:
        for n in range(40):
            events.record(session, "test.relayed", {"n": n}, at=factories.NOW)
            session.commit()
            for r in relays:
                r.nudge()
            time.sleep(0.005)
        deadline = time.monotonic() + 20
        while _unpublished(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for r in relays:
            r.stop()
    assert sorted(seen) == list(range(40))


def test_a_relay_takes_only_the_topics_it_serves(session: Session, engine: Engine) -> None:
    """The SIP2 server's relay serves the search index only: a building alarm's event is
    left to the web app's relay, which has the linkage, instead of being marked published
    with nobody told."""
    index_seen: list[str] = []
    linkage_seen: list[str] = []
    events.record(session, "test.index", {"n": 1}, at=factories.NOW)
    events.record(session, "test.alarm", {"n": 2}, at=factories.NOW)
    session.commit()
    narrow = events.Relay(
        make_session_factory(engine),
        make_session_factory(engine, read_only=True),
        {"test.index": [lambda topic, _p: index_seen.append(topic)]},
        {},
        interval=3600,
        topics={"test.index"},
    )
    narrow.publish_now()
    assert index_seen == ["test.index"]
    assert _unpublished(engine) == 1  # the alarm waits
    everything = events.Relay(
        make_session_factory(engine),
        make_session_factory(engine, read_only=True),
        {"test.alarm": [lambda topic, _p: linkage_seen.append(topic)]},
        {},
        interval=3600,
    )
    everything.publish_now()
    assert linkage_seen == ["test.alarm"]
    assert _unpublished(engine) == 0


def test_a_pass_starts_at_most_once_a_gap_and_takes_what_came_meanwhile(
    session: Session, engine: Engine
) -> None:
    """Each pass refreshes the search index, which is costly: events committed within the
    gap since a pass began are published together by one pass when the gap is over; an
    event that comes when no pass began for a gap is published at once."""
    gap = 1.0
    delivered: dict[int, float] = {}
    first_pass_may_end = threading.Event()

    def subscriber(_topic: str, payload: dict[str, Any]) -> None:
        delivered[payload["n"]] = time.monotonic()
        if payload["n"] == 0:
            first_pass_may_end.wait(10)

    def commit(n: int) -> float:
        """When the relay was told: a pass for this event begins no earlier."""
        events.record(session, "test.relayed", {"n": n}, at=factories.NOW)
        session.commit()
        told_at = time.monotonic()
        relay.nudge()
        return told_at

    relay = events.Relay(
        make_session_factory(engine),
        make_session_factory(engine, read_only=True),
        {"test.relayed": [subscriber]},
        {},
        interval=3600,
        gap=gap,
    )
    relay.start()
    try:
        first_told = commit(0)
        deadline = time.monotonic() + 10
        while 0 not in delivered and time.monotonic() < deadline:
            time.sleep(0.01)
        for n in range(1, 6):  # five requests commit while the pass runs
            commit(n)
        first_pass_may_end.set()
        assert relay.drain(timeout=10)
        time.sleep(gap)  # a quiet moment
        quiet_at = commit(6)
        assert relay.drain(timeout=10)
        commit(7)  # just after a pass began
        assert relay.drain(timeout=10)
    finally:
        relay.stop()
    assert sorted(delivered) == list(range(8))
    later = [delivered[n] for n in range(1, 6)]
    # the next pass waited out the gap since the first began (which was after it was told;
    # delivery itself may lag under load, so the first delivery is no clock for this)
    assert min(later) - first_told >= gap * 0.95
    assert max(later) - min(later) < gap / 2  # and took all five at once
    assert delivered[6] - quiet_at < gap / 2  # a quiet moment's event: at once
    assert delivered[7] - quiet_at >= gap * 0.95  # within the gap: after it
    assert _unpublished(engine) == 0
