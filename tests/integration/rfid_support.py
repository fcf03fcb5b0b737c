"""Smart shelves for the tests: a room with shelves, a reader with antennas, tagged copies,
and the ingestion loop subscribed to the real MQTT broker in a thread of its own."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, libraries, shelves
from biblioverse.db import make_session_factory
from biblioverse.devices.mqtt import TOPIC_ROOT
from biblioverse.shelves.ingest import FloodLimit, Ingestor, MqttIngestion
from tests.factories import NOW, World

BROKER = "mqtt://127.0.0.1:1883"


@dataclass
class Room:
    """Shelf I-1 holds I0 to I299 (CLC), shelf I-2 holds I3 to I9; the reader's antennas
    1 and 2 are levels 1 and 2 of I-1, antenna 3 is level 1 of I-2."""

    location_id: int
    shelf1: int  # ids, not rows: a test must not reload rows while the ingestor writes
    shelf2: int
    device_id: int
    key: str
    tags: dict[str, str] = field(default_factory=dict)  # barcode -> tag
    items: dict[str, int] = field(default_factory=dict)  # barcode -> item id


def room(session: Session, w: World) -> Room:
    loc = libraries.add_location(
        session,
        None,
        w.central,
        libraries.LocationInput("2F-LIT", 2, "C", "Literature", "文学", "I-1", "I-2"),
        at=NOW,
    )
    s1 = libraries.add_shelf(
        session, None, w.central, libraries.ShelfInput(loc.id, "I-1", "I0", "I299"), at=NOW
    )
    s2 = libraries.add_shelf(
        session, None, w.central, libraries.ShelfInput(loc.id, "I-2", "I3", "I9"), at=NOW
    )
    device, key = accounts.create_device_key(
        session, None, name="Shelf reader I", kind="shelf", org_unit_id=w.central.id, at=NOW
    )
    for antenna, shelf, level in ((1, s1, 1), (2, s1, 2), (3, s2, 1)):
        shelves.add_antenna(
            session,
            None,
            device_id=device.id,
            antenna=antenna,
            shelf_id=shelf.id,
            level=level,
            at=NOW,
        )
    record = catalog.save_record(
        session, w.actor(session, w.cataloguer), None, catalog.RecordForm(title="红楼梦"), at=NOW
    )
    r = Room(loc.id, s1.id, s2.id, device.id, key)
    calls = {"B1": "I242.4/1", "B2": "I242.4/2", "B3": "I247.5/7", "B4": "I313.45/2"}
    data = [
        catalog.NewItem(
            record.id,
            barcode,
            w.central.id,
            location_id=loc.id,
            call_number=call,
            rfid_tag=f"E28011600000{n:012X}",
        )
        for n, (barcode, call) in enumerate(calls.items(), start=1)
    ]
    for item in catalog.add_items(session, None, data, at=NOW):
        r.tags[item.barcode] = item.rfid_tag or ""
        r.items[item.barcode] = item.id
    session.commit()
    return r


def message(kind: str, seq: int, ts: dt.datetime, antenna: int = 1, **tags: list[str]) -> bytes:
    body: dict[str, object] = {"type": kind, "seq": seq, "ts": ts.isoformat(), "antenna": antenna}
    body.update(tags)
    return json.dumps(body).encode()


@dataclass
class Running:
    ingestor: Ingestor
    publisher: paho.Client

    def publish(self, device_id: int, payload: bytes, what: str = "tags") -> None:
        info = self.publisher.publish(f"{TOPIC_ROOT}/{device_id}/{what}", payload, qos=1)
        info.wait_for_publish(5)

    def settle(self, received: int, timeout: float = 10.0) -> None:
        """Wait until the ingestor has taken `received` messages in all, then apply them."""
        deadline = time.monotonic() + timeout
        while self.ingestor.stats.received < received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.ingestor.stats.received >= received, self.ingestor.stats
        self.ingestor.flush()


@contextmanager
def ingesting(
    engine: Engine,
    *,
    clock: Callable[[], dt.datetime] = lambda: NOW,
    flood: FloodLimit | None = None,
) -> Iterator[Running]:
    factory = make_session_factory(engine)
    ingestor = Ingestor(factory, clock=clock, flood=flood or FloodLimit())
    group = f"test-{uuid.uuid4().hex[:8]}"
    mqtt = MqttIngestion(ingestor, BROKER, interval=3600, group=group, client_id=group)
    assert mqtt.start(), "the MQTT broker at 127.0.0.1:1883 is not answering"
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{group}-pub")
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    try:
        yield Running(ingestor, publisher)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        mqtt.stop()
