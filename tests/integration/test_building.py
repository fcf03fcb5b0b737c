"""Building sensors through the real MQTT broker: a reading published by a sensor raises an
alarm without waiting for the batch tick; a linkage rule publishes a command that a device
subscribed to the broker receives; a device gone silent raises an offline alarm."""

from __future__ import annotations

import datetime as dt
import json
import queue
import socket
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from biblioverse import accounts, libraries
from biblioverse.building import service
from biblioverse.building.linkage import COMMAND_TOPIC, Linkage, mqtt_publisher
from biblioverse.building.models import Alarm
from biblioverse.db import make_session_factory
from biblioverse.devices.models import DeviceHealth
from tests.factories import NOW, World, world
from tests.integration.rfid_support import BROKER, ingesting

T = NOW - dt.timedelta(minutes=1)


def _zone(session: Session, w: World) -> tuple[int, int, int]:
    loc = libraries.add_location(
        session,
        None,
        w.central,
        libraries.LocationInput("3F-ANC", 3, "ANC", "Ancient books room", "古籍阅览室"),
        at=NOW,
    )
    sensor, _ = accounts.create_device_key(
        session, None, name="Climate", kind="sensor", org_unit_id=w.central.id, at=NOW
    )
    fan, _ = accounts.create_device_key(
        session, None, name="Dehumidifier", kind="robot", org_unit_id=w.central.id, at=NOW
    )
    admin = w.actor(session, w.admin)
    service.place_sensor(session, admin, device_id=sensor.id, location_id=loc.id, at=NOW)
    service.set_threshold(
        session, admin, location_id=loc.id, metric="humidity", low=45, high=55, at=NOW
    )
    ids = (loc.id, sensor.id, fan.id)
    session.commit()
    return ids


def _drying_rule(session: Session, **args: object) -> tuple[World, int, int, int]:
    """The world, and a zone whose humidity rule commands its dehumidifier over MQTT:
    (world, zone, sensor, dehumidifier)."""
    w = world(session)
    loc, sensor, fan = _zone(session, w)
    service.add_rule(
        session,
        w.actor(session, w.admin),
        w.central.id,
        service.RuleInput(
            name="Dry the ancient books room",
            metric="humidity",
            location_id=loc,
            actions=[{"type": "mqtt", "device_id": fan, "command": "dehumidify", "args": args}],
        ),
        at=NOW,
    )
    session.commit()
    return w, loc, sensor, fan


def _open_alarms(engine: Engine) -> list[tuple[str, str | None, float | None]]:
    with make_session_factory(engine)() as s:
        return [
            (a.kind, a.metric, a.last_value)
            for a in s.scalars(select(Alarm).where(Alarm.state.in_(service.OPEN)))
        ]


def test_a_published_reading_raises_an_alarm_without_waiting_for_the_tick(
    engine: Engine, session: Session
) -> None:
    _loc, sensor, _fan = _zone(session, world(session))
    session.rollback()
    # the batch tick is an hour: only a reading's own wake-up can apply it
    with ingesting(engine) as running:
        body = {"seq": 1, "ts": T.isoformat(), "readings": [{"metric": "humidity", "value": 61}]}
        start = time.monotonic()
        running.publish(sensor, json.dumps(body).encode(), what="readings")
        while not _open_alarms(engine) and time.monotonic() - start < 5:
            time.sleep(0.005)
        took = time.monotonic() - start
        assert _open_alarms(engine) == [("threshold", "humidity", 61.0)]
        assert took < 2.0, took
        # garbage on the readings topic is counted on the sensor, never a crash
        running.publish(sensor, b"\xff\xfe not json", what="readings")
        running.publish(sensor, b'{"seq": 2, "ts": 5, "readings": [{"metric": "x"}]}', "readings")
        running.settle(3)
    with make_session_factory(engine)() as s:
        h = s.get(DeviceHealth, sensor)
        assert h is not None and h.error_counts == {"malformed": 2}
        assert h.last_error is not None and "readings[0].metric" in h.last_error


def test_a_linkage_rule_commands_a_device_over_mqtt(engine: Engine, session: Session) -> None:
    w, _loc, sensor, fan = _drying_rule(session, to=50)
    admin = w.actor(session, w.admin)
    got: queue.Queue[tuple[str, bytes | bytearray]] = queue.Queue()
    listener = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fan-{fan}-{time.time_ns()}")
    listener.on_message = lambda _c, _u, m: got.put((m.topic, m.payload))
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(COMMAND_TOPIC.format(device_id=fan), qos=1)
    listener.loop_start()
    time.sleep(0.2)
    try:
        factory = make_session_factory(engine)
        with factory() as s:
            from biblioverse.building.rules import Metric, Reading, ReadingReport

            applied = service.apply_readings(
                s,
                [ReadingReport(sensor, 1, T, (Reading(Metric.HUMIDITY, 60.0),))],
                at=NOW,
                devices={sensor: "sensor"},
                health={},
            )
            s.commit()
        [alarm_id] = applied.raised
        linkage = Linkage(factory, publish=mqtt_publisher(BROKER))
        assert linkage.run(alarm_id, "raised") == [
            ("mqtt", "done", f"published to biblioverse/v1/devices/{fan}/commands")
        ]
        topic, payload = got.get(timeout=5)
        command = json.loads(payload)
        assert topic == f"biblioverse/v1/devices/{fan}/commands"
        assert (command["command"], command["args"]) == ("dehumidify", {"to": 50})
        assert (command["alarm"]["zone"], command["alarm"]["value"]) == ("3F-ANC", 60.0)
        # a broker that is not there: the action says so, and nothing else breaks
        with factory() as s:
            service.resolve(s, admin, alarm_id, at=NOW)
            again = service.apply_readings(
                s,
                [ReadingReport(sensor, 2, NOW, (Reading(Metric.HUMIDITY, 62.0),))],
                at=NOW,
                devices={sensor: "sensor"},
                health={},
            )
            s.commit()
        down = Linkage(factory, publish=mqtt_publisher("mqtt://127.0.0.1:1"))
        [(kind, status, detail)] = down.run(again.raised[0], "raised")
        assert (kind, status) == ("mqtt", "failed") and detail.startswith("MQTT: ")
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_a_silent_device_raises_an_offline_alarm_until_heard_from(session: Session) -> None:
    w = world(session)
    device, _ = accounts.create_device_key(
        session, None, name="Gate", kind="gate", org_unit_id=w.central.id, at=NOW
    )
    kiosk, _ = accounts.create_device_key(
        session, None, name="Kiosk", kind="kiosk", org_unit_id=w.central.id, at=NOW
    )
    for d in (device, kiosk):
        session.add(
            DeviceHealth(
                device_id=d.id,
                heartbeat_at=NOW,
                messages=1,
                reads=0,
                errors=0,
                last_seq=1,
                error_counts={},
            )
        )
    session.flush()
    later = NOW + dt.timedelta(minutes=4)
    assert service.check_offline(session, at=later).raised == []
    later = NOW + dt.timedelta(minutes=6)
    judged = service.check_offline(session, at=later)
    assert len(judged.raised) == 1  # the gate; a kiosk's silence is SIP2's business
    alarm = session.get(Alarm, judged.raised[0])
    assert alarm is not None and (alarm.kind, alarm.device_id) == ("offline", device.id)
    assert service.check_offline(session, at=later).raised == []  # one alarm, not one a minute
    h = session.get(DeviceHealth, device.id)
    assert h is not None
    h.heartbeat_at = later
    assert service.check_offline(session, at=later).resolved == [alarm.id]
    assert (alarm.state, alarm.note) == ("resolved", "heard from again")


def test_a_failed_linkage_action_is_tried_again_until_it_goes_through(
    engine: Engine, session: Session
) -> None:
    """The broker is down when the alarm is raised: the command is tried again after 1 and
    5 minutes, and reaches the device once the broker is back. An action that keeps failing
    is given up after 5 attempts; a raising action whose alarm was resolved meanwhile is not
    sent late; two processes sweeping at once send an action once."""
    from biblioverse.building.linkage import LEASE, RETRY_AFTER
    from biblioverse.building.models import AlarmAction
    from biblioverse.building.rules import Metric, Reading, ReadingReport

    w, _loc, sensor, fan = _drying_rule(session)
    admin = w.actor(session, w.admin)
    factory = make_session_factory(engine)
    now = [NOW]
    seq = [0]

    def raise_alarm() -> int:
        seq[0] += 1
        with factory() as s:
            for a in s.scalars(select(Alarm).where(Alarm.state.in_(service.OPEN))):
                service.resolve(s, admin, a.id, at=now[0])
            applied = service.apply_readings(
                s,
                [ReadingReport(sensor, seq[0], now[0], (Reading(Metric.HUMIDITY, 61.0),))],
                at=now[0],
                devices={sensor: "sensor"},
                health={},
            )
            s.commit()
        [alarm_id] = applied.raised
        return alarm_id

    def action_of(alarm_id: int) -> AlarmAction:
        with factory() as s:
            row = s.scalars(select(AlarmAction).where(AlarmAction.alarm_id == alarm_id)).one()
            s.expunge(row)
            return row

    def later(delay: dt.timedelta) -> None:
        now[0] += delay + dt.timedelta(seconds=1)

    clock = lambda: now[0]  # noqa: E731
    down = Linkage(factory, publish=mqtt_publisher("mqtt://127.0.0.1:1"), clock=clock)
    up = Linkage(factory, publish=mqtt_publisher(BROKER), clock=clock)
    got: queue.Queue[bytes | bytearray] = queue.Queue()
    listener = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fan-{time.time_ns()}")
    listener.on_message = lambda _c, _u, m: got.put(m.payload)
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(COMMAND_TOPIC.format(device_id=fan), qos=1)
    listener.loop_start()
    time.sleep(0.2)
    try:
        first = raise_alarm()
        [(_kind, status, _detail)] = down.run(first, "raised")
        row = action_of(first)
        assert (status, row.attempts, row.next_at) == ("failed", 1, now[0] + RETRY_AFTER[0])
        assert down.retry_due() == []  # not yet
        later(RETRY_AFTER[0])
        [(row_id, status, detail)] = down.retry_due()
        assert (row_id, status) == (row.id, "failed") and detail.startswith("MQTT: ")
        assert action_of(first).next_at == now[0] + RETRY_AFTER[1]
        later(RETRY_AFTER[1])
        assert up.retry_due() == [
            (row.id, "done", f"published to {COMMAND_TOPIC}".format(device_id=fan))
        ]
        assert json.loads(got.get(timeout=5))["command"] == "dehumidify"
        row = action_of(first)
        assert (row.status, row.attempts, row.next_at) == ("done", 3, None)
        assert up.retry_due() == []

        # always down: five attempts, then given up
        second = raise_alarm()
        down.run(second, "raised")
        for delay in RETRY_AFTER:
            later(delay)
            down.retry_due()
        row = action_of(second)
        assert (row.status, row.attempts, row.next_at) == ("failed", 5, None)
        assert row.detail.startswith("gave up after 5 attempts: MQTT: ")

        # resolved before the broker came back: the command to dry the room is not sent
        third = raise_alarm()
        down.run(third, "raised")
        with factory() as s:
            service.resolve(s, admin, third, at=now[0])
            s.commit()
        later(RETRY_AFTER[0])
        assert up.retry_due() == [
            (action_of(third).id, "failed", "not sent: the alarm was resolved first")
        ]

        assert got.empty()  # nothing late reached the device

        # a process that ended mid-action leaves it pending: tried again after the lease,
        # by whichever process claims it first; one that found it due at the same moment
        # (before that claim) does not get it
        fourth = raise_alarm()
        down.run(fourth, "raised")
        with factory() as s:
            s.execute(
                update(AlarmAction)
                .where(AlarmAction.alarm_id == fourth)
                .values(status="pending", next_at=now[0] + LEASE)
            )
            s.commit()
        later(LEASE)
        seen = action_of(fourth).next_at
        assert seen is not None
        [(row_id, status, _detail)] = up.retry_due()
        assert status == "done" and json.loads(got.get(timeout=5))["command"] == "dehumidify"
        other = Linkage(factory, publish=mqtt_publisher(BROKER), clock=clock)
        assert other._claim(row_id, seen, now[0]) is None
        assert other.retry_due() == [] and action_of(fourth).attempts == 2
        time.sleep(0.3)
        assert got.empty()
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_a_broker_that_takes_the_connection_and_never_answers_fails_the_action_in_time() -> None:
    """Else a linkage worker (or the retry sweep) would wait on it for ever."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        send = mqtt_publisher(f"mqtt://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not acknowledge within 0\.5 s"):
            send(COMMAND_TOPIC.format(device_id=1), b"{}")
        assert time.monotonic() - start < 3
