"""The outbox's events through NATS JetStream, when several nodes serve one database (ADR 0034).

The outbox stays the source of truth, written in the business transaction. A relay pass
publishes its events to one stream (subject ``<subject>.<topic>``, the JetStream message id
the outbox id, so a republish after a crash falls in the duplicate window and is dropped) and
marks them published only once JetStream acknowledged them all. Every node then follows the
stream through two durable pull consumers:

- ``node-<name>``, its own: the subscribers of scope "node" (the search index) run on every
  node, and a node that was down takes up where it stopped;
- ``once``, shared by all nodes: each event goes to one of them, for the subscribers of scope
  "once"; a table of handled events (consumer, event id) skips an event delivered again.

NATS's client is asyncio; a :class:`Link` keeps one connection in a thread with its own event
loop, and the relay (a thread) and the subscribers (sync, with their own sessions) are called
across it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple, TypeVar

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    StorageType,
    StreamConfig,
)
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from biblioverse import events
from biblioverse.db import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
ONCE = "once"
DUPLICATE_WINDOW_S = 120.0
ACK_WAIT_S = 30.0
FETCH_BATCH = 500
CLOCK_MARGIN = dt.timedelta(minutes=1)


class Event(NamedTuple):
    """An event as the stream delivers it: the outbox row's id, topic and payload."""

    id: int
    topic: str
    payload: dict[str, Any]


def node_consumer(node: str) -> str:
    return f"node-{node}"


class Link:
    """One connection to NATS JetStream for a process, in a thread of its own.

    ``stream`` and ``subject`` name the stream and its subjects' prefix; ``max_age_s``: how
    long the stream keeps events (a node down longer rebuilds its index)."""

    def __init__(
        self, url: str, *, stream: str, subject: str, max_age_s: float = 7 * 86_400
    ) -> None:
        self._url, self.stream, self.subject, self._max_age_s = url, stream, subject, max_age_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ready: asyncio.Event | None = None
        self._stopping = False
        self._tasks: list[Future[None]] = []
        self._own: set[asyncio.Task[None]] = set()  # connecting and following
        self._said: dict[str, float] = {}  # errors logged, when

    # --- the connection, in the link's thread --------------------------------------------

    def start(self) -> None:
        """Start the thread and connect in the background (NATS may come up later)."""
        self._thread.start()
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._connect(), self._loop))

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _mine(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._own.add(task)

    async def _connect(self) -> None:
        self._mine()
        self._ready = asyncio.Event()
        while not self._stopping:
            nc: Client | None = None
            try:
                nc = await nats.connect(
                    self._url,
                    name="biblioverse",
                    max_reconnect_attempts=-1,  # once connected, keep trying for ever
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    allow_reconnect=True,
                    error_cb=self._error,
                )
                js = nc.jetstream(timeout=5)
                await self._ensure_stream(js)
            except Exception as exc:  # not there yet: the outbox keeps the events meanwhile
                log.warning("NATS at %s not usable (%s); trying again", self._url, exc)
                if nc is not None:  # connected, but no JetStream (yet)
                    with contextlib.suppress(Exception):
                        await nc.close()
                await asyncio.sleep(1)
                continue
            self._nc, self._js = nc, js
            self._ready.set()
            return

    async def _error(self, exc: Exception) -> None:
        """The client's errors (NATS away: every half second), one line a minute each."""
        said, now = str(exc), time.monotonic()
        if self._said.get(said, -60.0) + 60 <= now:
            self._said[said] = now
            log.warning("NATS at %s: %s", self._url, said or type(exc).__name__)

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.subject}.>"],
                    storage=StorageType.FILE,
                    duplicate_window=DUPLICATE_WINDOW_S,
                    max_age=self._max_age_s,
                )
            )

    async def _ready_js(self, timeout: float) -> JetStreamContext:
        while self._ready is None:  # the connecting task has not run yet
            await asyncio.sleep(0.01)
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self._js is not None
        return self._js

    def wait_connected(self, timeout: float = 10.0) -> None:
        self._call(self._ready_js(timeout), timeout + 1)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following (a batch being handled is delivered again later), close the
        connection and the thread."""
        self._stopping = True
        if self._thread.is_alive():
            try:
                self._call(self._shutdown(), timeout)
            except Exception:
                log.exception("closing the NATS connection")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    async def _shutdown(self) -> None:
        for task in self._own:
            task.cancel()
        await asyncio.gather(*self._own, return_exceptions=True)
        if self._nc is not None:
            await self._nc.close()

    # --- publishing, called by a relay pass -------------------------------------------------

    def publish(self, rows: Sequence[Any], timeout: float = 10.0) -> None:
        """Publish outbox rows (id, topic, payload), in order; returns once JetStream
        acknowledged every one, raises if any was not (the pass marks nothing)."""
        if rows:
            self._call(self._publish(rows, timeout), timeout + 5)

    async def _publish(self, rows: Sequence[Any], timeout: float) -> None:
        js = self._js
        if js is None:  # never connected yet: the next pass tries again, a request waits not
            raise ConnectionError(f"not connected to NATS at {self._url}")
        pending = [
            await js.publish_async(
                f"{self.subject}.{row.topic}",
                orjson.dumps(
                    {
                        "id": row.id,
                        "topic": row.topic,
                        "payload": events.for_other_processes(row.payload),
                    }
                ),
                headers={"Nats-Msg-Id": str(row.id)},
            )
            for row in rows
        ]
        await asyncio.wait_for(asyncio.gather(*pending), timeout)

    # --- following the stream -----------------------------------------------------------------

    def follow(
        self,
        durable: str,
        handle: Callable[[list[Event]], None],
        *,
        since: dt.datetime | None = None,
        on_gap: Callable[[int], None] | None = None,
    ) -> None:
        """Pull the stream through the durable consumer ``durable`` and hand each batch to
        ``handle`` in a worker thread; the batch is acknowledged once it returned. A handler
        that raises leaves the batch unacknowledged: JetStream delivers it again after the
        ack wait. A consumer that does not exist yet is created to start from the stream's
        first event, or from ``since`` (a minute before, for clocks that differ): a node's
        index rebuilt then holds what came before. One that exists goes on where it was.

        ``on_gap``: called (in a worker thread, before anything more is handled) with the
        number of events the stream no longer keeps that this consumer had not taken (it was
        away longer than the stream keeps events), so that what it keeps can be rebuilt."""
        self._tasks.append(
            asyncio.run_coroutine_threadsafe(
                self._follow(durable, handle, since, on_gap), self._loop
            )
        )

    async def _missed(self, js: JetStreamContext, durable: str) -> int:
        """Events gone from the stream before the existing consumer ``durable`` took them."""
        try:
            info = await js.consumer_info(self.stream, durable)
        except nats.js.errors.NotFoundError:
            return 0  # created now: it starts where it should
        first = (await js.stream_info(self.stream)).state.first_seq
        return missed(info, first, now=utcnow(), max_age_s=self._max_age_s)

    async def _follow(
        self,
        durable: str,
        handle: Callable[[list[Event]], None],
        since: dt.datetime | None,
        on_gap: Callable[[int], None] | None,
    ) -> None:
        self._mine()
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL if since is None else DeliverPolicy.BY_START_TIME,
            opt_start_time=None if since is None else since - CLOCK_MARGIN,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_S,
            max_ack_pending=20 * FETCH_BATCH,
        )
        while not self._stopping:
            try:
                js = await self._ready_js(3600)
                gone = await self._missed(js, durable) if on_gap is not None else 0
                if gone and on_gap is not None:
                    log.warning(
                        "%s missed %d events the stream no longer keeps; rebuilding", durable, gone
                    )
                    await asyncio.to_thread(on_gap, gone)
                sub = await js.pull_subscribe(
                    f"{self.subject}.>", durable=durable, stream=self.stream, config=config
                )
                try:
                    while not self._stopping:
                        try:
                            msgs = await sub.fetch(FETCH_BATCH, timeout=1)
                        except (nats.errors.TimeoutError, TimeoutError):
                            continue  # nothing new within the second
                        await asyncio.to_thread(handle, [_event(m) for m in msgs])
                        for m in msgs:
                            await m.ack()
                finally:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the NATS stream as %s; trying again", durable)
                await asyncio.sleep(1)


def missed(info: ConsumerInfo, first_seq: int, *, now: dt.datetime, max_age_s: float) -> int:
    """How many events a durable consumer lost to the stream's age limit: those between
    what it acknowledged last and the stream's first. A consumer that never acknowledged
    anything lost the events before the first only if it started from the beginning, or is
    older than what the stream keeps (one that starts from a time missed nothing younger)."""
    acked = info.ack_floor.stream_seq if info.ack_floor is not None else 0
    gone = max(0, first_seq - acked - 1)
    if acked or not gone:
        return gone
    if info.config.deliver_policy in (None, DeliverPolicy.ALL):
        return gone
    created = info.created
    if created is not None and created < now - dt.timedelta(seconds=max_age_s):
        return gone
    return 0


def _event(msg: Msg) -> Event:
    body = orjson.loads(msg.data)
    return Event(int(body["id"]), str(body["topic"]), dict(body["payload"]))


# --- the two kinds of consumer -------------------------------------------------------------


def node_handler(
    handlers: Mapping[str, Sequence[events.Subscriber]], merge: Mapping[str, events.Merger]
) -> Callable[[list[Event]], None]:
    """This node's state (its search index): the subscribers of scope "node", a batch at a
    time with the mergeable topics merged, as a relay pass on one machine does. A refresh
    reads the records as they are now, so an event delivered again changes nothing."""

    def handle(batch: list[Event]) -> None:
        events.deliver_rows(batch, handlers=handlers, merge=merge, scope="node")

    return handle


def once_handler(
    factory: Callable[[], Session],
    handlers: Mapping[str, Sequence[events.Subscriber]],
    consumer: str = ONCE,
) -> Callable[[list[Event]], None]:
    """Work done once (alarms, linkage actions): the subscribers of scope "once", an event
    at a time, each written down in ``handled_events`` after its subscribers ran; an event
    already written down (delivered again after a crash or an ack that was lost) is
    skipped."""

    def handle(batch: list[Event]) -> None:
        if not any(events.subscribers_of(e.topic, handlers, "once") for e in batch):
            return
        with factory() as session:
            done = set(
                session.scalars(
                    select(events.HandledEvent.event_id).where(
                        events.HandledEvent.consumer == consumer,
                        events.HandledEvent.event_id.in_([e.id for e in batch]),
                    )
                )
            )
        for event in batch:
            if event.id in done or not events.subscribers_of(event.topic, handlers, "once"):
                continue  # handled already, or nothing to do once (a loan's index refresh)
            events.deliver_rows([event], handlers=handlers, scope="once")
            with factory() as session:
                session.execute(
                    insert(events.HandledEvent).values(
                        consumer=consumer, event_id=event.id, handled_at=utcnow()
                    )
                )
                session.commit()
            done.add(event.id)

    return handle
