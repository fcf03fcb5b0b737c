"""Domain events through a transactional outbox.

A service records an event in the same transaction as the change it describes; after the
commit, :func:`dispatch_pending` hands unpublished events to the subscribers and marks
them published. Subscribers (real-time pages, the search index, notifications) never reach
into another context's tables. In-process dispatch is the default; with several nodes the
relay publishes to a NATS JetStream stream instead, which every node follows
(:mod:`biblioverse.jetstream`, ADR 0034), and each subscriber says whom it works for.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, cast

from sqlalchemy import Integer, String, Table, bindparam, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from biblioverse.db import Base, JSONType, UTCDateTime, utcnow

log = logging.getLogger(__name__)


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class HandledEvent(Base):
    """An event a consumer of the stream handled (ADR 0034): with several nodes, work that
    must happen once is skipped when the stream delivers its event again."""

    __tablename__ = "handled_events"

    consumer: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


Subscriber = Callable[[str, dict[str, Any]], None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)

# Who a subscriber works for when several nodes follow the events (ADR 0034): "node", state
# each node keeps for itself (its search index), run on every node; "once", work with an
# effect in the shared database or the world (an alarm, a linkage action, a notice), run by
# one node. On one machine without NATS every subscriber runs, as before.
Scope = Literal["node", "once"]
_scopes: weakref.WeakKeyDictionary[Subscriber, Scope] = weakref.WeakKeyDictionary()


def record(
    session: Session, topic: str, payload: dict[str, Any], *, at: dt.datetime, urgent: bool = False
) -> None:
    """Record an event in the session's transaction. An urgent event is published as soon as
    the request commits, before it answers (a cataloguer expects to find the record they just
    saved); the others are left to the process's :class:`Relay`, which publishes many at once
    (availability after a loan shows in search a moment later)."""
    if not session.in_transaction():
        session.begin()  # as adding a row would: a rollback or close now drops the event
    rows = session.info.get(_ROWS)
    if rows is None:
        rows = session.info[_ROWS] = []
    rows.append({"topic": topic, "payload": payload, "created_at": at, "published_at": None})
    session.info["outbox_pending"] = True
    if urgent:
        session.info["outbox_urgent"] = True


# The events of a transaction wait in the session and are written in one statement when it
# commits: added one by one to the session they went through its unit of work, which a
# check-out felt. An event recorded inside a savepoint that rolls back goes with it.
_ROWS = "outbox_rows"
_MARKS = "outbox_marks"
_OUTBOX = cast(Table, OutboxEvent.__table__)
_INSERT_EVENTS = insert(_OUTBOX)  # built once, sent on the connection (no ORM on the way)


@sa_event.listens_for(Session, "before_commit")
def _write_events(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: the events wait for the transaction's own commit
    rows = session.info.pop(_ROWS, None)
    if rows:
        session.connection().execute(_INSERT_EVENTS, rows)


@sa_event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_ROWS) or ())


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_savepoint_events(session: Session, previous: SessionTransaction) -> None:
    mark = session.info.get(_MARKS, {}).pop(previous, None)
    if previous.nested and mark is not None and session.info.get(_ROWS):
        del session.info[_ROWS][mark:]


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_events(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_ROWS, None)  # rolled back or closed (a commit wrote them)
        session.info.pop(_MARKS, None)


def has_pending(session: Session) -> bool:
    """Whether this session recorded events (so a request without any skips the relay)."""
    session.info.pop("outbox_urgent", None)
    return bool(session.info.pop("outbox_pending", False))


def _kind(session: Session) -> str:
    info = session.info
    return (
        "urgent"
        if info.get("outbox_urgent")
        else ("deferred" if info.get("outbox_pending") else "")
    )


def pending_kind(session: Session) -> str:
    """ "urgent", "deferred" or "" (none): what this session recorded since last asked."""
    kind = _kind(session)
    session.info.pop("outbox_urgent", None)
    session.info.pop("outbox_pending", None)
    return kind


def _delivered_here(kind: str, relay: Relay | None) -> bool:
    return kind == "urgent" or (bool(kind) and relay is None)


def subscribe(topic: str, handler: Subscriber, *, scope: Scope = "once") -> None:
    """Register a handler for a topic ("*" for all). Handlers must be idempotent. ``scope``:
    whom it works for when several nodes follow the stream (:data:`Scope`)."""
    _subscribers[topic].append(handler)
    _scopes[handler] = scope


def declare(handler: Subscriber, scope: Scope) -> Subscriber:
    """Say whom an app's own handler (``app.state.event_handlers``) works for; the handler."""
    _scopes[handler] = scope
    return handler


# Payload keys that hold only in the process that recorded the event (an import's records
# already in its own search index): the stream to other nodes leaves them out (ADR 0034).
_local_keys: set[str] = set()


def process_local(key: str) -> None:
    """Declare a payload key a hint for the recording process only."""
    _local_keys.add(key)


def for_other_processes(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without its process-local hints (:func:`process_local`)."""
    if not _local_keys.intersection(payload):
        return payload
    return {k: v for k, v in payload.items() if k not in _local_keys}


def scope_of(handler: Subscriber) -> Scope:
    """A handler's scope; one never declared runs once (its effect is not doubled)."""
    return _scopes.get(handler, "once")


Merger = Callable[[list[dict[str, Any]]], dict[str, Any]]
# Hands a batch of outbox rows (id, topic, payload) on, or raises (ADR 0034).
Deliver = Callable[[Sequence[Any]], None]


_UNPUBLISHED = (
    select(_OUTBOX.c.id, _OUTBOX.c.topic, _OUTBOX.c.payload)
    .where(_OUTBOX.c.published_at.is_(None))
    .order_by(_OUTBOX.c.id)
    .limit(bindparam("limit"))
    # Several workers may relay at once: each takes rows the others have not locked.
    .with_for_update(skip_locked=True)
)


# A relay that serves only some topics (the SIP2 server's: the search index) takes only
# those, and leaves the others to the web app's relay, which serves them all: taken and
# marked by a relay without their subscribers, a building alarm's linkage never ran.
_UNPUBLISHED_OF = _UNPUBLISHED.where(_OUTBOX.c.topic.in_(bindparam("topics", expanding=True)))
_ANY_UNPUBLISHED = select(OutboxEvent.id).where(OutboxEvent.published_at.is_(None)).limit(1)
_ANY_UNPUBLISHED_OF = _ANY_UNPUBLISHED.where(
    OutboxEvent.topic.in_(bindparam("topics", expanding=True))
)


def _unpublished(session: Session, limit: int, topics: Collection[str] | None) -> Sequence[Any]:
    if topics is None:
        return session.execute(_UNPUBLISHED, {"limit": limit}).all()
    return session.execute(_UNPUBLISHED_OF, {"limit": limit, "topics": sorted(topics)}).all()


def _any_unpublished(session: Session, topics: Collection[str] | None) -> bool:
    if topics is None:
        return session.scalar(_ANY_UNPUBLISHED) is not None
    return session.scalar(_ANY_UNPUBLISHED_OF, {"topics": sorted(topics)}) is not None


def dispatch_pending(
    session: Session,
    *,
    limit: int = 500,
    handlers: Mapping[str, Sequence[Subscriber]] | None = None,
    merge: Mapping[str, Merger] | None = None,
    topics: Collection[str] | None = None,
    deliver: Deliver | None = None,
) -> int:
    """Publish committed events in order; returns how many were published. ``handlers`` are
    the app's own subscribers (an app's search index), beside the process-wide ones. The
    events of a topic in ``merge`` reach their subscribers as one event, its payload merged
    from theirs (many record refreshes, one index commit). ``topics``: only events of these
    (None: all). ``deliver``: where the rows go instead of the subscribers (the NATS
    stream, ADR 0034); it raises if they did not get there, and nothing is marked."""
    # Plain rows, not ORM objects: a relay pass under load takes hundreds of events, and
    # loading and flushing them as objects was most of the relay's time.
    rows = _unpublished(session, limit, topics)
    if deliver is not None:
        deliver(rows)
    else:
        deliver_rows(rows, handlers=handlers, merge=merge)
    mark_published(session, [event.id for event in rows])
    return len(rows)


def subscribers_of(
    topic: str, handlers: Mapping[str, Sequence[Subscriber]], scope: Scope | None = None
) -> list[Subscriber]:
    """A topic's subscribers: the process-wide ones, then the app's own (``handlers``); of
    one scope only when ``scope`` is given."""
    found = [*_subscribers.get(topic, []), *_subscribers.get("*", []), *handlers.get(topic, [])]
    return found if scope is None else [h for h in found if scope_of(h) == scope]


def deliver_rows(
    rows: Sequence[Any],
    *,
    handlers: Mapping[str, Sequence[Subscriber]] | None = None,
    merge: Mapping[str, Merger] | None = None,
    scope: Scope | None = None,
) -> None:
    """Hand outbox rows (id, topic, payload) to their subscribers, in order. ``scope``: only
    the subscribers of that scope (None: all, one machine)."""
    local = handlers or {}
    merged: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def deliver(topic: str, payload: dict[str, Any], what: object) -> None:
        for handler in subscribers_of(topic, local, scope):
            try:
                handler(topic, payload)
            except Exception:  # a broken subscriber must not block the others
                log.exception("subscriber failed for event %s", what)

    for event in rows:
        if merge and event.topic in merge:
            merged[event.topic].append(event.payload)
        else:
            deliver(event.topic, event.payload, event.id)
    for topic, payloads in merged.items():
        deliver(topic, merge[topic](payloads) if merge else {}, f"{topic} x{len(payloads)}")


def mark_published(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(ids), _OUTBOX.c.published_at.is_(None))
            .values(published_at=utcnow())
        )


def publishes_here(session: Session, relay: Relay | None) -> bool:
    """Whether :func:`publish_after_commit` would deliver events in the calling thread
    (urgent ones, or any without a relay) rather than only wake the relay."""
    return _delivered_here(_kind(session), relay)


def publish_after_commit(
    session: Session,
    relay: Relay | None,
    handlers: Mapping[str, Sequence[Subscriber]],
    merge: Mapping[str, Merger],
) -> None:
    """After a unit of work committed: publish its urgent events now (and the others too
    when no relay runs), or wake the relay to publish them a moment later, many at once."""
    kind = pending_kind(session)
    if kind == "urgent" and relay is not None:
        relay.publish_now()  # as a pass of the relay would: on SQLite with no lock held
    elif _delivered_here(kind, relay):
        dispatch_pending(session, handlers=handlers, merge=merge)
        session.commit()
    elif kind and relay is not None:
        relay.nudge()


RELAY_BATCH = 2000
# The least time from one pass's start to the next one's. Each pass refreshes the search
# index (a tantivy writer, a commit, its merges, a reload): passed after every commit, under
# load it took much of a SIP2 server's CPU (ADR 0022). An event that comes when no
# pass began in the last half second is published at once.
RELAY_GAP = 0.5
# The same when a pass only publishes to the NATS stream (ADR 0034): the index is refreshed
# by each node's consumer, so a pass is cheap and a short gap keeps the other nodes current.
STREAM_GAP = 0.05


class Relay:
    """Publishes the events requests leave to it, in a thread of its own: woken after a
    commit (:meth:`nudge`) and every ``interval`` seconds in any case (events of a process
    that stopped, or of a command). While it works, requests go on committing, so under load
    each pass takes many events at once. An event is marked published only after its
    subscribers ran: a crash means a second delivery, never a lost one. ``topics``: the
    events this relay takes (None: all; the web app's relay serves every topic, the SIP2
    server's only the search index's). ``gap``: a pass starts at most that often, and takes
    what came meanwhile (:data:`RELAY_GAP`, :data:`STREAM_GAP` when it delivers to the
    stream). ``deliver``: where a pass hands its events
    instead of the subscribers (the NATS stream when several nodes run, ADR 0034), and
    ``deliver_now`` for a request's urgent pass (the stream, then this node's own
    subscribers, so that the cataloguer finds the record on the node that saved it)."""

    def __init__(
        self,
        factory: Callable[[], Session],
        read_factory: Callable[[], Session],
        handlers: Mapping[str, Sequence[Subscriber]],
        merge: Mapping[str, Merger],
        *,
        interval: float = 1.0,
        topics: Collection[str] | None = None,
        gap: float | None = None,
        deliver: Deliver | None = None,
        deliver_now: Deliver | None = None,
    ) -> None:
        self._factory, self._handlers, self._merge = factory, handlers, merge
        self._deliver, self._deliver_now = deliver, deliver_now or deliver
        self._read_factory = read_factory  # to look without taking SQLite's write lock
        self._interval = interval
        self._gap = gap if gap is not None else (STREAM_GAP if deliver else RELAY_GAP)
        self._topics = frozenset(topics) if topics is not None else None
        # One pass at a time in this process (the relay's thread, a request publishing an
        # urgent event); on SQLite, in every process of the database too (see _passing).
        self._passing_here = threading.Lock()
        with read_factory() as probe:  # no connection: only the engine's URL is read
            url = probe.get_bind().engine.url
        self._sqlite = url.get_backend_name() == "sqlite"
        self._sqlite_file = url.database if self._sqlite and url.database != ":memory:" else None
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stop = False
        self._stopping = threading.Event()  # wakes a relay waiting out its gap
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        self._idle.clear()
        self._wake.set()

    def publish_now(self) -> None:
        """A pass in the calling thread, for events that must be published before a
        request answers (a catalogue edit the cataloguer searches for next): it waits for
        a pass under way in this process, which may be delivering them already."""
        self._pass(look_first=False, deliver=self._deliver_now)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until what was committed before the call is published (tests, shutdown)."""
        self.nudge()
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """End after the pass under way. Events committed after it stay in the outbox for
        the next start (or ``biblioverse`` commands, which relay what they find)."""
        self._stop = True
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            log.warning("outbox relay still busy at shutdown; the outbox keeps what is left")

    def _pass(self, *, look_first: bool, deliver: Deliver | None = None) -> None:
        """Publish what waits. ``look_first``: a pass on the timer first looks, in a reading
        session, whether anything waits (it seldom does), so that on SQLite it does not take
        the write lock for nothing; a pass after a nudge knows there is."""
        try:
            with self._passing_here:
                if self._sqlite:
                    with self._passing():
                        self._pass_outside_the_lock(deliver or self._deliver)
                    return
                if look_first:
                    with self._read_factory() as peek:
                        if not _any_unpublished(peek, self._topics):
                            return
                with self._factory() as session:
                    while True:
                        n = dispatch_pending(
                            session,
                            handlers=self._handlers,
                            merge=self._merge,
                            limit=RELAY_BATCH,
                            topics=self._topics,
                            deliver=deliver or self._deliver,
                        )
                        session.commit()
                        if n < RELAY_BATCH:  # all that was there: no second look for nothing
                            break
        except Exception:  # the database went away: try again on the next pass
            log.exception("outbox relay pass failed")

    @contextmanager
    def _passing(self) -> Iterator[None]:
        """On SQLite, one pass at a time among all processes of the database file (the web
        workers, the SIP2 server): a lock file beside it, held with flock while a pass reads,
        delivers and marks. Passes that overlapped handed every event over once per process,
        each refreshing the index and queueing for its writer. Only relays wait here."""
        if self._sqlite_file is None:
            yield
            return
        fd = os.open(f"{self._sqlite_file}-relay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing lets the lock go

    def _pass_outside_the_lock(self, deliver: Deliver | None) -> None:
        """SQLite has one write lock for the whole database: a pass that held it while the
        subscribers ran (a search index refresh and its commit, tens of milliseconds) kept
        every kiosk and desk waiting. So the events are read in a snapshot, handed to the
        subscribers with no lock held, and marked published in a short write transaction
        of their own; passes take turns through a lock file instead (:meth:`_passing`). An
        event is marked only after its subscribers ran."""
        while True:
            with self._read_factory() as peek:
                rows = _unpublished(peek, RELAY_BATCH, self._topics)
            if not rows:
                return
            if deliver is not None:
                deliver(rows)
            else:
                deliver_rows(rows, handlers=self._handlers, merge=self._merge)
            with self._factory() as session:
                mark_published(session, [event.id for event in rows])
                session.commit()
            if len(rows) < RELAY_BATCH:
                return

    def _run(self) -> None:
        started = -self._gap
        while not self._stop:
            nudged = self._wake.wait(self._interval)
            # within the gap since the last pass began: wait it out, then take it all at once
            self._stopping.wait(started + self._gap - time.monotonic())
            if self._stop:
                break
            self._wake.clear()
            started = time.monotonic()
            self._pass(look_first=not nudged)
            if not self._wake.is_set():
                self._idle.set()
