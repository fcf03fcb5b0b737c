"""Several nodes on one database (ADR 0034): real `biblioverse serve` processes, each with
its own folder for its search index, the machine's PostgreSQL (a scratch database per test)
and its NATS server with JetStream (a stream of each test's own, deleted after)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy, SequenceInfo
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, events, jetstream, libraries
from biblioverse.db import make_engine, make_session_factory
from biblioverse.libraries import Period
from tests import factories
from tests.conftest import PG_URL, scratch_postgres
from tests.integration.rfid_support import room
from tests.integration.sip2_support import KIOSK_LOGIN, KIOSK_PASSWORD, Wire, kiosk_account
from tests.serving import BIN, cli_env, free_port, serving

NATS_URL = os.environ.get("BIBLIOVERSE_TEST_NATS_URL", "nats://127.0.0.1:4222")
API = "/api/v1"
TITLE = "Lantern"  # every seeded record's title starts with it

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="nodes share a PostgreSQL database: set BIBLIOVERSE_TEST_DATABASE_URL"
)


@dataclass
class Stream:
    name: str
    subject: str

    def env(self) -> dict[str, str]:
        return {
            "BIBLIOVERSE_NATS_URL": NATS_URL,
            "BIBLIOVERSE_NATS_STREAM": self.name,
            "BIBLIOVERSE_NATS_SUBJECT": self.subject,
        }

    def link(self) -> jetstream.Link:
        return jetstream.Link(NATS_URL, stream=self.name, subject=self.subject)


def run_async(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright keeps an event
    loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _stream_call(name: str, what: Callable[[Any], Any]) -> Any:
    nc = await nats.connect(NATS_URL)
    try:
        return await what(nc.jetstream())
    finally:
        await nc.close()


def stream_messages(stream: Stream) -> int:
    info = run_async(_stream_call(stream.name, lambda js: js.stream_info(stream.name)))
    return int(info.state.messages)


@pytest.fixture()
def stream() -> Iterator[Stream]:
    where = urlparse(NATS_URL)
    try:
        socket.create_connection((where.hostname, where.port or 4222), 1).close()
    except OSError:
        pytest.fail(f"no NATS server at {NATS_URL}: `make nats` starts one with JetStream")
    tag = uuid.uuid4().hex[:10]
    s = Stream(f"BVTEST_{tag}", f"bvtest.{tag}")
    yield s

    async def delete(js: Any) -> None:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(s.name)

    run_async(_stream_call(s.name, delete))


@pytest.fixture()
def database() -> Iterator[str]:
    with scratch_postgres("bv_nodes") as url:
        yield url


@dataclass
class Seeded:
    reader_id: int
    library_id: int
    barcodes: list[str]
    record_ids: list[int]


def seed(url: str, records: int, *, kiosk: bool = False) -> Seeded:
    """The test world, open all day, a rule lending up to 5,000 copies, and ``records``
    records titled "Lantern <n>" with one copy each; a SIP2 kiosk's account if asked."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            w = factories.world(session)
            for u in (w.central, w.airport, w.community):
                hours = {wd: [Period(0, 24 * 60)] for wd in range(7)}
                libraries.set_weekly_hours(session, None, u, hours, at=factories.NOW)
            factories.rule(session, w, max_loans=5000)
            if kiosk:
                kiosk_account(session, w)
            cataloguer = w.actor(session, w.cataloguer)
            record_ids, barcodes = [], []
            for n in range(records):
                form = catalog.RecordForm(title=f"{TITLE} {n}")
                record = catalog.save_record(session, cataloguer, None, form, at=factories.NOW)
                barcode = f"N{n:05d}"
                catalog.add_items(
                    session,
                    None,
                    [catalog.NewItem(record.id, barcode, w.central.id)],
                    at=factories.NOW,
                )
                record_ids.append(record.id)
                barcodes.append(barcode)
            session.commit()
            return Seeded(w.reader_central.id, w.central.id, barcodes, record_ids)
    finally:
        engine.dispose()


def node_env(data_dir: Path, url: str, stream: Stream) -> dict[str, str]:
    return {
        **cli_env(data_dir),
        **stream.env(),
        "BIBLIOVERSE_DATABASE_URL": url,
        "BIBLIOVERSE_SECRET_KEY": "nodes-share-this-secret-key",
        "BIBLIOVERSE_OFFLINE_CHECK_S": "0",
    }


def node(data_dir: Path, url: str, stream: Stream, name: str) -> Any:
    return serving(
        data_dir,
        env=node_env(data_dir, url, stream),
        args=["--node", name],
        log_name=f"server-{name}.log",
        timeout_s=30,
    )


def found(base: str, q: str, *, available: bool = False) -> int:
    params: dict[str, Any] = {"q": q, "limit": 1}
    if available:
        params["availability"] = "available"
    r = httpx.get(f"{base}{API}/catalog/search", params=params)
    r.raise_for_status()
    return int(r.json()["total"])


def wait_for(what: Callable[[], bool], timeout: float, poll: float = 0.02) -> float:
    """Seconds until ``what()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not what():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(poll)
    return time.monotonic() - start


def token(base: str, login: str) -> dict[str, str]:
    r = httpx.post(
        f"{base}{API}/auth/token",
        json={"kind": "staff", "login": login, "password": factories.STAFF_PW},
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def lend(client: httpx.Client, seeded: Seeded, barcode: str) -> None:
    r = client.post(
        f"{API}/circulation/checkout",
        json={"reader_id": seeded.reader_id, "barcode": barcode, "library_id": seeded.library_id},
    )
    assert r.status_code in (200, 201), r.text


def test_a_loan_and_an_edit_on_node_a_are_found_on_node_b_within_a_second(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    seeded = seed(database, 5)
    with (
        node(tmp_path, database, stream, "a") as (a, _),
        node(tmp_path, database, stream, "b") as (b, _),
    ):
        assert (tmp_path / "nodes" / "a" / "index" / "catalog").is_dir()
        assert (tmp_path / "nodes" / "b" / "index" / "catalog").is_dir()
        wait_for(lambda: found(b, TITLE, available=True) == 5, 30)  # B caught up with the seed

        with httpx.Client(base_url=a, headers=token(a, "central-lib")) as desk:
            lend(desk, seeded, seeded.barcodes[0])
            took = wait_for(lambda: found(b, TITLE, available=True) == 4, 1.0)
        assert found(b, TITLE) == 5 and took < 1.0
        print(f"a loan on A found on B after {took:.3f} s")

        with httpx.Client(base_url=a, headers=token(a, "cataloguer")) as cataloguer:
            r = cataloguer.put(
                f"{API}/catalog/records/{seeded.record_ids[1]}", json={"title": "Quokka almanac"}
            )
            assert r.status_code == 200, r.text
            assert found(a, "Quokka") == 1  # urgent: on the node that saved it at once
            wait_for(lambda: found(b, "Quokka", available=True) == 1, 1.0)
        assert found(b, TITLE) == 4


def test_a_node_that_was_down_catches_up_with_a_thousand_loans(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    copies = 1000
    seeded = seed(database, copies)
    b_started = node(tmp_path, database, stream, "b")
    with node(tmp_path, database, stream, "a") as (a, _):
        with b_started as (b, _):  # B's consumer exists, and follows the seed
            wait_for(lambda: found(b, TITLE, available=True) == copies, 60, poll=0.2)
        # B is down: A lends every copy
        with (
            httpx.Client(base_url=a, headers=token(a, "central-lib"), timeout=30) as desk,
            ThreadPoolExecutor(4) as pool,
        ):
            list(pool.map(lambda barcode: lend(desk, seeded, barcode), seeded.barcodes))
        wait_for(lambda: found(a, TITLE, available=True) == 0, 30, poll=0.2)
        with node(tmp_path, database, stream, "b") as (b, _):
            wait_for(lambda: found(b, TITLE, available=True) == 0, 60, poll=0.2)
            assert found(b, TITLE) == copies  # nothing missed, nothing lost


def signed_in_page(base: str, login: str) -> httpx.Client:
    """A staff member's browser on a node: the session cookie of the sign-in form."""
    client = httpx.Client(base_url=base, follow_redirects=False)
    form = client.get("/signin").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    r = client.post(
        "/signin",
        data={"csrf_token": csrf.group(1), "login": login, "password": factories.STAFF_PW},
    )
    assert r.status_code == 303, r.text
    return client


def test_a_live_page_on_node_b_shows_a_gate_alarm_raised_on_node_a(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    """The building's live page on B, as its browser asks for it every few seconds, shows
    the alarm of a gate that called A: the gate's event went through the stream to the work
    done once (on whichever node), and the page reads the shared database."""
    engine = make_engine(database)
    try:
        with make_session_factory(engine)() as session:
            w = factories.world(session)
            shelf_room = room(session, w)
            _gate, gate_key = accounts.create_device_key(
                session, None, name="Gate", kind="gate", org_unit_id=w.central.id, at=factories.NOW
            )
            session.commit()
            library = w.central.id
    finally:
        engine.dispose()
    with (
        node(tmp_path, database, stream, "a") as (a, _),
        node(tmp_path, database, stream, "b") as (b, _),
        contextlib.closing(signed_in_page(b, "central-lib")) as browser_on_b,
    ):

        def alarms_on_b() -> list[str]:
            r = browser_on_b.get("/staff/building/live", params={"library": library})
            assert r.status_code == 200, r.text
            return re.findall(r'<li class="alarm alarm-raised" id="alarm-\d+">', r.text)

        assert alarms_on_b() == []
        tag = shelf_room.tags["B1"]
        r = httpx.post(
            f"{a}{API}/gates/check", json={"tags": [tag]}, headers={"X-Device-Key": gate_key}
        )
        assert r.json()["alarm"] is True
        took = wait_for(lambda: len(alarms_on_b()) == 1, 3.0, poll=0.1)
        page = browser_on_b.get("/staff/building/live", params={"library": library}).text
        assert f"tag {tag} not checked out" in page
        print(f"a gate alarm on A shown on B's live page after {took:.3f} s")


def keep_for(stream: Stream, seconds: float) -> None:
    """Change how long the stream keeps events (the nodes' setting is a week at least)."""

    async def change(js: Any) -> None:
        config = (await js.stream_info(stream.name)).config
        config.max_age = seconds
        config.duplicate_window = min(config.duplicate_window or seconds, seconds)
        await js.update_stream(config)

    run_async(_stream_call(stream.name, change))


def test_a_node_away_longer_than_the_stream_keeps_events_rebuilds_its_index(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    """B is stopped; A lends every copy; the stream forgets those events (its age limit
    passed). Started again, B finds that its consumer missed events the stream no longer
    has, rebuilds its index from the database, and shows the copies lent."""
    copies = 5
    seeded = seed(database, copies)
    with node(tmp_path, database, stream, "a") as (a, _):
        with node(tmp_path, database, stream, "b") as (b, _):
            wait_for(lambda: found(b, TITLE, available=True) == copies, 30, poll=0.1)
        with httpx.Client(base_url=a, headers=token(a, "central-lib")) as desk:
            for barcode in seeded.barcodes:
                lend(desk, seeded, barcode)
        wait_for(lambda: found(a, TITLE, available=True) == 0, 10, poll=0.1)
        keep_for(stream, 1.0)
        wait_for(lambda: stream_messages(stream) == 0, 30, poll=0.2)
        keep_for(stream, 3600.0)  # and the duplicate window stays a second: no matter here
        with node(tmp_path, database, stream, "b") as (b, _):
            took = wait_for(lambda: found(b, TITLE, available=True) == 0, 30, poll=0.1)
            assert found(b, TITLE) == copies
    log = (tmp_path / "server-b.log").read_text()
    assert "node b had missed" in log and "search index was rebuilt (5 records)" in log
    print(f"B rebuilt and showed the loans {took:.2f} s after it started")


def test_a_consumer_that_started_from_a_time_missed_nothing_until_it_is_older_than_the_stream() -> (
    None
):
    """A node whose index was rebuilt starts its consumer from then: if it never took an
    event, the events before the stream's first are older than its start, unless the
    consumer itself is older than what the stream keeps."""
    now = factories.NOW
    week = 7 * 86_400.0

    def info(created: dt.datetime, policy: DeliverPolicy, acked: int) -> ConsumerInfo:
        return ConsumerInfo(
            name="node-b",
            stream_name="S",
            config=ConsumerConfig(deliver_policy=policy),
            created=created,
            ack_floor=SequenceInfo(consumer_seq=acked, stream_seq=acked),
        )

    by_time = DeliverPolicy.BY_START_TIME
    assert jetstream.missed(info(now, by_time, 0), 40, now=now, max_age_s=week) == 0
    old = now - dt.timedelta(days=8)
    assert jetstream.missed(info(old, by_time, 0), 40, now=now, max_age_s=week) == 39
    assert jetstream.missed(info(now, DeliverPolicy.ALL, 0), 40, now=now, max_age_s=week) == 39
    assert jetstream.missed(info(now, by_time, 12), 40, now=now, max_age_s=week) == 27
    assert jetstream.missed(info(now, by_time, 39), 40, now=now, max_age_s=week) == 0


COUNTED = "test.counted"


def test_the_relay_killed_mid_batch_loses_no_event_and_doubles_none(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    """Node A's relay is killed (SIGKILL) while it publishes a long outbox; started again it
    publishes the rest. A consumer doing work once counts each event it applies, in the
    database: every event exactly once."""
    total = 6_000
    engine = make_engine(database)
    counted = Table("counted", MetaData(), Column("n", Integer, nullable=False))
    counted.create(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        for n in range(total):
            events.record(session, COUNTED, {"n": n}, at=factories.NOW)
        session.commit()

    def count(topic: str, payload: dict[str, Any]) -> None:
        with factory() as s:
            s.execute(insert(counted).values(n=payload["n"]))
            s.commit()

    def published() -> int:
        with factory() as s:
            q = select(func.count()).where(events.OutboxEvent.published_at.is_not(None))
            return int(s.scalar(q) or 0)

    def applied() -> tuple[int, int]:
        with factory() as s:
            row = s.execute(select(func.count(), func.count(counted.c.n.distinct()))).one()
            return int(row[0]), int(row[1])

    events.declare(count, "once")
    link = stream.link()
    link.start()
    try:
        link.follow("counter", jetstream.once_handler(factory, {COUNTED: [count]}, "counter"))
        with node(tmp_path, database, stream, "a") as (_a, proc):
            # mid-batch: some of a batch in the stream, not yet marked in the outbox
            wait_for(lambda: stream_messages(stream) > published(), 30, poll=0.001)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        at_kill, in_stream = published(), stream_messages(stream)
        assert at_kill < in_stream < total, "the relay was not killed mid-batch"
        with node(tmp_path, database, stream, "a"):
            wait_for(lambda: published() == total, 60, poll=0.1)
            assert stream_messages(stream) == total  # a batch published again was dropped
        took = wait_for(lambda: applied()[0] >= total, 180, poll=0.1)
        print(f"killed: {at_kill} marked, {in_stream} in the stream of {total}; {took:.1f} s")
        time.sleep(1.0)  # anything delivered twice would come now
        assert applied() == (total, total)
        with Session(engine) as s:
            handled = s.scalar(
                select(func.count()).where(events.HandledEvent.consumer == "counter")
            )
        assert handled == total
    finally:
        link.stop()
        engine.dispose()


def test_a_command_publishes_what_it_recorded_to_the_stream(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    """`catalog import` on a machine of its own: its records reach the stream, not only the
    index of the folder it ran in, and a running node finds them."""
    seed(database, 0)
    env = {**node_env(tmp_path, database, stream), "BIBLIOVERSE_NODE": "importer"}
    records = Path(__file__).resolve().parents[1] / "data/pymarc/test.dat"
    with node(tmp_path, database, stream, "b") as (b, _):
        r = subprocess.run(
            [str(BIN), "catalog", "import", str(records), "--as", "cataloguer"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert stream_messages(stream) >= 1
        wait_for(lambda: found(b, "") == 10, 10)
    with Session(make_engine(database)) as s:
        assert s.scalar(select(func.count()).where(events.OutboxEvent.published_at.is_(None))) == 0


def test_a_loan_at_a_kiosk_of_node_a_is_found_on_node_b_within_a_second(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    """The SIP2 server of node A publishes its events to the stream (all topics, not only the
    index's), and node B's index follows."""
    seeded = seed(database, 3, kiosk=True)
    port = free_port()
    env = {**node_env(tmp_path, database, stream), "BIBLIOVERSE_NODE": "a"}
    log = tmp_path / "sip2-a.log"
    with node(tmp_path, database, stream, "b") as (b, _), log.open("wb") as sink:
        wait_for(lambda: found(b, TITLE, available=True) == 3, 30)
        sip2 = subprocess.Popen(
            [str(BIN), "sip2", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: _listening(port), 30, poll=0.1)
            wire = Wire(port)
            assert wire.ask(f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPentrance|\r".encode()) == (
                b"941\r"
            )
            date = "20261118    140000"
            card, barcode = "CARD000001", seeded.barcodes[0]
            answer = wire.ask(f"11NN{date}{' ' * 18}AOcentral|AA{card}|AB{barcode}|AC|\r".encode())
            assert answer.startswith(b"121"), answer
            took = wait_for(lambda: found(b, TITLE, available=True) == 2, 1.0)
            print(f"a kiosk's loan on A found on B after {took:.3f} s")
            wire.close()
        finally:
            sip2.terminate()
            sip2.wait(30)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


def test_a_new_node_rebuilds_its_index_then_follows_the_stream_from_then(
    tmp_path: Path, database: str, stream: Stream
) -> None:
    seeded = seed(database, 3)
    env = node_env(tmp_path, database, stream)
    with node(tmp_path, database, stream, "a") as (a, _):
        wait_for(lambda: found(a, TITLE, available=True) == 3, 30)
        r = subprocess.run(
            [str(BIN), "index", "rebuild", "--node", "c"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        built = dt.datetime.fromisoformat(
            (tmp_path / "nodes" / "c" / "index" / "catalog.built_at").read_text()
        )
        with node(tmp_path, database, stream, "c") as (c, _):
            assert found(c, TITLE, available=True) == 3  # from the rebuild
            with httpx.Client(base_url=a, headers=token(a, "central-lib")) as desk:
                lend(desk, seeded, seeded.barcodes[0])
            wait_for(lambda: found(c, TITLE, available=True) == 2, 1.0)

    async def consumer(js: Any) -> Any:
        return await js.consumer_info(stream.name, "node-c")

    config = run_async(_stream_call(stream.name, consumer)).config
    assert config.deliver_policy == DeliverPolicy.BY_START_TIME
    assert config.opt_start_time == built - jetstream.CLOCK_MARGIN


NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def test_events_wait_in_the_outbox_while_nats_is_away(tmp_path: Path, database: str) -> None:
    """A relay whose NATS is not there marks nothing; once a server comes up on that
    address, the next passes publish every event, and a consumer gets each once."""
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    engine = make_engine(database)
    factory = make_session_factory(engine)
    link = jetstream.Link(url, stream="AWAY", subject="away")
    link.start()
    relay = events.Relay(
        factory,
        make_session_factory(engine, read_only=True),
        {},
        {},
        interval=0.2,
        deliver=link.publish,
    )
    relay.start()
    got: list[int] = []
    server = None
    try:
        with factory() as session:
            for n in range(50):
                events.record(session, "test.away", {"n": n}, at=factories.NOW)
            session.commit()
        relay.nudge()
        time.sleep(1.0)
        with factory() as s:
            unpublished = select(func.count()).where(events.OutboxEvent.published_at.is_(None))
            assert s.scalar(unpublished) == 50
        server = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        link.follow("node-x", lambda batch: got.extend(e.payload["n"] for e in batch))
        wait_for(lambda: sorted(got) == list(range(50)), 30, poll=0.1)
        with factory() as s:
            assert s.scalar(unpublished) == 0
    finally:
        relay.stop()
        link.stop()
        if server is not None:
            server.terminate()
            server.wait(10)
        engine.dispose()
