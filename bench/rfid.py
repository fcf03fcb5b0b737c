"""Smart-shelf benchmark: tag reads through the real MQTT broker, and reconciling a whole
collection against its shelves.

    .venv/bin/python bench/rfid.py                      # the issue's sizes, both databases
    .venv/bin/python bench/rfid.py --quick              # small sizes, under a minute
    .venv/bin/python bench/rfid.py --backend sqlite     # one database only

Needs Mosquitto at 127.0.0.1:1883 and, for PostgreSQL, a server at 127.0.0.1:5432 (user
postgres, trust); a throwaway database ``bench_rfid_<pid>`` is created and dropped.

Ingest: shelf readers (50 readers of 10 antennas) publish full snapshots of their antennas,
round after round, from a separate process (QoS 1, as readers do); between rounds a few
percent of the copies move to another shelf. The ingestor runs in this process as the app
runs it (MqttIngestion, a batch every 100 ms). Timed from the first message published to
the last read applied; then every copy's position is checked against the last round. The
peer is the broker alone: a subscriber that only parses and counts the same messages.

Reconcile: a collection of copies with call numbers over 300 shelves, 97% read where they
belong, 2% on a wrong shelf, 1% never read; `reports.reconcile` counts them. The peer is the
database's own join of copies to positions (a count), the least any reconciliation reads.

Alarms: the app runs as it is deployed (`biblioverse serve`, one worker, BIBLIOVERSE_MQTT_URL
set); a humidity sensor in a zone with a 45-55 % range publishes a reading of 60 % to the
broker, and a librarian's client polls `GET /libraries/{id}/alarms` until the alarm is there;
then a reading of 50 % resolves it. Timed from the publish to the first answer that shows the
alarm. The peer is the broker's own round trip: the same publish to a plain subscriber.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
import orjson
import paho.mqtt.client as paho
from _harness import emit, percentile
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, libraries, migrate, shelves
from biblioverse.access import Actor, Grant, PrincipalKind, Role
from biblioverse.callnumbers import shelf_key
from biblioverse.db import make_engine, make_session_factory, utcnow
from biblioverse.devices.mqtt import TOPIC_ROOT
from biblioverse.libraries import OrgKind, UnitInput
from biblioverse.shelves import reports
from biblioverse.shelves.ingest import FloodLimit, Ingestor, MqttIngestion
from biblioverse.shelves.models import Antenna, ItemPosition

READERS, ANTENNAS = 50, 10


# --- a library with shelves -----------------------------------------------------------------


def library(session: Session, shelves: int) -> tuple[libraries.OrgUnit, list[libraries.Shelf], int]:
    now = utcnow()
    top = libraries.create_unit(
        session, None, UnitInput(OrgKind.CONSORTIUM, "bench", "Bench", "基准"), at=now
    )
    unit = libraries.create_unit(
        session,
        None,
        UnitInput(OrgKind.LIBRARY, "bench-lib", "Bench library", "基准馆", parent_id=top.id),
        at=now,
    )
    loc = libraries.add_location(
        session, None, unit, libraries.LocationInput("STACKS", 1, "A", "Stacks", "书库"), at=now
    )
    rows = []
    for n in range(shelves):
        data = libraries.ShelfInput(loc.id, f"S{n:03d}", f"I{n:03d}0", f"I{n:03d}9", "clc")
        rows.append(libraries.add_shelf(session, None, unit, data, at=now))
    record = catalog.save_record(
        session,
        _cataloguer(session, unit),
        None,
        catalog.RecordForm(title="Bench"),
        at=now,
    )
    session.commit()
    return unit, rows, record.id


def _cataloguer(session: Session, unit: libraries.OrgUnit) -> Actor:
    return Actor(PrincipalKind.STAFF, 0, "bench", grants=(Grant(Role.ADMIN, unit.path, unit.id),))


def add_copies(session: Session, unit_id: int, record_id: int, n: int, shelves: int) -> list[str]:
    """`n` copies spread over the shelves' ranges, inserted in bulk; their tags."""
    now = utcnow()
    tags = []
    table = cast(Table, catalog.Item.__table__)
    for start in range(0, n, 20000):
        rows = []
        for i in range(start, min(n, start + 20000)):
            shelf, slot = i % shelves, (i // shelves) % 10
            call = f"I{shelf:03d}{slot}/{i}"
            tag = f"E2801160{i:016X}"
            tags.append(tag)
            rows.append(
                {
                    "record_id": record_id,
                    "barcode": f"B{i:09d}",
                    "rfid_tag": tag,
                    "org_unit_id": unit_id,
                    "call_number": call,
                    "shelf_key": shelf_key(call),
                    "item_type": "book",
                    "status": "available",
                    "circulates": True,
                    "created_at": now,
                }
            )
        session.execute(insert(table), rows)
    session.commit()
    return tags


# --- ingest ----------------------------------------------------------------------------------


def plan(
    tags: list[str], rounds: int, move: float, seed: int = 7
) -> tuple[list[bytes], dict[str, int]]:
    """Messages (topic and payload, as JSON lines for the publisher) and where every tag ends."""
    rng = random.Random(seed)
    slots = READERS * ANTENNAS
    where = {t: i % slots for i, t in enumerate(tags)}
    lines = []
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    seq = [0] * READERS
    for r in range(rounds):
        if r:
            for t in rng.sample(tags, int(len(tags) * move)):
                where[t] = rng.randrange(slots)
        on: list[list[str]] = [[] for _ in range(slots)]
        for t, a in where.items():
            on[a].append(t)
        ts = (t0 + dt.timedelta(seconds=r)).isoformat()
        for a in range(slots):
            reader = a // ANTENNAS
            seq[reader] += 1
            body = {
                "type": "snapshot",
                "seq": seq[reader],
                "ts": ts,
                "antenna": a % ANTENNAS + 1,
                "tags": on[a],
            }
            lines.append(orjson.dumps({"reader": reader, "body": body}))
    return lines, where


def publish(path: str, rate: float) -> None:
    """The publisher process: reads the plan and publishes it at `rate` reads a second (0: as
    fast as the broker takes it), as readers do, steadily."""
    with open(path, "rb") as f:
        head = orjson.loads(f.readline())
        lines = [orjson.loads(line) for line in f]
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    print(json.dumps({"start": time.time()}), flush=True)
    infos = []
    began, sent = time.perf_counter(), 0
    for line in lines:
        device = head["devices"][line["reader"]]
        infos.append(
            client.publish(f"{TOPIC_ROOT}/{device}/tags", orjson.dumps(line["body"]), qos=1)
        )
        sent += len(line["body"]["tags"])
        if rate:
            ahead = sent / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
    for info in infos:
        info.wait_for_publish(60)
    print(json.dumps({"end": time.time()}), flush=True)
    client.loop_stop()
    client.disconnect()


def raw_broker(path: str, total_reads: int) -> float:
    """Seconds for the broker alone to carry the plan to a subscriber that parses it."""
    got = {"reads": 0, "last": 0.0}
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{os.getpid()}")

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        got["reads"] += len(orjson.loads(msg.payload)["tags"])
        got["last"] = time.time()

    sub.on_message = on_message
    sub.connect("127.0.0.1", 1883)
    sub.subscribe(f"{TOPIC_ROOT}/+/tags", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--publish", path, "--rate", "0"], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    start: float = json.loads(proc.stdout.readline())["start"]
    proc.wait(300)
    deadline = time.time() + 120
    while got["reads"] < total_reads and time.time() < deadline:
        time.sleep(0.01)
    sub.loop_stop()
    sub.disconnect()
    return got["last"] - start


def bench_ingest(url: str, items: int, rounds: int, rate: float) -> None:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        unit, shelf_rows, record_id = library(session, READERS)
        tags = add_copies(session, unit.id, record_id, items, READERS)
        device_ids = []
        for r in range(READERS):
            device, _ = accounts.create_device_key(
                session, None, name=f"reader {r}", kind="shelf", org_unit_id=unit.id, at=utcnow()
            )
            device_ids.append(device.id)
            for a in range(ANTENNAS):
                shelves.add_antenna(
                    session,
                    None,
                    device_id=device.id,
                    antenna=a + 1,
                    shelf_id=shelf_rows[r].id,
                    level=a % 6 + 1,
                    side="A",
                    at=utcnow(),
                )
        session.commit()
        antenna_of = {
            (d, n): aid
            for aid, d, n in session.execute(select(Antenna.id, Antenna.device_id, Antenna.antenna))
        }
    lines, final = plan(tags, rounds, move=0.03)
    total = sum(len(orjson.loads(line)["body"]["tags"]) for line in lines)
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
        f.write(orjson.dumps({"devices": device_ids}) + b"\n")
        for line in lines:
            f.write(line + b"\n")
        path = f.name

    ingestor = Ingestor(factory, flood=FloodLimit(per_second=100000, burst=100000))
    mqtt = MqttIngestion(
        ingestor,
        "mqtt://127.0.0.1:1883",
        interval=0.1,
        group=f"bench{os.getpid()}",
        client_id=f"bench{os.getpid()}",
    )
    assert mqtt.start(), "no MQTT broker at 127.0.0.1:1883"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--publish", path, "--rate", str(rate)], stdout=subprocess.PIPE
    )
    start = json.loads(proc.stdout.readline())["start"]  # type: ignore[union-attr]
    deadline = start + total / rate + 30 if rate else time.time() + 600
    while ingestor.stats.applied_reads + ingestor.stats.rejected < total and time.time() < deadline:
        time.sleep(0.02)
    took = time.time() - start
    published = json.loads(proc.stdout.readline())["end"] - start  # type: ignore[union-attr]
    proc.wait(60)
    mqtt.stop()
    lost = total - ingestor.stats.applied_reads
    if lost:
        # the broker drops QoS 1 messages beyond a slow subscriber's queue: we fell behind
        print(
            f"{lost} of {total} reads lost at {rate:.0f} reads/s: {ingestor.stats}", file=sys.stderr
        )
        emit("reads_lost", lost, "reads", goal=0, better="lower", n=total, offered=rate)
        os.unlink(path)
        raise SystemExit(1)

    with factory() as session:
        by_tag = dict(session.execute(select(catalog.Item.rfid_tag, catalog.Item.id)).all())
        where = {
            item: antenna
            for item, antenna in session.execute(
                select(ItemPosition.item_id, ItemPosition.antenna_id).where(
                    ItemPosition.state == "on_shelf"
                )
            )
        }
    wrong = sum(
        1
        for tag, slot in final.items()
        if where.get(by_tag[tag]) != antenna_of[(device_ids[slot // ANTENNAS], slot % ANTENNAS + 1)]
    )
    raw = raw_broker(path, total)
    os.unlink(path)
    emit(
        "ingest_reads_per_s",
        total / took,
        "reads/s",
        goal=20000,
        better="higher",
        n=total,
        items=items,
        offered=rate,  # paced: what was applied, first message published to last read stored
    )
    emit("lag_after_last_publish_s", took - published, "s", better="lower")
    emit("positions_wrong", wrong, "copies", goal=0, better="lower", n=items)
    emit("raw_broker_reads_per_s", total / raw, "reads/s", n=total)
    emit("ratio_vs_raw_broker", took / raw, "x", better="lower")
    print(
        f"[{h.backend_name()}] ingest {total} reads in {took:.2f} s ({total / took:.0f}/s); broker alone {raw:.2f} s; {wrong} wrong",
        file=sys.stderr,
    )
    engine.dispose()


# --- alarms --------------------------------------------------------------------------------------

BENCH_USER, BENCH_PW = "bench-librarian", "bench-librarian-password-1"


def _broker_round_trip(trials: int) -> list[float]:
    import queue

    got: queue.Queue[float] = queue.Queue()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"rtt-sub-{os.getpid()}")
    sub.on_message = lambda _c, _u, m: got.put(time.perf_counter())
    sub.connect("127.0.0.1", 1883)
    sub.subscribe("bench/rtt", qos=1)
    sub.loop_start()
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"rtt-pub-{os.getpid()}")
    pub.connect("127.0.0.1", 1883)
    pub.loop_start()
    time.sleep(0.3)
    out = []
    for _ in range(trials):
        start = time.perf_counter()
        pub.publish("bench/rtt", b'{"readings": []}', qos=1)
        out.append(got.get(timeout=5) - start)
        time.sleep(0.005)
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return out


def bench_alarms(url: str, trials: int, data_dir: Path) -> None:
    import httpx

    from biblioverse.access import Role
    from biblioverse.building import service as building

    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        unit, _shelves, _record = library(session, 1)
        [loc] = libraries.locations_of(session, unit.id)
        sensor, _key = accounts.create_device_key(
            session, None, name="climate", kind="sensor", org_unit_id=unit.id, at=utcnow()
        )
        admin = _cataloguer(session, unit)
        building.place_sensor(session, admin, device_id=sensor.id, location_id=loc.id, at=utcnow())
        building.set_threshold(
            session, admin, location_id=loc.id, metric="humidity", low=45, high=55, at=utcnow()
        )
        accounts.create_staff(
            session,
            None,
            username=BENCH_USER,
            full_name="Bench Librarian",
            password=BENCH_PW,
            home_org_unit_id=unit.id,
            roles=[(Role.LIBRARIAN, unit.id)],
            at=utcnow(),
        )
        session.commit()
        unit_id, sensor_id = unit.id, sensor.id
    engine.dispose()
    env = {
        **h.app_env(url, data_dir),
        "BIBLIOVERSE_MQTT_URL": "mqtt://127.0.0.1:1883",
        "BIBLIOVERSE_SECRET_KEY": "bench-secret-key",
    }
    server = h.serve(
        lambda port: [str(h.BIN), "serve", "--port", str(port)], env, data_dir / "server.log"
    )
    base = f"{server.base}/api/v1"
    client = httpx.Client()
    try:
        token = client.post(
            f"{base}/auth/token", json={"kind": "staff", "login": BENCH_USER, "password": BENCH_PW}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sensor-{os.getpid()}")
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()
        topic = f"{TOPIC_ROOT}/{sensor_id}/readings"
        time.sleep(1.0)  # the app's subscription is up
        latencies, polls = [], 0

        def alarms() -> list[dict[str, object]]:
            nonlocal polls
            polls += 1
            answer = client.get(f"{base}/libraries/{unit_id}/alarms", headers=headers)
            answer.raise_for_status()
            return answer.json()  # type: ignore[no-any-return]

        seq = 0
        for trial in range(trials + 5):  # the first five warm up
            for value, want_open in ((60.0, True), (50.0, False)):
                seq += 1
                body = {
                    "seq": seq,
                    "ts": dt.datetime.now(dt.UTC).isoformat(),
                    "readings": [{"metric": "humidity", "value": value}],
                }
                start = time.perf_counter()
                pub.publish(topic, orjson.dumps(body), qos=1)
                while bool(alarms()) != want_open:
                    if time.perf_counter() - start > 10:
                        raise SystemExit(f"no alarm change 10 s after reading {seq}")
                if want_open and trial >= 5:
                    latencies.append(time.perf_counter() - start)
        pub.loop_stop()
        pub.disconnect()
    finally:
        server.stop()
        client.close()
    raw = _broker_round_trip(trials)
    p95 = percentile(latencies, 95)
    emit(
        "alarm_visible_p95_ms",
        p95 * 1000,
        "ms",
        goal=100,
        better="lower",
        n=trials,
        median_ms=round(percentile(latencies, 50) * 1000, 2),
        max_ms=round(max(latencies) * 1000, 2),
        polls=polls,
    )
    emit("raw_broker_round_trip_p95_ms", percentile(raw, 95) * 1000, "ms", n=trials)
    print(
        f"[{h.backend_name()}] alarm visible over the API: p95 {p95 * 1000:.1f} ms, median "
        f"{percentile(latencies, 50) * 1000:.1f} ms ({trials} readings); broker round trip "
        f"p95 {percentile(raw, 95) * 1000:.2f} ms",
        file=sys.stderr,
    )


# --- reconcile ---------------------------------------------------------------------------------


def bench_reconcile(url: str, items: int) -> None:
    shelves_n = 300
    engine = make_engine(url)
    factory = make_session_factory(engine)
    rng = random.Random(11)
    with factory() as session:
        unit, shelf_rows, record_id = library(session, shelves_n)
        device, _ = accounts.create_device_key(
            session, None, name="inventory", kind="shelf", org_unit_id=unit.id, at=utcnow()
        )
        antenna_ids = []
        for n, shelf in enumerate(shelf_rows):
            a = (
                shelves.add_antenna(
                    session,
                    None,
                    device_id=device.id,
                    antenna=n % 256,
                    shelf_id=shelf.id,
                    level=1,
                    at=utcnow(),
                )
                if n < 256
                else None
            )
            if a is None:
                d2, _ = accounts.create_device_key(
                    session, None, name=f"inv {n}", kind="shelf", org_unit_id=unit.id, at=utcnow()
                )
                a = shelves.add_antenna(
                    session,
                    None,
                    device_id=d2.id,
                    antenna=1,
                    shelf_id=shelf.id,
                    level=1,
                    at=utcnow(),
                )
            antenna_ids.append((a.id, shelf.id))
        session.commit()
        t_seed = time.perf_counter()
        add_copies(session, unit.id, record_id, items, shelves_n)
        ids = [i for (i,) in session.execute(select(catalog.Item.id).order_by(catalog.Item.id))]
        now = utcnow()
        expect_misplaced = expect_missing = 0
        positions = cast(Table, ItemPosition.__table__)
        rows = []
        for n, item_id in enumerate(ids):
            roll = rng.random()
            home = n % shelves_n
            if roll < 0.01:
                expect_missing += 1
                continue
            if roll < 0.03:
                expect_misplaced += 1
                home = (home + 1 + rng.randrange(shelves_n - 1)) % shelves_n
            aid, sid = antenna_ids[home]
            rows.append(
                {
                    "item_id": item_id,
                    "antenna_id": aid,
                    "shelf_id": sid,
                    "level": 1,
                    "side": "A",
                    "state": "on_shelf",
                    "seen_at": now,
                    "seen_seq": 1,
                    "taken_at": None,
                }
            )
            if len(rows) == 20000:
                session.execute(insert(positions), rows)
                rows = []
        if rows:
            session.execute(insert(positions), rows)
        session.commit()
        if engine.dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
            session.commit()
        seeded = time.perf_counter() - t_seed
    with factory() as session:
        t = time.perf_counter()
        got = reports.reconcile(session, [unit.id], at=utcnow())
        took = time.perf_counter() - t
        t = time.perf_counter()
        session.execute(
            text(
                "SELECT count(*) FROM items JOIN item_positions ON item_positions.item_id = items.id"
            )
        ).scalar()
        raw = time.perf_counter() - t
    ok = (
        got.expected == items
        and got.misplaced == expect_misplaced
        and got.missing == expect_missing
    )
    if not ok:
        print(
            f"reconciliation wrong: {got}; expected misplaced {expect_misplaced}, missing {expect_missing}",
            file=sys.stderr,
        )
        sys.exit(1)
    emit("reconcile_s", took, "s", goal=10, better="lower", n=items)
    emit("raw_join_count_s", raw, "s", n=items)
    emit("ratio_vs_raw_join", took / raw, "x", better="lower")
    print(
        f"[{h.backend_name()}] reconcile {items} copies in {took:.2f} s (raw join {raw:.2f} s; seeding took {seeded:.0f} s): {got}",
        file=sys.stderr,
    )
    engine.dispose()


def main() -> None:
    parser = h.arguments(__doc__, quick="small sizes, under a minute")
    h.add_backend(parser)
    parser.add_argument("--only", choices=["ingest", "reconcile", "alarms"])
    parser.add_argument(
        "--rate", type=float, default=25000, help="reads a second offered (0: flat out)"
    )
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish(args.publish, args.rate)
        return
    h.unwind_on_sigterm()
    ingest_items, rounds = (20000, 5) if args.quick else (100000, 10)
    reconcile_items = 50000 if args.quick else 1000000
    alarm_trials = 40 if args.quick else 200
    h.start("rfid")
    h.emit_machine(quick=args.quick)
    for name in h.backends(args):
        h.set_backend(name)
        for what in ("ingest", "reconcile", "alarms"):
            if args.only and args.only != what:
                continue
            backend = h.open_backend(name, "rfid")  # a fresh database for each part
            try:
                migrate.upgrade(backend.url)
                if what == "ingest":
                    bench_ingest(backend.url, ingest_items, rounds, args.rate)
                elif what == "alarms":
                    bench_alarms(backend.url, alarm_trials, backend.data_dir)
                else:
                    bench_reconcile(backend.url, reconcile_items)
            finally:
                backend.drop()


if __name__ == "__main__":
    main()
