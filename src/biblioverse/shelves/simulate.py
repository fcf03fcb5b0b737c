"""The demo's building in motion: the smart shelf reader, the gate and the sensors of the
central library publish what real ones would, to the MQTT broker the app listens on.

- The shelf reader publishes a full snapshot of each antenna at the start and every
  `snapshot_every` seconds, and deltas as readers browse: a copy taken from its shelf comes
  back after a while, usually to its own shelf, sometimes to a wrong one (where it stays
  until a librarian moves it: the live page flags it with where it belongs).
- Now and then a copy leaves the shelf and walks to the gate without a loan: the gate asks
  (as a real online gate does, over the API's service) and alarms.
- The climate sensor of the ancient books room drifts; every few minutes the humidity
  rises past 55 % for a while (an alarm is raised, then resolves itself); the other sensors
  report CO2, noise, people and seats.

Every device sends heartbeats. `biblioverse rfid simulate` runs it; `biblioverse demo`
starts it beside the app when a broker answers.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, libraries
from biblioverse.building.models import SensorPlacement
from biblioverse.devices.mqtt import TOPIC_ROOT, mqtt_settings
from biblioverse.shelves.models import Antenna
from biblioverse.shelves.reports import expected_on
from biblioverse.shelves.service import gate_check

log = logging.getLogger(__name__)


@dataclass
class _Shelf:
    antenna: int
    code: str
    tags: set[str]


@dataclass
class _Away:
    tag: str
    home: int  # antenna it was taken from
    back_at: float
    wrong: bool


@dataclass
class World:
    reader: int
    gate: int | None
    shelves: dict[int, _Shelf]
    sensors: dict[str, int]  # zone code -> sensor device id
    devices: list[int]


def load(session: Session, library_code: str = "central") -> World:
    """The demo's shelf reader, its shelves and the copies that belong on them."""
    unit = libraries.get_unit_by_code(session, library_code)
    reader = session.scalar(
        select(accounts.DeviceKey.id)
        .where(accounts.DeviceKey.org_unit_id == unit.id, accounts.DeviceKey.kind == "shelf")
        .order_by(accounts.DeviceKey.id)
    )
    if reader is None:
        raise RuntimeError("the library has no shelf reader: seed the demo first")
    gate = session.scalar(
        select(accounts.DeviceKey.id).where(
            accounts.DeviceKey.org_unit_id == unit.id, accounts.DeviceKey.kind == "gate"
        )
    )
    shelves: dict[int, _Shelf] = {}
    for antenna, shelf in session.execute(
        select(Antenna.antenna, libraries.Shelf)
        .join(libraries.Shelf, libraries.Shelf.id == Antenna.shelf_id)
        .where(Antenna.device_id == reader)
        .order_by(Antenna.antenna)
    ):
        tags = session.scalars(
            select(catalog.Item.rfid_tag).where(
                *expected_on(unit.id, shelf.first_key, shelf.end_key),
                catalog.Item.rfid_tag.is_not(None),
            )
        )
        shelves[antenna] = _Shelf(antenna, shelf.code, {t for t in tags if t})
    sensors = {
        loc: dev
        for dev, loc in session.execute(
            select(SensorPlacement.device_id, libraries.Location.code).join(
                libraries.Location, libraries.Location.id == SensorPlacement.location_id
            )
        )
    }
    devices = [reader, *([gate] if gate else []), *sensors.values()]
    return World(reader, gate, shelves, sensors, devices)


@dataclass
class Simulator:
    factory: Callable[[], Session]
    url: str
    speed: float = 1.0  # how many simulated seconds pass per second
    snapshot_every: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        self._seq: dict[int, int] = {}
        self._stop = threading.Event()
        self.published = 0
        self.walked_out = 0

    def _send(self, client: object, device: int, what: str, body: dict[str, object]) -> None:
        self._seq[device] = self._seq.get(device, int(time.time() * 1000)) + 1
        body = {"seq": self._seq[device], "ts": dt.datetime.now(dt.UTC).isoformat(), **body}
        client.publish(f"{TOPIC_ROOT}/{device}/{what}", orjson.dumps(body), qos=1)  # type: ignore[attr-defined]
        self.published += 1

    def stop(self) -> None:
        self._stop.set()

    def run(self, seconds: float | None = None) -> None:
        """Publishes until stopped (or for `seconds`)."""
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        with self.factory() as session:
            world = load(session)
        settings = mqtt_settings(self.url)
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"simulator-{time.time_ns()}")
        if "username" in settings:
            client.username_pw_set(str(settings["username"]), str(settings.get("password") or ""))
        client.connect(str(settings["hostname"]), int(settings["port"]))  # type: ignore[call-overload]
        client.loop_start()
        try:
            self._loop(client, world, seconds)
        finally:
            client.loop_stop()
            client.disconnect()

    def _snapshot(self, client: object, world: World) -> None:
        for shelf in world.shelves.values():
            self._send(
                client,
                world.reader,
                "tags",
                {"type": "snapshot", "antenna": shelf.antenna, "tags": sorted(shelf.tags)[:5000]},
            )

    def _loop(self, client: object, world: World, seconds: float | None) -> None:
        rng = self.rng
        start = time.monotonic()
        away: list[_Away] = []
        # a couple of copies already stand on the wrong shelf when the demo opens
        antennas = sorted(world.shelves)
        for _ in range(2):
            a, b = rng.sample(antennas, 2)
            if world.shelves[a].tags:
                tag = rng.choice(sorted(world.shelves[a].tags))
                world.shelves[a].tags.discard(tag)
                world.shelves[b].tags.add(tag)
        self._snapshot(client, world)
        next_snapshot = next_heartbeat = next_sensors = 0.0
        next_walkout = 90.0
        while not self._stop.is_set():
            now = (time.monotonic() - start) * self.speed
            if seconds is not None and now > seconds * self.speed:
                break
            # browsing: someone takes a copy from a shelf
            if rng.random() < 0.25:
                a = rng.choice(antennas)
                if world.shelves[a].tags:
                    tag = rng.choice(sorted(world.shelves[a].tags))
                    world.shelves[a].tags.discard(tag)
                    self._send(
                        client,
                        world.reader,
                        "tags",
                        {"type": "delta", "antenna": a, "removed": [tag]},
                    )
                    away.append(_Away(tag, a, now + rng.uniform(20, 90), rng.random() < 0.1))
            # ... and puts it back, now and then on the wrong shelf
            for trip in [t for t in away if t.back_at <= now]:
                away.remove(trip)
                target = trip.home
                if trip.wrong:
                    target = rng.choice([x for x in antennas if x != trip.home])
                world.shelves[target].tags.add(trip.tag)
                self._send(
                    client,
                    world.reader,
                    "tags",
                    {"type": "delta", "antenna": target, "added": [trip.tag]},
                )
            if now >= next_walkout and world.gate is not None and away:
                trip = away.pop(0)
                self._walk_out(world.gate, trip.tag)
                next_walkout = now + rng.uniform(120, 240)
            if now >= next_snapshot:
                self._snapshot(client, world)
                next_snapshot = now + self.snapshot_every
            if now >= next_heartbeat:
                for device in world.devices:
                    self._send(client, device, "heartbeat", {})
                next_heartbeat = now + 10
            if now >= next_sensors:
                self._sensors(client, world, now)
                next_sensors = now + 5
            self._stop.wait(0.5 / max(self.speed, 0.1))

    def _walk_out(self, gate: int, tag: str) -> None:
        with self.factory() as session:
            device = session.get(accounts.DeviceKey, gate)
            if device is not None:
                gate_check(session, device, [tag], at=dt.datetime.now(dt.UTC))
                session.commit()
                self.walked_out += 1

    def _sensors(self, client: object, world: World, now: float) -> None:
        rng = self.rng
        cycle = now % 300.0  # every five minutes the ancient books room gets damp for a while
        humidity = 50.0 + 2.0 * math.sin(now / 40.0) + (9.0 if 200 <= cycle < 250 else 0.0)
        readings = {
            "2F-RARE": [
                {"metric": "temperature", "value": round(20.0 + 0.6 * math.sin(now / 90.0), 1)},
                {"metric": "humidity", "value": round(humidity + rng.uniform(-0.3, 0.3), 1)},
            ],
            "1F-CHILD": [
                {"metric": "co2", "value": round(650 + 200 * (1 + math.sin(now / 120.0)))},
                {"metric": "noise", "value": round(rng.uniform(42, 58), 1)},
            ],
            "1F-LOBBY": [{"metric": "people", "value": 40 + int(30 * (1 + math.sin(now / 60.0)))}],
            "2F-SOC": [
                {"metric": "seat", "channel": f"S{n:02d}", "value": int(rng.random() < 0.6)}
                for n in range(1, 25)
            ],
        }
        for zone, values in readings.items():
            device = world.sensors.get(zone)
            if device is not None:
                self._send(client, device, "readings", {"readings": values})
