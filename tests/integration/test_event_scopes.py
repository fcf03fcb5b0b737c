"""Whom a subscriber works for (ADR 0034), and a relay whose events go elsewhere: each
subscriber declared, a delivery that fails leaves its events in the outbox."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from biblioverse import accounts, events, jetstream
from biblioverse.building import service as building
from biblioverse.building.models import Alarm
from biblioverse.building.subscribers import GateAlarms
from biblioverse.catalog.indexing import RECORDS_CHANGED
from biblioverse.db import make_session_factory
from biblioverse.settings import Settings
from tests import factories


def test_every_subscriber_of_the_app_says_whom_it_works_for(app: FastAPI) -> None:
    handlers = app.state.event_handlers
    scopes = {topic: {events.scope_of(h) for h in hs} for topic, hs in handlers.items()}
    assert scopes == {
        RECORDS_CHANGED: {"node"},  # each node's own search index
        "alarm.raised": {"once"},  # linkage actions
        "alarm.resolved": {"once"},
        "gate.alarm": {"once"},  # an alarm in the shared database
    }


def test_a_scope_picks_its_subscribers_and_none_picks_all() -> None:
    seen: list[str] = []

    def per_node(topic: str, payload: dict[str, Any]) -> None:
        seen.append("node")

    def once(topic: str, payload: dict[str, Any]) -> None:
        seen.append("once")

    handlers = {"t": [events.declare(per_node, "node"), events.declare(once, "once")]}
    rows = [events.OutboxEvent(id=1, topic="t", payload={})]
    for scope in ("node", "once", None):
        events.deliver_rows(rows, handlers=handlers, scope=scope)
    assert seen == ["node", "once", "node", "once"]


def _unpublished(engine: Engine) -> int:
    """This test's events not published (another test's may wait in the outbox too)."""
    with make_session_factory(engine)() as s:
        q = select(func.count()).where(
            events.OutboxEvent.published_at.is_(None),
            events.OutboxEvent.topic == "test.streamed",
        )
        return int(s.scalar(q) or 0)


def test_a_delivery_that_fails_marks_nothing_and_one_that_succeeds_marks_all(
    session: Session, engine: Engine
) -> None:
    for n in range(3):
        events.record(session, "test.streamed", {"n": n}, at=factories.NOW)
    session.commit()
    sent: list[int] = []

    def broker_away(rows: Sequence[Any]) -> None:
        raise ConnectionError("no NATS")

    def broker(rows: Sequence[Any]) -> None:
        sent.extend(r.payload["n"] for r in rows if r.topic == "test.streamed")

    relay = events.Relay(
        make_session_factory(engine),
        make_session_factory(engine, read_only=True),
        {},
        {},
        interval=3600,
        deliver=broker_away,
    )
    relay.publish_now()  # logged, not raised: the next pass tries again
    assert _unpublished(engine) == 3
    relay = events.Relay(
        make_session_factory(engine),
        make_session_factory(engine, read_only=True),
        {},
        {},
        interval=3600,
        deliver=broker,
    )
    relay.publish_now()
    assert sent == [0, 1, 2]
    assert _unpublished(engine) == 0


@pytest.mark.parametrize(
    ("node", "index"), [(None, "index/catalog"), ("east", "nodes/east/index/catalog")]
)
def test_a_named_node_keeps_its_index_in_its_own_folder(
    tmp_path: Path, node: str | None, index: str
) -> None:
    settings = Settings(data_dir=tmp_path, node=node)
    assert settings.index_dir == tmp_path / index
    # unnamed, the consumer is named after the host, made fit for a NATS name
    assert settings.node_name == node or re.fullmatch(r"[A-Za-z0-9_-]+", settings.node_name)
    assert settings.nats_url is None  # one machine unless told


def test_a_gate_alarm_delivered_again_by_the_stream_raises_no_second_alarm(
    session: Session, engine: Engine
) -> None:
    """The once-work's consumer writes down what it handled: the stream delivering a gate's
    event again (an acknowledgement lost) raises no second alarm."""
    w = factories.world(session)
    [item] = factories.copies(session, w, "A Book", ["G-1"])
    gate, _key = accounts.create_device_key(
        session, None, name="Gate", kind="gate", org_unit_id=w.central.id, at=factories.NOW
    )
    at = factories.NOW.isoformat()
    payload = {"device_id": gate.id, "item_id": item.id, "tag": "E1", "at": at}
    session.commit()
    factory = make_session_factory(engine)
    alarms = events.declare(GateAlarms(factory), "once")
    handle = jetstream.once_handler(factory, {"gate.alarm": [alarms]})
    event = jetstream.Event(7, "gate.alarm", payload)
    handle([event])
    handle([event])  # delivered again
    assert session.scalar(select(func.count()).select_from(Alarm)) == 1


def test_a_gate_alarm_delivered_again_after_a_crash_raises_no_second_alarm(
    session: Session, engine: Engine
) -> None:
    """A node that died between the alarm's commit and the handled_events row's gets the
    event again with nothing written down: the open alarm of that gate and copy is its key,
    so no second alarm. Once staff resolved it, the copy at the gate again is a new alarm."""
    w = factories.world(session)
    [item] = factories.copies(session, w, "A Book", ["G-1"])
    gate, _key = accounts.create_device_key(
        session, None, name="Gate", kind="gate", org_unit_id=w.central.id, at=factories.NOW
    )
    session.commit()
    payload = {"device_id": gate.id, "item_id": item.id, "tag": "E1"}
    alarms = GateAlarms(make_session_factory(engine))
    alarms("gate.alarm", {**payload, "at": factories.NOW.isoformat()})
    alarms("gate.alarm", {**payload, "at": factories.NOW.isoformat()})  # no handled row
    [first] = session.scalars(select(Alarm)).all()
    assert first.state == "raised"
    building.resolve(
        session, w.actor(session, w.admin), first.id, note="brought back", at=factories.NOW
    )
    session.commit()
    later = factories.NOW + dt.timedelta(hours=1)
    alarms("gate.alarm", {**payload, "at": later.isoformat()})
    states = sorted(
        a.state for a in session.scalars(select(Alarm).execution_options(populate_existing=True))
    )
    assert states == ["raised", "resolved"]
