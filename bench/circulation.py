"""Circulation benchmark: check-out and check-in through the API under load, and hold
targeting and the nightly job over a million open holds, on PostgreSQL and SQLite.

    .venv/bin/python bench/circulation.py                      # goal sizes, both databases
    .venv/bin/python bench/circulation.py --quick              # small sizes, about 2 minutes
    .venv/bin/python bench/circulation.py --backend sqlite     # one database only

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) for ``--backend postgresql|both``;
a throwaway database ``bench_circ_<pid>`` is created and dropped. Prints one JSON object per
line (see DESIGN.md) and a short human summary on stderr.

1. Cycles (check-out then check-in of one copy) through the HTTP API: a served app
   (``biblioverse serve --workers 2``), 32 httpx clients in threads with keep-alive and a
   staff bearer token, each on its own copies; then a contended run where all of them fight
   for 100 shared copies (409 item_on_loan / not_on_loan are expected there and counted
   apart). The peer is the same unit of work in-process, one thread: the service call, the
   commit and the event relay (search index refresh) the request does, minus HTTP. Then,
   when wrk is installed (``make bench-tools``), the clients' own cycles again from wrk
   (C, outside Python: the httpx threads cost the machine CPU beside the server's), with
   as many connections as clients: ``http_wrk_cycles_per_s`` and ``http_wrk_request_p95_ms``
   (check-outs and check-ins together, as wrk times them).
2. Hold targeting: holds, records, copies, readers and overdue loans bulk-inserted; the
   check-in look-up (``holds._next_hold``) on random copies, with the same SQL run on the raw
   driver (psycopg / sqlite3) as the peer; a full check-in routing a copy to a waiting hold;
   the nightly job (``holds.expire_and_resume`` + ``fees.accrue``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _bare_api
import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
import _pgbench
import _seed
import httpx
import psycopg
from _harness import Backend, Server, emit, percentile
from _proc import busy_since, machine_busy, proc_cpu_s, self_cpu_s
from sqlalchemy import Engine, Table, event, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from biblioverse import (
    accounts,
    catalog,
    circulation,
    deps,
    events,
    libraries,
)
from biblioverse.access import Actor, Role
from biblioverse.circulation import fees, holds
from biblioverse.circulation.matrix import Matrix
from biblioverse.db import make_engine, make_session_factory, utcnow
from biblioverse.libraries import OrgKind, Period

API = "/api/v1"
DESK_USER, DESK_PW = "bench-desk", "bench-desk-password-1"
ADMIN_USER = "bench-admin"

TABLES = catalog.Record.metadata.tables
RECORDS, ITEMS, READERS = TABLES["records"], TABLES["items"], TABLES["readers"]
HOLDS, LOANS = TABLES["holds"], TABLES["loans"]

# --- sizes and databases --------------------------------------------------------------------


@dataclass
class Sizes:
    clients: int
    copies_per_client: int
    shared_copies: int
    seconds: float
    inproc_cycles: int
    holds: int
    records: int
    readers: int
    overdue_loans: int
    lookups: int
    checkins: int

    @classmethod
    def of(cls, quick: bool, args: argparse.Namespace) -> Sizes:
        s = (
            cls(32, 4, 100, 5, 200, 100_000, 20_000, 2_000, 1_000, 500, 100)
            if quick
            else cls(32, 4, 100, 20, 1000, 1_000_000, 200_000, 5_000, 10_000, 2000, 300)
        )
        if args.seconds:
            s.seconds = args.seconds
        if args.clients:
            s.clients = args.clients
        if args.overdue_loans is not None:
            s.overdue_loans = args.overdue_loans
        return s


# --- the world, through the services --------------------------------------------------------


@dataclass
class World:
    consortium_id: int
    central_id: int
    unit_ids: list[int]  # the service points (pickup libraries)
    rule_id: int
    desk_staff_id: int
    client_readers: list[int]
    client_copies: list[list[str]]
    shared_copies: list[str]
    peer_reader: int
    peer_copies: list[str]
    borrower: int  # borrows copies whose titles have queues (part 2); has no holds


def seed_world(factory: sessionmaker[Session], sizes: Sizes, at: dt.datetime) -> World:
    """Org units with opening hours, staff, one generous rule, readers and copies, created
    through the services the way tests/factories.py does."""
    with factory() as session:
        consortium = _seed.unit(session, OrgKind.CONSORTIUM, "consortium", None, at)
        central = _seed.unit(session, OrgKind.LIBRARY, "central", consortium.id, at)
        airport = _seed.unit(session, OrgKind.BRANCH, "airport", central.id, at)
        community = _seed.unit(session, OrgKind.BRANCH, "community", central.id, at)
        for u in (central, airport, community):
            hours = {wd: [Period(9 * 60, 21 * 60)] for wd in range(7)}
            libraries.set_weekly_hours(session, None, u, hours, at=at)
        admin = _seed.staff(
            session, ADMIN_USER, DESK_PW, Role.ADMIN, consortium.id, at, full_name="Bench Admin"
        )
        desk = _seed.staff(
            session, DESK_USER, DESK_PW, Role.CIRCULATION, central.id, at, full_name="Bench Desk"
        )
        rule = _seed.generous_rule(session, consortium.id, at, max_loans=1000, max_holds=1000)
        session.flush()
        boss = accounts.actor_for_staff(session, admin)

        def reader(n: int) -> int:
            name, card = f"Bench Reader {n}", f"BC{n:08d}"
            return _seed.reader(session, boss, n, name=name, card=card, home=central.id, at=at)

        def copies(title: str, barcodes: list[str]) -> list[str]:
            return _seed.copies(session, boss, title, barcodes, central.id, at)

        client_readers = [reader(k) for k in range(sizes.clients)]
        client_copies = [
            copies(
                f"Bench client {k}",
                [f"C{k:03d}-{j:03d}" for j in range(sizes.copies_per_client)],
            )
            for k in range(sizes.clients)
        ]
        shared: list[str] = []
        for t in range(0, sizes.shared_copies, 10):
            shared += copies(
                f"Bench shared {t // 10}",
                [f"S{j:04d}" for j in range(t, min(t + 10, sizes.shared_copies))],
            )
        world = World(
            consortium_id=consortium.id,
            central_id=central.id,
            unit_ids=[central.id, airport.id, community.id],
            rule_id=rule.id,
            desk_staff_id=desk.id,
            client_readers=client_readers,
            client_copies=client_copies,
            shared_copies=shared,
            peer_reader=reader(9000),
            peer_copies=copies("Bench in-process", [f"P{j:03d}" for j in range(8)]),
            borrower=reader(9001),
        )
        session.commit()
    return world


def desk_actor(factory: sessionmaker[Session], world: World) -> Actor:
    with factory() as session:
        staff = session.get(accounts.StaffUser, world.desk_staff_id)
        assert staff is not None
        return accounts.actor_for_staff(session, staff)


# --- 1. cycles through the API --------------------------------------------------------------


def log_problems(log: Path) -> dict[str, int]:
    """Lines of the server's log that say something went wrong under the load."""
    out = log.read_text(errors="replace") if log.exists() else ""
    return {
        "subscriber_failed": out.count("subscriber failed"),
        "unhandled_error": out.count("unhandled error"),
        "database_unavailable": out.count("database unavailable"),
    }


def start_server(backend: Backend, workers: int) -> Server:
    return h.serve(
        lambda port: [str(h.BIN), "serve", "--port", str(port), "--workers", str(workers)],
        backend.env(),
        backend.data_dir / "server-app.log",
    )


def login(base: str) -> str:
    r = httpx.post(
        f"{base}{API}/auth/token",
        json={"kind": "staff", "login": DESK_USER, "password": DESK_PW},
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class LoadResult:
    cycles: int
    wall_s: float
    checkout: OpStats
    checkin: OpStats
    errors: int
    expected_refusals: int
    client_cpu_s: float
    server_cpu_s: float
    machine_busy_pct: float


def _outcome(r: httpx.Response) -> str:
    if r.is_success:
        return str(r.status_code)
    try:
        return f"{r.status_code} {r.json().get('error')}"
    except ValueError:
        return str(r.status_code)


EXPECTED = {
    "checkout": {"201"},
    "checkin": {"200"},
}
CONTENDED_REFUSALS = {"checkout": "409 item_on_loan", "checkin": "409 not_on_loan"}


def http_load(
    server: Server,
    token: str,
    world: World,
    sizes: Sizes,
    *,
    contended: bool,
    paced: float | None = None,
) -> LoadResult:
    """``sizes.clients`` threads, each with a keep-alive httpx client, doing check-out then
    check-in until the time is up. Each request is timed on the client.

    ``paced``: cycles a second between all clients, each client starting its cycles at
    even intervals (staggered against the others) instead of as soon as the last is
    answered; a check-out is timed from when it was due, so one held up by a slow cycle
    counts its wait (the check-in follows its answer, and is timed from its sending)."""
    n = sizes.clients

    def start() -> None:  # the barrier's action: the clocks start once every client is warm
        now = time.perf_counter()
        deadline[:] = [now + sizes.seconds, now]

    barrier = threading.Barrier(n + 1, action=start)
    deadline = [0.0, 0.0]  # the end, and the start the paced clients count from
    lock = threading.Lock()
    stats = {"checkout": OpStats(), "checkin": OpStats()}
    cycles = [0]
    headers = {"Authorization": f"Bearer {token}"}
    central = world.central_id

    def client(k: int) -> None:
        rng = random.Random(k)
        mine = {"checkout": OpStats(), "checkin": OpStats()}
        done = 0
        # Longer than the server's own waits (30 s for a pooled connection or the SQLite
        # lock), so that what it answers then is seen, not a client-side timeout.
        with httpx.Client(base_url=server.base, headers=headers, timeout=40) as c:

            def op(name: str, body: dict[str, Any], timed: bool, due: float = 0.0) -> None:
                t = due or time.perf_counter()
                try:
                    outcome = _outcome(c.post(f"{API}/circulation/{name}", json=body))
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if timed:
                    mine[name].latencies.append((time.perf_counter() - t) * 1000)
                    mine[name].outcomes[outcome] += 1

            def cycle(i: int, timed: bool, due: float = 0.0) -> None:
                if contended:
                    barcode = rng.choice(world.shared_copies)
                else:
                    own = world.client_copies[k]
                    barcode = own[i % len(own)]
                reader = world.client_readers[k]
                op(
                    "checkout",
                    {"reader_id": reader, "barcode": barcode, "library_id": central},
                    timed,
                    due,
                )
                op("checkin", {"barcode": barcode, "library_id": central}, timed)

            if contended:  # connect and sign in once, untimed
                op("checkin", {"barcode": world.shared_copies[k], "library_id": central}, False)
            else:
                cycle(0, timed=False)
            try:
                barrier.wait(timeout=300)
            except threading.BrokenBarrierError:
                return
            i = 1
            every = n / paced if paced else 0.0
            due = deadline[1] + every * k / n
            while time.perf_counter() < deadline[0]:
                if paced:
                    if due >= deadline[0]:
                        break
                    time.sleep(max(0.0, due - time.perf_counter()))
                    cycle(i, timed=True, due=due)
                    due += every
                else:
                    cycle(i, timed=True)
                i += 1
                done += 1
        with lock:
            cycles[0] += done
            for name, s in mine.items():
                stats[name].latencies += s.latencies
                stats[name].outcomes.update(s.outcomes)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for th in threads:
        th.start()
    cpu0 = self_cpu_s()
    server_cpu0, busy0 = proc_cpu_s(server.process.pid), machine_busy()
    barrier.wait(timeout=300)
    t0 = deadline[1]
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    cpu1 = self_cpu_s()
    server_cpu1, busy = proc_cpu_s(server.process.pid), busy_since(busy0)
    errors = expected = 0
    for name, s in stats.items():
        for outcome, count in s.outcomes.items():
            if outcome in EXPECTED[name]:
                continue
            if contended and outcome == CONTENDED_REFUSALS[name]:
                expected += count
            else:
                errors += count
    return LoadResult(
        cycles=cycles[0],
        wall_s=wall,
        checkout=stats["checkout"],
        checkin=stats["checkin"],
        errors=errors,
        expected_refusals=expected,
        client_cpu_s=cpu1 - cpu0,
        server_cpu_s=server_cpu1 - server_cpu0,
        machine_busy_pct=100 * busy,
    )


# Each wrk thread lends and takes back its share of the clients' copies: a copy is lent
# when it is free and taken back once its loan is answered, found again in the answer by
# its item id; so no two requests in flight touch the same copy. wrk's own latency
# histogram times every request, check-outs and check-ins together.
WRK_CYCLES = """
local jobs_of = {%(jobs)s}
local headers = {["Authorization"] = "Bearer %(token)s",
                 ["Content-Type"] = "application/json"}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("me", #threads)
end
function init(args)
  ready, by_item, lent, back, other = {}, {}, 0, 0, 0
  for _, j in ipairs(jobs_of[me]) do
    table.insert(ready, {j, "checkout"})
    by_item[j[3]] = j
  end
end
function stamp(j) end     -- the paced run's hooks (WRK_PACED)
function answered(j) end
function request()
  local next = table.remove(ready, 1)
  if next == nil then  -- every copy of this thread in flight or lost to an error
    stamp({})
    return wrk.format("GET", "/health")
  end
  local j, op = next[1], next[2]
  stamp(j)
  local body
  if op == "checkout" then
    body = string.format('{"reader_id":%%d,"barcode":"%%s","library_id":%(library)d}', j[2], j[1])
  else
    body = string.format('{"barcode":"%%s","library_id":%(library)d}', j[1])
  end
  return wrk.format("POST", "%(api)s/circulation/" .. op, headers, body)
end
function response(status, headers, body)
  local item = tonumber(string.match(body, '"item_id":(%%d+)'))
  local j = item and by_item[item]
  if j ~= nil and (status == 201 or status == 200) then
    answered(j)
  end
  if j ~= nil and status == 201 then
    lent = lent + 1
    table.insert(ready, {j, "checkin"})
  elseif j ~= nil and status == 200 then
    back = back + 1
    table.insert(ready, {j, "checkout"})
  else  -- a refusal, an error, or the health check of a thread with nothing to send
    other = other + 1
  end
end
done = function(summary, latency, requests)
  -- failed requests; answers that were neither a loan nor a return are counted as "other"
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  local lent, back, other = 0, 0, 0
  for _, t in ipairs(threads) do
    lent, back, other = lent + t:get("lent"), back + t:get("back"), other + t:get("other")
  end
  local q = {latency:percentile(50) / 1000, latency:percentile(95) / 1000,
             latency:percentile(99) / 1000}
  local waited = {}  -- the paced run: each answer timed from when its request was due
  for _, t in ipairs(threads) do
    for _, ms in ipairs(t:get("waits") or {}) do table.insert(waited, ms) end
  end
  if #waited > 0 then
    table.sort(waited)
    for i, p in ipairs({50, 95, 99}) do
      q[i] = waited[math.max(1, math.ceil(#waited * p / 100))]
    end
  end
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%.3f %%.3f %%.3f %%.3f\\n",
    summary.requests, errors, lent, back, other, q[1], q[2], q[3], summary.duration / 1e6))
end
"""

# The paced run: each wrk thread sends its requests at even intervals (its share of the
# rate, the two threads staggered), on whichever of its connections is free; a request is
# timed from when it was due, so one that waited for a connection counts its wait. LuaJIT's
# ffi reads the monotonic clock (Lua's own os.clock is CPU time).
WRK_PACED = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bv_timespec;
int clock_gettime(int clk_id, bv_timespec *tp);
]]
local clock = ffi.new("bv_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local every, slot, dues = %(every_ms)f, nil, {}
waits = {}
function delay()
  local now = now_ms()
  slot = slot and slot + every or now + every * (me - 1) / %(threads)d
  table.insert(dues, slot)
  return math.max(0, math.ceil(slot - now))  -- wrk drops a fraction: never early
end
function stamp(j) j.due = table.remove(dues, 1) end
function answered(j)
  if j.due then table.insert(waits, now_ms() - j.due) end
end
"""


@dataclass
class WrkResult:
    requests: int
    errors: int  # answers other than a loan or a return, and failed requests
    loans: int
    returns: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    wall_s: float
    server_cpu_s: float
    machine_busy_pct: float


def wrk_load(
    server: Server,
    token: str,
    world: World,
    sizes: Sizes,
    engine: Engine,
    paced: float | None = None,
) -> WrkResult | None:
    """The clients' own copies lent and taken back by wrk (C, outside Python), with as many
    connections as there were clients: the httpx clients' threads cost the machine as much
    CPU as a fifth of the server's. None without wrk. ``paced``: cycles a second, sent at
    even intervals, each request timed from when it was due (``WRK_PACED``)."""
    if not h.wrk_available():
        return None
    barcodes = [b for own in world.client_copies for b in own]
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                select(catalog.Item.barcode, catalog.Item.id).where(
                    catalog.Item.barcode.in_(barcodes)
                )
            ).all()
        )
    threads = 2
    jobs: list[list[str]] = [[] for _ in range(threads)]
    for k, own in enumerate(world.client_copies):
        reader = world.client_readers[k]
        jobs[k % threads] += [f'{{"{b}", {reader}, {ids[b]}}}' for b in own]
    lua = WRK_CYCLES % {
        "jobs": ", ".join("{" + ", ".join(j) + "}" for j in jobs),
        "token": token,
        "api": API,
        "library": world.central_id,
    } + (
        WRK_PACED % {"every_ms": threads * 1000 / (2 * paced), "threads": threads}
        if paced is not None
        else ""
    )

    def run(seconds: float) -> list[str]:
        # a request's timeout as the httpx clients' (wrk's default, 2 s, is shorter than
        # what a request may wait for SQLite's write lock under this load)
        return h.run_wrk(
            server.base,
            lua,
            threads=threads,
            connections=sizes.clients,
            seconds=seconds,
            timeout="40s",
        )

    run(2)  # connections, caches, the server's first requests: untimed
    give_back(server, token, world)  # copies left lent when wrk stopped
    server_cpu0, busy0 = proc_cpu_s(server.process.pid), machine_busy()
    fields = run(sizes.seconds)
    server_cpu1, busy = proc_cpu_s(server.process.pid), busy_since(busy0)
    give_back(server, token, world)  # after the readings: not counted in the load's CPU
    n, errors, lent, back, other, p50, p95, p99, wall = fields
    return WrkResult(
        requests=int(n),
        errors=int(errors) + int(other),
        loans=int(lent),
        returns=int(back),
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        wall_s=float(wall),
        server_cpu_s=server_cpu1 - server_cpu0,
        machine_busy_pct=100 * busy,
    )


def give_back(server: Server, token: str, world: World) -> None:
    """Take back every client copy still lent (a refusal for the others is expected)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=40) as c:
        for own in world.client_copies:
            for barcode in own:
                r = c.post(
                    f"{API}/circulation/checkin",
                    json={"barcode": barcode, "library_id": world.central_id},
                )
                if r.status_code not in (200, 409):
                    raise RuntimeError(f"could not take {barcode} back: {r.status_code}")


def report_wrk(r: WrkResult | None, sizes: Sizes, workers: int) -> None:
    if r is None:
        emit("http_wrk_cycles_per_s", float("nan"), "cycles/s", note="wrk not found")
        return
    goal: dict[str, object] = {}
    if h.backend_name() == "postgresql":
        goal = {"goal": 500, "better": "higher"}
    emit(
        "http_wrk_cycles_per_s",
        min(r.loans, r.returns) / r.wall_s,
        "cycles/s",
        **goal,
        n=r.requests,
        loans=r.loans,
        returns=r.returns,
        seconds=round(r.wall_s, 1),
        clients=sizes.clients,
        workers=workers,
        load="wrk (C), 2 threads",
        server_cpu_s=round(r.server_cpu_s, 1),
        server_cpu_ms_per_request=round(1000 * r.server_cpu_s / max(1, r.requests), 2),
        machine_busy_pct=round(r.machine_busy_pct),
    )
    extra: dict[str, object] = {"goal": 20, "better": "lower"} if goal else {}
    emit("http_wrk_request_p50_ms", r.p50_ms, "ms", n=r.requests)
    emit("http_wrk_request_p95_ms", r.p95_ms, "ms", n=r.requests, **extra)
    emit("http_wrk_request_p99_ms", r.p99_ms, "ms", n=r.requests)
    emit("http_wrk_errors", r.errors, "requests", goal=0, better="lower")


def _lend(session: Session, actor: Actor, world: World, barcode: str) -> None:
    circulation.checkout(
        session,
        actor,
        reader_id=world.peer_reader,
        barcode=barcode,
        at_unit_id=world.central_id,
        channel="api",
        at=utcnow(),
    )


def _take_back(session: Session, actor: Actor, world: World, barcode: str) -> None:
    circulation.checkin(session, actor, barcode=barcode, at_unit_id=world.central_id, at=utcnow())


@dataclass
class InprocResult:
    cycles: int
    wall_s: float
    checkout: list[float]
    checkin: list[float]


def inproc_cycles(
    factory: sessionmaker[Session],
    actor: Actor,
    world: World,
    cycles: int,
    relay: Callable[[Session], None] | None,
) -> InprocResult:
    """The raw peer: the same check-out and check-in, one thread, a session per call that
    commits (and, with ``relay``, publishes the events as the request does)."""

    def unit_of_work(call: Callable[..., object], barcode: str) -> float:
        t = time.perf_counter()
        with factory() as session:
            call(session, actor, world, barcode)
            session.commit()
            if relay is not None and events.has_pending(session):
                relay(session)
                session.commit()
        return (time.perf_counter() - t) * 1000

    out: list[float] = []
    back: list[float] = []
    t0 = 0.0
    for i in range(-5, cycles):  # five to warm up
        if i == 0:
            t0 = time.perf_counter()
        barcode = world.peer_copies[i % len(world.peer_copies)]
        a = unit_of_work(_lend, barcode)
        b = unit_of_work(_take_back, barcode)
        if i >= 0:
            out.append(a)
            back.append(b)
    return InprocResult(cycles, time.perf_counter() - t0, out, back)


def report_load(kind: str, r: LoadResult, sizes: Sizes, workers: int) -> None:
    rate = r.cycles / r.wall_s
    common = {"clients": sizes.clients, "workers": workers, "load": "httpx threads"}
    goal = (
        {"goal": 500, "better": "higher"}
        if kind == "own" and h.backend_name() == "postgresql"
        else {}
    )
    emit(
        f"http_{kind}_cycles_per_s",
        rate,
        "cycles/s",
        **goal,
        n=r.cycles,
        seconds=round(r.wall_s, 1),
        **common,
        client_cpu_s=round(r.client_cpu_s, 1),
        server_cpu_s=round(r.server_cpu_s, 1),
        machine_busy_pct=round(r.machine_busy_pct),
    )
    for name, s in (("checkout", r.checkout), ("checkin", r.checkin)):
        for q in (50, 95, 99):
            extra: dict[str, object] = {}
            if q == 95 and kind == "own" and h.backend_name() == "postgresql":
                extra = {"goal": 20, "better": "lower"}
            emit(
                f"http_{kind}_{name}_p{q}_ms",
                percentile(s.latencies, q),
                "ms",
                n=len(s.latencies),
                **extra,
            )
        emit(f"http_{kind}_{name}_max_ms", max(s.latencies, default=float("nan")), "ms")
        emit(
            f"http_{kind}_{name}_outcomes",
            sum(s.outcomes.values()),
            "requests",
            outcomes=dict(s.outcomes),
        )
    emit(f"http_{kind}_errors", r.errors, "requests", goal=0, better="lower")
    if kind == "contended":
        emit(
            "http_contended_expected_refusals",
            r.expected_refusals,
            "requests",
            note="409 item_on_loan on check-out, 409 not_on_loan on check-in",
        )
        emit(
            "http_contended_loans_per_s",
            r.checkout.outcomes.get("201", 0) / r.wall_s,
            "loans/s",
            shared_copies=sizes.shared_copies,
        )


def report_paced(
    by_httpx: LoadResult | None, by_wrk: WrkResult | None, sizes: Sizes, asked: float
) -> dict[str, Any]:
    """The paced run (``http_paced_*``): the latency a reader sees at a steady rate below
    what the server can do, each request (wrk) or check-out (httpx) timed from when it was
    due. From wrk when it is installed, else from the httpx clients."""
    if by_wrk is not None:
        r = by_wrk
        rate, n = min(r.loans, r.returns) / r.wall_s, r.loans + r.returns
        cpu, busy, errors = r.server_cpu_s, r.machine_busy_pct, r.errors
        p50, p95, p99 = r.p50_ms, r.p95_ms, r.p99_ms
        load = "wrk (C), 2 threads"
        note = "requests sent at even intervals, each timed from when it was due"
    elif by_httpx is not None:
        r2 = by_httpx
        both = r2.checkout.latencies + r2.checkin.latencies
        rate, n = r2.cycles / r2.wall_s, len(both)
        cpu, busy, errors = r2.server_cpu_s, r2.machine_busy_pct, r2.errors
        p50, p95, p99 = percentile(both, 50), percentile(both, 95), percentile(both, 99)
        load = "httpx threads"
        note = "cycles started at even intervals, a check-out timed from when it was due"
    else:
        return {}
    emit(
        "http_paced_cycles_per_s",
        rate,
        "cycles/s",
        n=n,
        asked=round(asked, 1),
        clients=sizes.clients,
        load=load,
        server_cpu_ms_per_request=round(1000 * cpu / max(1, n), 2),
        machine_busy_pct=round(busy),
        note=note,
    )
    emit("http_paced_request_p50_ms", p50, "ms", n=n)
    emit("http_paced_request_p95_ms", p95, "ms", n=n, goal=20, better="lower")
    emit("http_paced_request_p99_ms", p99, "ms", n=n)
    emit("http_paced_errors", errors, "requests", goal=0, better="lower")
    return {"paced_rate": rate, "paced_p95": p95, "paced_errors": errors}


def part_cycles(
    backend: Backend,
    engine: Engine,
    factory: sessionmaker[Session],
    world: World,
    sizes: Sizes,
    workers: int,
    paced_rate: float,
) -> dict[str, Any]:
    server = start_server(backend, workers)
    at_pace: LoadResult | None = None
    wrk_paced: WrkResult | None = None
    asked = 0.0  # cycles/s of the paced run (none when 0)
    try:
        token = login(server.base)
        own = http_load(server, token, world, sizes, contended=False)
        contended = http_load(server, token, world, sizes, contended=True)
        by_wrk = wrk_load(server, token, world, sizes, engine)
        if paced_rate >= 0:
            full = by_wrk.loans / by_wrk.wall_s if by_wrk else own.cycles / own.wall_s
            asked = paced_rate or full / 2
        if asked > 0 and by_wrk is not None:
            wrk_paced = wrk_load(server, token, world, sizes, engine, paced=asked)
        elif asked > 0:
            at_pace = http_load(server, token, world, sizes, contended=False, paced=asked)
    finally:
        server.stop()
    report_load("own", own, sizes, workers)
    report_load("contended", contended, sizes, workers)
    report_wrk(by_wrk, sizes, workers)
    paced_out = report_paced(at_pace, wrk_paced, sizes, asked)
    problems = log_problems(server.log)
    kept = Path(tempfile.gettempdir()) / f"bench-circulation-{backend.name}-server.log"
    shutil.copyfile(server.log, kept)  # the data folder goes at the end
    emit(
        "server_log_problems",
        sum(problems.values()),
        "lines",
        goal=0,
        better="lower",
        **problems,
        log=str(kept),
    )

    # The in-process peer, with the server stopped (it gets the machine to itself).
    actor = desk_actor(factory, world)
    index = catalog.TantivyIndex(backend.data_dir / "index" / "catalog")
    read_factory = make_session_factory(engine, read_only=True)
    handlers = {"catalog.records.changed": [catalog.reindexer(read_factory, lambda: index)]}

    def relay(session: Session) -> None:
        events.dispatch_pending(session, handlers=handlers)

    peer = inproc_cycles(factory, actor, world, sizes.inproc_cycles, relay)
    bare = inproc_cycles(factory, actor, world, sizes.inproc_cycles, None)
    peer_rate = peer.cycles / peer.wall_s
    emit(
        "inproc_cycles_per_s",
        peer_rate,
        "cycles/s",
        n=peer.cycles,
        threads=1,
        note="service + commit + event relay (search index refresh), no HTTP",
    )
    for name, lat in (("checkout", peer.checkout), ("checkin", peer.checkin)):
        for q in (50, 95, 99):
            emit(f"inproc_{name}_p{q}_ms", percentile(lat, q), "ms", n=len(lat))
    emit(
        "inproc_no_relay_cycles_per_s",
        bare.cycles / bare.wall_s,
        "cycles/s",
        n=bare.cycles,
        threads=1,
        note="service + commit only: what the event relay costs is the difference",
    )
    for name, lat in (("checkout", bare.checkout), ("checkin", bare.checkin)):
        emit(f"inproc_no_relay_{name}_p95_ms", percentile(lat, 95), "ms", n=len(lat))
    for name, http_lat, raw_lat in (
        ("checkout", own.checkout.latencies, peer.checkout),
        ("checkin", own.checkin.latencies, peer.checkin),
    ):
        emit(
            f"ratio_http_vs_inproc_{name}_p95",
            percentile(http_lat, 95) / percentile(raw_lat, 95),
            "x",
            better="lower",
            http=f"{sizes.clients} clients",
            inproc="1 thread",
        )
    own_rate = own.cycles / own.wall_s
    emit("ratio_http_vs_inproc_cycles_per_s", own_rate / peer_rate, "x", better="higher")
    raw = raw_engine(backend, engine, factory, actor, world, sizes, own_rate)
    floor = bare_python(backend, engine, world, sizes, workers, by_wrk)
    return {
        **raw,
        **floor,
        **paced_out,
        "cycles_per_s": own_rate,
        "checkout_p95": percentile(own.checkout.latencies, 95),
        "checkin_p95": percentile(own.checkin.latencies, 95),
        "errors": own.errors + contended.errors,
        "contended_refusals": contended.expected_refusals,
        "outcomes": own.checkout.outcomes + own.checkin.outcomes,
        "server_log": problems,
        "inproc_cycles_per_s": peer_rate,
        "inproc_checkout_p95": percentile(peer.checkout, 95),
        "inproc_checkin_p95": percentile(peer.checkin, 95),
        **(
            {
                "wrk_cycles_per_s": min(by_wrk.loans, by_wrk.returns) / by_wrk.wall_s,
                "wrk_p95": by_wrk.p95_ms,
                "wrk_errors": by_wrk.errors,
            }
            if by_wrk is not None
            else {}
        ),
    }


def raw_engine(
    backend: Backend,
    engine: Engine,
    factory: sessionmaker[Session],
    actor: Actor,
    world: World,
    sizes: Sizes,
    api_rate: float,
) -> dict[str, Any]:
    """The database alone (PostgreSQL): pgbench sends a cycle's statements from as many
    connections as the API had clients, on the clients' own copies (all back on the shelf
    once the API runs are over). See ``_pgbench``."""
    if backend.name != "postgresql":
        return {}
    if not _pgbench.available():
        emit("raw_engine_cycles_per_s", float("nan"), "cycles/s", note="pgbench not found")
        return {}

    def one_cycle() -> None:
        barcode = world.peer_copies[0]
        for call in (_lend, _take_back):
            with factory() as session:
                call(session, actor, world, barcode)
                session.commit()

    one_cycle()  # statements built and cached, as in a warm server
    live = [s for tx in _pgbench.live_shapes(engine, one_cycle) for s in tx]
    scripted = _pgbench.script_shapes()
    matches, check = _pgbench.script_check(live, scripted)
    emit("raw_engine_script_matches", matches, "bool", **check)
    copies = [
        [(barcode, world.client_readers[k], None) for barcode in own]
        for k, own in enumerate(world.client_copies)
    ]
    r = _pgbench.run_prepared(
        backend.conninfo(),
        copies,
        backend.dbname,
        clients=sizes.clients,
        seconds=sizes.seconds,
        unit_id=world.central_id,
        rule_id=world.rule_id,
    )
    emit(
        "raw_engine_cycles_per_s",
        r.cycles_per_s,
        "cycles/s",
        n=r.cycles,
        failed=r.failed,
        clients=sizes.clients,
        note="pgbench (C, prepared statements) sending a cycle's statements: the database alone",
    )
    for q in (50, 95):
        emit(f"raw_engine_cycle_p{q}_ms", percentile(r.cycle_ms, q), "ms", note="two transactions")
    emit("ratio_http_vs_raw_engine_cycles_per_s", api_rate / r.cycles_per_s, "x", better="higher")
    # Little's law: clients that send again as soon as they are answered wait on average
    # clients / requests-per-second; the p95 goal (20 ms per request) needs at least this.
    emit(
        "cycles_per_s_for_mean_20ms",
        sizes.clients / 0.020 / 2,
        "cycles/s",
        note=f"{sizes.clients} clients back to back: mean wait = clients / rate (Little's law)",
    )
    return {
        "raw_cycles_per_s": r.cycles_per_s,
        "raw_cycle_p95": percentile(r.cycle_ms, 95),
        "raw_script_matches": bool(matches),
    }


def bare_python(
    backend: Backend,
    engine: Engine,
    world: World,
    sizes: Sizes,
    workers: int,
    api: WrkResult | None,
) -> dict[str, Any]:
    """The floor of any Python server (PostgreSQL, with wrk): the same cycles from wrk against
    ``_bare_api``, a bare ASGI app on raw psycopg sending the script's statements, under the
    same uvicorn, workers and threads as the app. See ``_bare_api``."""
    if backend.name != "postgresql" or api is None:
        return {}
    bare = [_pgbench.shape(s) for s in _bare_api.CYCLE]
    matches, check = _pgbench.script_check(bare, _pgbench.script_shapes())
    emit("bare_python_statements_match", matches, "bool", **check)
    token = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "BARE_DSN": backend.conninfo(),
        "BARE_TOKEN": token,
        "BARE_UNIT": str(world.central_id),
        "BARE_RULE": str(world.rule_id),
        "BARE_THREADS": str(deps.UNIT_THREADS),
    }
    uvicorn = [str(h.BIN.parent / "uvicorn"), "_bare_api:app", "--app-dir", str(h.ROOT / "bench")]
    options = ["--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--no-access-log"]
    conninfo = env["BARE_DSN"]
    before = _pgbench.last_event_id(conninfo)
    server = h.serve(
        lambda port: [*uvicorn, "--port", str(port), "--workers", str(workers), *options],
        env,
        backend.data_dir / "server-bare.log",
    )
    try:
        r = wrk_load(server, token, world, sizes, engine)
    finally:
        server.stop()
        _pgbench.forget_events(conninfo, before)
    assert r is not None  # wrk ran for the app a moment ago
    rate = min(r.loans, r.returns) / r.wall_s
    emit(
        "bare_python_cycles_per_s",
        rate,
        "cycles/s",
        n=r.requests,
        clients=sizes.clients,
        workers=workers,
        threads=deps.UNIT_THREADS,
        server_cpu_ms_per_request=round(1000 * r.server_cpu_s / max(1, r.requests), 2),
        machine_busy_pct=round(r.machine_busy_pct),
        note="a bare ASGI app on raw psycopg, the script's statements, same uvicorn: "
        "the floor of a Python server here",
    )
    for q, v in ((50, r.p50_ms), (95, r.p95_ms), (99, r.p99_ms)):
        emit(f"bare_python_request_p{q}_ms", v, "ms", n=r.requests)
    emit("bare_python_errors", r.errors, "requests", goal=0, better="lower")
    api_rate = min(api.loans, api.returns) / api.wall_s
    emit("ratio_http_vs_bare_python_cycles_per_s", api_rate / rate, "x", better="higher")
    return {"bare_cycles_per_s": rate, "bare_p95": r.p95_ms, "bare_errors": r.errors}


# --- 2. holds over a large queue ------------------------------------------------------------


@dataclass
class HoldData:
    record_base: int  # record i of the bench is id record_base + i; its copy item_base + i
    item_base: int
    records: int
    holds: int
    expired: int
    resumed: int
    overdue: int


def _next_id(conn: Any, table: Table) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _insert_chunks(
    conn: Any, table: Table, rows: Iterator[dict[str, Any]], chunk: int = 10_000
) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            conn.execute(insert(table), batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)


def seed_holds(engine: Engine, world: World, sizes: Sizes, at: dt.datetime) -> HoldData:
    """Records with one copy each, readers, holds (about ``holds / records`` per title, in
    request order), and overdue loans, inserted in bulk with SQLAlchemy Core.

    Hold i is for title ``i % records``, k-th in its queue (k = i // records). Of the holds,
    1 in 100 is suspended until yesterday (the job resumes it), 1 in 100 suspended until next
    month, and the first hold of one title in 50 is ready on the hold shelf with its pickup
    time over (the job expires it); the rest wait."""
    R, H, NR = sizes.records, sizes.holds, sizes.readers
    today = at.date()
    with engine.begin() as conn:
        rec0, item0 = _next_id(conn, RECORDS), _next_id(conn, ITEMS)
        reader0, hold0, loan0 = (
            _next_id(conn, READERS),
            _next_id(conn, HOLDS),
            _next_id(conn, LOANS),
        )
        _insert_chunks(
            conn,
            RECORDS,
            (
                {
                    "id": rec0 + i,
                    "marc": b"",
                    "marc_utf8": True,
                    "title": f"Queued title {i}",
                    "created_at": at,
                    "updated_at": at,
                }
                for i in range(R)
            ),
        )
        ready = {i for i in range(0, R, 50)}
        _insert_chunks(
            conn,
            ITEMS,
            (
                {
                    "id": item0 + i,
                    "record_id": rec0 + i,
                    "barcode": f"H{i:09d}",
                    "org_unit_id": world.central_id,
                    "item_type": "book",
                    "status": "on_hold_shelf" if i in ready else "available",
                    "circulates": True,
                    "created_at": at,
                }
                for i in range(R)
            ),
        )
        _insert_chunks(
            conn,
            READERS,
            (
                {
                    "id": reader0 + n,
                    "card_number": f"BH{n:08d}",
                    "name": f"Queued Reader {n}",
                    "birth_date": dt.date(1980, 1, n % 28 + 1),
                    "home_library_id": world.unit_ids[n % 3],
                    "category": "adult",
                    "status": "active",
                    "expires_on": today + dt.timedelta(days=3 * 365),
                    "registered_via": "import",
                    "keep_history": False,
                    "created_at": at,
                    "activated_at": at,
                }
                for n in range(NR)
            ),
        )
        start = at - dt.timedelta(days=60)
        counts = Counter[str]()

        def hold_rows() -> Iterator[dict[str, Any]]:
            for i in range(H):
                rec, k = i % R, i // R
                row: dict[str, Any] = {
                    "id": hold0 + i,
                    "reader_id": reader0 + (rec * 31 + k * 1009) % NR,
                    "record_id": rec0 + rec,
                    "item_id": None,
                    "pickup_unit_id": world.unit_ids[(rec + k) % 3],
                    "status": "waiting",
                    "priority": 0,
                    "placed_at": start + dt.timedelta(seconds=i * 4),
                    "suspended_until": None,
                    "trapped_item_id": None,
                    "ready_at": None,
                    "expires_at": None,
                    "closed_at": None,
                }
                if k == 0 and rec in ready:
                    row["status"] = "ready"
                    row["trapped_item_id"] = item0 + rec
                    row["ready_at"] = at - dt.timedelta(days=9)
                    row["expires_at"] = at - dt.timedelta(days=2)
                elif i % 100 == 1:
                    row["status"] = "suspended"
                    row["suspended_until"] = today - dt.timedelta(days=1)
                elif i % 100 == 3:
                    row["status"] = "suspended"
                    row["suspended_until"] = today + dt.timedelta(days=30)
                counts["expire" if row["status"] == "ready" else ""] += 1
                counts[
                    "resume" if row["suspended_until"] == today - dt.timedelta(days=1) else ""
                ] += 1
                yield row

        _insert_chunks(conn, HOLDS, hold_rows())
        # Overdue loans for the fines job, on extra copies of queued titles; the longest
        # overdue (past the rule's 60 days) are declared lost.
        L = sizes.overdue_loans
        rng = random.Random(7)
        loan_item0 = item0 + R
        _insert_chunks(
            conn,
            ITEMS,
            (
                {
                    "id": loan_item0 + j,
                    "record_id": rec0 + rng.randrange(R),
                    "barcode": f"L{j:09d}",
                    "org_unit_id": world.central_id,
                    "item_type": "book",
                    "status": "on_loan",
                    "circulates": True,
                    "created_at": at,
                }
                for j in range(L)
            ),
        )

        def loan_rows() -> Iterator[dict[str, Any]]:
            for j in range(L):
                due = at - dt.timedelta(days=1 + j % 90, hours=j % 7)
                yield {
                    "id": loan0 + j,
                    "item_id": loan_item0 + j,
                    "reader_id": reader0 + (j * 7) % NR,
                    "org_unit_id": world.central_id,
                    "rule_id": world.rule_id,
                    "channel": "desk",
                    "loaned_at": due - dt.timedelta(days=28),
                    "due_at": due,
                    "renewals": 0,
                    "returned_at": None,
                    "status": "open",
                }

        _insert_chunks(conn, LOANS, loan_rows())
        if conn.dialect.name == "postgresql":
            for table in (RECORDS, ITEMS, READERS, HOLDS, LOANS):
                t = table.name
                sql = (
                    f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"  # noqa: S608
                )
                conn.execute(text(sql))
    if engine.dialect.name == "postgresql":
        # What autovacuum does to a table after a big load; the planner needs it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE records, items, readers, holds, loans"))
    return HoldData(
        record_base=rec0,
        item_base=item0,
        records=R,
        holds=H,
        expired=counts["expire"],
        resumed=counts["resume"],
        overdue=L,
    )


@dataclass
class Captured:
    statement: str = ""
    parameters: Any = None


def capture_next_hold_sql(engine: Engine, factory: sessionmaker[Session], item_id: int) -> Captured:
    """The SQL and parameters ``_next_hold`` sends to the driver, as sent."""
    got = Captured()

    def listen(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if "FROM holds" in statement and "JOIN readers" in statement:
            got.statement, got.parameters = statement, parameters

    with factory() as session:
        item = session.get(catalog.Item, item_id)
        assert item is not None
        m = Matrix(session)
        event.listen(engine, "before_cursor_execute", listen)
        try:
            holds._next_hold(session, item, m)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    assert got.statement, "the hold query was not seen"
    return got


def raw_lookups(
    backend: Backend, sql: Captured, record_ids: list[int], sample_record: int
) -> list[float]:
    """The same statement, run on the DB-API connection of the driver, rows fetched."""
    conn = backend.raw_connect()
    try:
        cur = conn.cursor()
        params = sql.parameters
        if isinstance(params, dict):
            key = next(
                k for k, v in params.items() if k.startswith("record_id") and v == sample_record
            )

            def bind(rid: int) -> Any:
                return {**params, key: rid}
        else:
            where = list(params).index(sample_record)

            def bind(rid: int) -> Any:
                p = list(params)
                p[where] = rid
                return tuple(p)

        out = []
        for i, rid in enumerate([*record_ids[:20], *record_ids]):
            t = time.perf_counter()
            cur.execute(sql.statement, bind(rid))
            cur.fetchall()
            if i >= 20:  # the first 20 warm up (and let psycopg prepare the statement)
                out.append((time.perf_counter() - t) * 1000)
        conn.rollback()
        return out
    finally:
        conn.close()


def part_holds(
    backend: Backend, engine: Engine, factory: sessionmaker[Session], world: World, sizes: Sizes
) -> dict[str, float]:
    at = utcnow()
    t = time.perf_counter()
    data = seed_holds(engine, world, sizes, at)
    seed_s = time.perf_counter() - t
    emit(
        "seed_holds_s",
        seed_s,
        "s",
        holds=data.holds,
        records=data.records,
        readers=sizes.readers,
        overdue_loans=data.overdue,
        rows_per_s=round((data.holds + 2 * data.records + data.overdue * 2) / seed_s),
        note="Core bulk inserts" + (" + ANALYZE" if backend.name == "postgresql" else ""),
    )
    rng = random.Random(11)
    picks = [rng.randrange(data.records) for _ in range(sizes.lookups)]

    # (a) the check-in look-up: the rule matrix read, then the title's queue.
    lookup: list[float] = []
    query: list[float] = []
    found = 0
    for i, rec in enumerate([*picks[:20], *picks]):
        with factory() as session:
            item = session.get(catalog.Item, data.item_base + rec)
            assert item is not None
            t0 = time.perf_counter()
            m = Matrix(session)
            t1 = time.perf_counter()
            hold = holds._next_hold(session, item, m)
            t2 = time.perf_counter()
            session.rollback()
        if i >= 20:
            lookup.append((t2 - t0) * 1000)
            query.append((t2 - t1) * 1000)
            found += hold is not None
    # Captured on title 1234: its id cannot be mistaken for the other parameters.
    sql = capture_next_hold_sql(engine, factory, data.item_base + 1234)
    raw = raw_lookups(backend, sql, [data.record_base + r for r in picks], data.record_base + 1234)
    size = {"open_holds": data.holds, "records": data.records}
    for q in (50, 95, 99):
        extra: dict[str, object] = {"goal": 2, "better": "lower"} if q == 95 else {}
        emit(
            f"next_hold_p{q}_ms",
            percentile(lookup, q),
            "ms",
            n=len(lookup),
            **extra,
            **size,
            note="Matrix(session) + holds._next_hold, as a check-in does",
        )
    emit("next_hold_found_share", 100 * found / len(lookup), "%", n=len(lookup))
    emit(
        "next_hold_query_only_p95_ms",
        percentile(query, 95),
        "ms",
        n=len(query),
        note="Matrix built before",
    )
    emit("raw_driver_hold_query_p50_ms", percentile(raw, 50), "ms", n=len(raw), driver=backend.name)
    emit("raw_driver_hold_query_p95_ms", percentile(raw, 95), "ms", n=len(raw), driver=backend.name)
    emit(
        "ratio_next_hold_vs_raw_p95",
        percentile(lookup, 95) / percentile(raw, 95),
        "x",
        better="lower",
    )
    emit(
        "ratio_next_hold_query_only_vs_raw_p95",
        percentile(query, 95) / percentile(raw, 95),
        "x",
        better="lower",
    )

    # A full check-in of a copy whose title has waiting holds: lent to a reader without
    # holds first, then taken back; it goes to the first hold in the queue.
    actor = desk_actor(factory, world)
    candidates = [r for r in range(data.records) if r % 50 != 0 and r % 100 not in (1, 3)]
    chosen = rng.sample(candidates, min(sizes.checkins, len(candidates)))
    out_ms: list[float] = []
    in_ms: list[float] = []
    routed = Counter[str]()
    for rec in chosen:
        barcode = f"H{rec:09d}"
        t0 = time.perf_counter()
        with factory() as session:
            circulation.checkout(
                session,
                actor,
                reader_id=world.borrower,
                barcode=barcode,
                at_unit_id=world.central_id,
                channel="desk",
                at=utcnow(),
            )
            session.commit()
        t1 = time.perf_counter()
        with factory() as session:
            done = circulation.checkin(
                session, actor, barcode=barcode, at_unit_id=world.central_id, at=utcnow()
            )
            action = done.routing.action.value if done.routing.hold is not None else "no hold"
            session.commit()
        t2 = time.perf_counter()
        out_ms.append((t1 - t0) * 1000)
        in_ms.append((t2 - t1) * 1000)
        routed[action] += 1
    emit(
        "checkin_to_hold_p95_ms",
        percentile(in_ms, 95),
        "ms",
        n=len(in_ms),
        p50=round(percentile(in_ms, 50), 2),
        routed=dict(routed),
        **size,
        note="circulation.checkin + commit, in-process",
    )
    emit(
        "checkout_queued_title_p95_ms",
        percentile(out_ms, 95),
        "ms",
        n=len(out_ms),
        p50=round(percentile(out_ms, 50), 2),
    )

    # (b) the nightly job over the whole database.
    at = utcnow()
    with factory() as session:
        t0 = time.perf_counter()
        job = holds.expire_and_resume(session, at)
        t1 = time.perf_counter()
        acc = fees.accrue(session, at)
        t2 = time.perf_counter()
        session.commit()
        t3 = time.perf_counter()
    emit(
        "nightly_job_s",
        t3 - t0,
        "s",
        goal=10,
        better="lower",
        **size,
        expired=job.expired,
        resumed=job.resumed,
        overdue_loans=acc.overdue_loans,
        fees_changed=acc.fees_changed,
        lost=acc.lost,
    )
    emit("nightly_holds_s", t1 - t0, "s", expired=job.expired, resumed=job.resumed)
    emit("nightly_fees_s", t2 - t1, "s", overdue_loans=acc.overdue_loans, lost=acc.lost)
    emit("nightly_commit_s", t3 - t2, "s")
    if (job.expired, job.resumed) != (data.expired, data.resumed):
        print(
            f"nightly job: expected {data.expired} expired / {data.resumed} resumed, "
            f"got {job.expired} / {job.resumed}",
            file=sys.stderr,
        )
    return {
        "next_hold_p95": percentile(lookup, 95),
        "raw_p95": percentile(raw, 95),
        "checkin_to_hold_p95": percentile(in_ms, 95),
        "nightly_s": t3 - t0,
        "holds": data.holds,
    }


# --- main -----------------------------------------------------------------------------------


def run_backend(backend: Backend, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    subprocess.run(
        [str(h.BIN), "db", "upgrade"], env=backend.env(), check=True, capture_output=True
    )
    engine = make_engine(backend.url)
    factory = make_session_factory(engine)
    try:
        world = seed_world(factory, sizes, utcnow())
        summary: dict[str, Any] = {}
        if not args.skip_http:
            summary["cycles"] = part_cycles(
                backend, engine, factory, world, sizes, args.workers, args.paced_rate
            )
        if not args.skip_holds:
            summary["holds"] = part_holds(backend, engine, factory, world, sizes)
        return summary
    finally:
        engine.dispose()


def summarise(name: str, s: dict[str, Any]) -> list[str]:
    lines = [f"{name}:"]
    if c := s.get("cycles"):
        lines.append(
            f"  API cycles {c['cycles_per_s']:.0f}/s (goal >= 500 on PostgreSQL), p95 check-out "
            f"{c['checkout_p95']:.1f} ms, check-in {c['checkin_p95']:.1f} ms (goal <= 20); "
            f"errors {c['errors']}, contended refusals {c['contended_refusals']}"
        )
        if "wrk_cycles_per_s" in c:
            lines.append(
                f"  the same cycles from wrk: {c['wrk_cycles_per_s']:.0f}/s, p95 "
                f"{c['wrk_p95']:.1f} ms a request, errors {c['wrk_errors']}"
            )
        if "paced_rate" in c:
            lines.append(
                f"  paced at {c['paced_rate']:.0f} cycles/s: p95 {c['paced_p95']:.1f} ms a "
                f"request, errors {c['paced_errors']}"
            )
        if c["errors"]:
            lines.append(f"  outcomes of the uncontended run: {dict(c['outcomes'])}")
        if sum(c["server_log"].values()):
            lines.append(f"  server log: {c['server_log']}")
        lines.append(
            f"  in-process peer {c['inproc_cycles_per_s']:.0f} cycles/s, p95 "
            f"{c['inproc_checkout_p95']:.1f} / {c['inproc_checkin_p95']:.1f} ms"
        )
        if "raw_cycles_per_s" in c:
            same = "the same" if c["raw_script_matches"] else "NOT the same"
            lines.append(
                f"  the database alone (pgbench, {same} statements as a live cycle): "
                f"{c['raw_cycles_per_s']:.0f} cycles/s, cycle p95 {c['raw_cycle_p95']:.1f} ms"
            )
        if "bare_cycles_per_s" in c:
            lines.append(
                f"  a bare Python server (no framework, no ORM) on the same statements, from "
                f"wrk: {c['bare_cycles_per_s']:.0f} cycles/s, p95 {c['bare_p95']:.1f} ms a request"
            )
    if h := s.get("holds"):
        lines.append(
            f"  {h['holds']:,} holds: next-hold p95 {h['next_hold_p95']:.2f} ms (goal <= 2, raw "
            f"driver {h['raw_p95']:.2f}), check-in to hold p95 {h['checkin_to_hold_p95']:.1f} ms, "
            f"nightly job {h['nightly_s']:.1f} s (goal <= 10)"
        )
    return lines


def main() -> int:
    parser = h.arguments(__doc__, quick="100,000 holds, 5 s load runs")
    h.add_backend(parser)
    h.add_workers(parser)
    h.add_seconds(parser, "length of each HTTP load run")
    parser.add_argument("--clients", type=int, help="concurrent HTTP clients (default 32)")
    parser.add_argument(
        "--overdue-loans",
        type=int,
        help="open overdue loans for the fines job (default 1 per 100 holds)",
    )
    h.add_paced_rate(parser, "cycles/s")
    parser.add_argument("--skip-http", action="store_true", help="only the holds part")
    parser.add_argument("--skip-holds", action="store_true", help="only the API cycles")
    args = parser.parse_args()
    h.unwind_on_sigterm()
    h.start("circulation")
    sizes = Sizes.of(args.quick, args)
    machine = h.emit_machine(quick=args.quick)
    summaries: list[str] = []
    failed = False
    for name in h.backends(args):
        h.set_backend(name)
        try:
            backend = h.open_backend(name, "circ")
        except psycopg.OperationalError as exc:
            print(f"{name}: cannot reach the server: {exc}", file=sys.stderr)
            failed = True
            continue
        started = time.perf_counter()
        try:
            summary = run_backend(backend, sizes, args)
            emit("backend_total_s", time.perf_counter() - started, "s")
            summaries += summarise(name, summary)
            cycles = summary.get("cycles", {})
            failures = ("errors", "wrk_errors", "bare_errors", "paced_errors")
            if any(cycles.get(f) for f in failures):
                failed = True  # as bench/search.py: failed requests fail the run
        except Exception:
            traceback.print_exc()
            failed = True
        finally:
            backend.drop()
    print(f"circulation bench ({machine}{', quick' if args.quick else ''})", file=sys.stderr)
    for line in summaries:
        print(line, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
