"""Events across nodes (ADR 0034): from a commit on node A to node B's search index, under a
steady load of events, and the relay's throughput through NATS JetStream beside the
in-process path, in one run.

    .venv/bin/python bench/events.py                    # 20 s at 200 events/s
    .venv/bin/python bench/events.py --seconds 5 --rate 100

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) and NATS with JetStream at
127.0.0.1:4222 (`make nats`); a throwaway database ``bench_events_<pid>`` and a stream of
this run's own are created and removed.

1. Two nodes, ``biblioverse serve --node a`` and ``--node b``, one web worker each, on one
   database and one stream. Desk clients on A lend and take back copies, paced so that the
   outbox receives ``--rate`` events a second (a loan or a return records two: its own and
   the record's availability). Meanwhile, a few times a second, a probe lends a copy of a
   title of its own on A and, once A has answered (the loan is committed), searches B for
   that title among available copies until B no longer finds it: ``commit_to_other_node``
   is that wait (p50, p95, max; goal p95 <= 500 ms). The events per second the outbox
   received are counted in the database.
2. The relay alone: ``--relay-events`` events written to the outbox in one statement, then
   drained by relay passes (``events.dispatch_pending``, 2,000 a pass as the relay takes
   them), once handing them to the process's subscribers (none: the in-process path's own
   cost) and once publishing them to the stream and waiting for JetStream's
   acknowledgements (``jetstream.Link.publish``), on the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
import _seed
import httpx
import nats
from sqlalchemy import func, insert, select

from biblioverse import accounts, events, jetstream, libraries, migrate
from biblioverse.access import Role
from biblioverse.db import make_engine, make_session_factory
from biblioverse.libraries import OrgKind, Period

NATS_URL = os.environ.get("BIBLIOVERSE_NATS_URL", "nats://127.0.0.1:4222")
API = "/api/v1"
DESK, PASSWORD = "events-desk", "events-bench-2026"
EVENTS_PER_REQUEST = 2  # a loan or a return: its own event and the record's availability


@dataclass
class World:
    library_id: int
    reader_id: int
    load: list[str]  # copies the load lends and takes back
    probes: list[tuple[str, str]]  # (barcode, title), one copy a title


def seed(url: str, *, load_copies: int, probes: int) -> World:
    at = dt.datetime.now(dt.UTC)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            consortium = _seed.unit(session, OrgKind.CONSORTIUM, "consortium", None, at)
            central = _seed.unit(session, OrgKind.LIBRARY, "central", consortium.id, at)
            hours = {wd: [Period(0, 24 * 60)] for wd in range(7)}
            libraries.set_weekly_hours(session, None, central, hours, at=at)
            admin = _seed.staff(
                session,
                "events-admin",
                PASSWORD,
                Role.ADMIN,
                consortium.id,
                at,
                full_name="Bench Admin",
            )
            _seed.staff(session, DESK, PASSWORD, Role.CIRCULATION, central.id, at)
            _seed.generous_rule(session, consortium.id, at, max_loans=10_000, max_holds=10)
            session.flush()
            boss = accounts.actor_for_staff(session, admin)
            reader = _seed.reader(
                session, boss, 1, name="Bench Reader", card="EV00000001", home=central.id, at=at
            )
            load: list[str] = []
            for t in range(0, load_copies, 10):
                load += _seed.copies(
                    session,
                    boss,
                    f"Bench load {t // 10}",
                    [f"L{j:05d}" for j in range(t, min(t + 10, load_copies))],
                    central.id,
                    at,
                )
            probe_list = []
            for n in range(probes):
                title = f"Quillwort {n:04d}"
                (barcode,) = _seed.copies(session, boss, title, [f"Q{n:05d}"], central.id, at)
                probe_list.append((barcode, title))
            session.commit()
            return World(central.id, reader, load, probe_list)
    finally:
        engine.dispose()


def node_env(backend: h.Backend, stream: str, subject: str) -> dict[str, str]:
    return {
        **h.app_env(backend.url, backend.data_dir),
        "BIBLIOVERSE_NATS_URL": NATS_URL,
        "BIBLIOVERSE_NATS_STREAM": stream,
        "BIBLIOVERSE_NATS_SUBJECT": subject,
        "BIBLIOVERSE_SECRET_KEY": "events-bench-nodes-share-this-key",
        "BIBLIOVERSE_OFFLINE_CHECK_S": "0",
    }


def command_of(node: str) -> Callable[[int], list[str]]:
    """`serve` of one node, one web worker, on the port given."""
    return lambda port: [str(h.BIN), "serve", "--node", node, "--port", str(port), "--workers", "1"]


def token(base: str) -> dict[str, str]:
    r = httpx.post(
        f"{base}{API}/auth/token", json={"kind": "staff", "login": DESK, "password": PASSWORD}
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def available(base: str, title: str) -> int:
    r = httpx.get(
        f"{base}{API}/catalog/search",
        params={"q": f'"{title}"', "availability": "available", "limit": 1},
    )
    r.raise_for_status()
    return int(r.json()["total"])


def outbox_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(events.OutboxEvent)).scalar_one())
    finally:
        engine.dispose()


def run_load(
    base: str, world: World, rate: float, stop: threading.Event, errors: list[str]
) -> None:
    """Lend and take back the load's copies, a request every 1/(rate/2) s in all, spread
    over four clients."""
    clients = 4
    interval = clients * EVENTS_PER_REQUEST / rate
    headers = token(base)

    def client(k: int) -> None:
        mine = world.load[k::clients]
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            step, next_at = 0, time.monotonic()
            while not stop.is_set():
                barcode = mine[(step // 2) % len(mine)]
                if step % 2 == 0:
                    body = {
                        "reader_id": world.reader_id,
                        "barcode": barcode,
                        "library_id": world.library_id,
                    }
                    r = http.post(f"{API}/circulation/checkout", json=body)
                else:
                    body = {"barcode": barcode, "library_id": world.library_id}
                    r = http.post(f"{API}/circulation/checkin", json=body)
                if r.status_code >= 400:
                    errors.append(f"{r.status_code} {r.text[:120]}")
                step += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def probe(a: str, b: str, world: World, seconds: float, per_second: float) -> list[float]:
    """Lend a probe's copy on A; the seconds until B no longer finds it available."""
    waits: list[float] = []
    headers = token(a)
    with httpx.Client(base_url=a, headers=headers, timeout=30) as http:
        end = time.monotonic() + seconds
        for barcode, title in world.probes:
            if time.monotonic() > end:
                break
            started = time.monotonic()
            body = {
                "reader_id": world.reader_id,
                "barcode": barcode,
                "library_id": world.library_id,
            }
            r = http.post(f"{API}/circulation/checkout", json=body)
            r.raise_for_status()
            committed = time.monotonic()
            while available(b, title) != 0:
                if time.monotonic() - committed > 30:
                    raise RuntimeError(f"node B never saw the loan of {barcode}")
                time.sleep(0.005)
            waits.append(time.monotonic() - committed)
            time.sleep(max(0.0, 1 / per_second - (time.monotonic() - started)))
    return waits


def relay_throughput(url: str, stream: str, subject: str, n: int) -> dict[str, float]:
    """Events a second drained from the outbox: to no subscriber, and to the stream."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    link = jetstream.Link(NATS_URL, stream=stream, subject=subject)
    link.start()
    link.wait_connected()
    out: dict[str, float] = {}
    try:
        for path, deliver in (("in_process", None), ("nats", link.publish)):
            now = dt.datetime.now(dt.UTC)
            with factory() as session:
                session.execute(
                    insert(events.OutboxEvent),
                    [
                        {
                            "topic": "bench.noop",
                            "payload": {"n": i},
                            "created_at": now,
                            "published_at": None,
                        }
                        for i in range(n)
                    ],
                )
                session.commit()
            started = time.perf_counter()
            done = 0
            with factory() as session:
                while done < n:
                    moved = events.dispatch_pending(
                        session, limit=events.RELAY_BATCH, handlers={}, deliver=deliver
                    )
                    session.commit()
                    if moved == 0:
                        break
                    done += moved
            out[path] = done / (time.perf_counter() - started)
    finally:
        link.stop()
        engine.dispose()
    return out


def delete_stream(name: str) -> None:
    async def go() -> None:
        nc = await nats.connect(NATS_URL)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    asyncio.run(go())


def main() -> int:
    parser = h.arguments(__doc__)
    h.add_seconds(parser, "length of the loaded run (default 20)", default=20)
    parser.add_argument("--rate", type=float, default=200, help="events a second (default 200)")
    parser.add_argument("--probes", type=float, default=4, help="probes a second (default 4)")
    parser.add_argument("--relay-events", type=int, default=20_000)
    args = parser.parse_args()
    h.start("events")
    h.unwind_on_sigterm()
    h.emit_machine()
    h.set_backend("postgresql")
    backend = h.open_backend("postgresql", "events")
    tag = f"{os.getpid()}"
    stream, subject = f"BVBENCH_{tag}", f"bvbench.{tag}"
    servers: list[h.Server] = []
    try:
        migrate.upgrade(backend.url)
        probes = int(args.seconds * args.probes) + 10
        world = seed(backend.url, load_copies=400, probes=probes)
        env = node_env(backend, stream, subject)
        for name in ("a", "b"):
            subprocess.run(
                [str(h.BIN), "index", "rebuild"],
                env={**env, "BIBLIOVERSE_NODE": name},
                check=True,
                capture_output=True,
            )
            servers.append(h.serve(command_of(name), env, backend.data_dir / f"server-{name}.log"))
        a, b = servers[0].base, servers[1].base
        # B has followed the stream up to now once it finds every probe title available.
        deadline = time.monotonic() + 60
        while available(b, "Quillwort") < len(world.probes):
            if time.monotonic() > deadline:
                raise RuntimeError("node B did not catch up with the seed")
            time.sleep(0.2)
        stop, errors = threading.Event(), list[str]()
        before = outbox_count(backend.url)
        load = threading.Thread(target=run_load, args=(a, world, args.rate, stop, errors))
        started = time.monotonic()
        load.start()
        time.sleep(1)  # the load reaches its pace before the first probe
        waits = probe(a, b, world, args.seconds, args.probes)
        stop.set()
        load.join()
        took = time.monotonic() - started
        recorded = outbox_count(backend.url) - before
        h.emit("outbox_events_per_s", recorded / took, "events/s", n=recorded, goal=args.rate)
        ms = [w * 1000 for w in waits]
        for q in (50, 95):
            extra: dict[str, Any] = {"n": len(ms)}
            if q == 95:
                extra.update(goal=500, better="lower")
            h.emit(f"commit_to_other_node_p{q}_ms", h.percentile(ms, q), "ms", **extra)
        h.emit("commit_to_other_node_max_ms", max(ms), "ms")
        h.emit("load_errors", len(errors), "requests", goal=0, better="lower")
        for s in servers:
            s.stop()
        servers.clear()
        rates = relay_throughput(backend.url, stream, subject, args.relay_events)
        h.emit("relay_in_process_events_per_s", rates["in_process"], "events/s")
        h.emit("relay_nats_events_per_s", rates["nats"], "events/s")
        h.emit("ratio_relay_nats_vs_in_process", rates["nats"] / rates["in_process"], "x")
        print(
            f"events: {recorded / took:.0f} events/s into the outbox; commit on A to B's index "
            f"p50 {h.percentile(ms, 50):.0f} ms, p95 {h.percentile(ms, 95):.0f} ms "
            f"(goal <= 500), max {max(ms):.0f} ms over {len(ms)} probes; load errors "
            f"{len(errors)}\nrelay: {rates['in_process']:.0f} events/s in-process, "
            f"{rates['nats']:.0f} through NATS",
            file=sys.stderr,
        )
    finally:
        for s in servers:
            s.stop()
        with contextlib.suppress(Exception):
            delete_stream(stream)
        backend.drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
