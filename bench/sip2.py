"""SIP2 benchmark: 32 kiosks doing checkout/check-in pairs against the real server.

    .venv/bin/python bench/sip2.py                      # 20 s runs, both databases
    .venv/bin/python bench/sip2.py --quick              # 5 s runs
    .venv/bin/python bench/sip2.py --backend sqlite     # one database only
    .venv/bin/python bench/sip2.py --processes 1        # one server process on both

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) for ``--backend postgresql|both``;
a throwaway database ``bench_sip2_<pid>`` is created and dropped. Prints one JSON object per
line (see DESIGN.md) and a short summary on stderr.

The server is ``biblioverse sip2 serve`` in its own process (two processes sharing the
port on PostgreSQL, see ``--processes``). The kiosks are asyncio
connections in this process, each logged in with its own device account, each lending and
taking back its own copies to its own reader, one message at a time (a kiosk waits for each
answer), with error detection on as most kiosks have it. The round trip is timed from the
first byte sent to the carriage return received. The peer is the same unit of work without
SIP2: the checkout and check-in services called in-process, one thread, one transaction per
call with the event publishing a message does, so the ratio says what the protocol, the
socket and the thread pool add. ``messages_per_s_for_mean_10ms`` is Little's law: kiosks
that send again as soon as they are answered wait on average kiosks / rate, so the p95 goal
needs at least that rate. A second run has the kiosks keep to half that rate between them
(``--paced-rate``), each message timed from when it was due: what a reader at a kiosk waits
when the server is busy but not saturated. On PostgreSQL the raw engine is measured too: pgbench sends what a
kiosk's loan and return send (bench/sip2_cycle.pgbench, checked against a live server) from
as many connections as there were kiosks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _bare_sip2
import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
import _pgbench
import _seed
import psycopg
from _harness import Backend, emit, percentile
from _proc import busy_since, machine_busy, proc_cpu_s, self_cpu_s

from biblioverse import (
    catalog,
    circulation,
    events,
    libraries,
    migrate,
    sip2,
)
from biblioverse.access import Actor, Grant, PrincipalKind, Role
from biblioverse.db import make_engine, make_session_factory, utcnow
from biblioverse.libraries import OrgKind, Period
from biblioverse.sip2.protocol import checksum
from biblioverse.sip2.server import Limits, Sip2Server

KIOSK_PW = "bench-kiosk-password"


@dataclass
class Kiosk:
    login: str
    card: str
    barcodes: list[str]


def seed(url: str, kiosks: int, copies: int) -> tuple[list[Kiosk], list[str], int, int]:
    """A consortium, one generous rule, a reader and copies per kiosk, a device account per
    kiosk; and a reader and copies for the in-process peer."""
    at = utcnow()
    factory = make_session_factory(make_engine(url))
    with factory() as session:
        consortium = _seed.unit(session, OrgKind.CONSORTIUM, "consortium", None, at)
        central = _seed.unit(session, OrgKind.LIBRARY, "central", consortium.id, at)
        hours = {wd: [Period(0, 24 * 60 - 1)] for wd in range(7)}
        libraries.set_weekly_hours(session, None, central, hours, at=at)
        policy = circulation.Policy(max_loans=1000, max_holds=1000)
        circulation.save_rule(
            session, None, circulation.RuleInput(consortium.id, name="Bench", policy=policy), at=at
        )
        system = Actor(PrincipalKind.STAFF, 0, grants=(Grant(Role.ADMIN, "/", 0),))

        def reader(n: int) -> int:
            name, card = f"Kiosk Reader {n}", f"SK{n:08d}"
            return _seed.reader(session, system, n, name=name, card=card, home=central.id, at=at)

        def items(title: str, barcodes: list[str]) -> list[str]:
            return _seed.copies(session, system, title, barcodes, central.id, at)

        out = []
        for k in range(kiosks):
            reader(k)
            sip2.create_sip2_account(
                session,
                None,
                sip2.Sip2AccountInput(
                    name=f"Kiosk {k}",
                    login=f"kiosk-{k}",
                    password=KIOSK_PW,
                    org_unit_id=central.id,
                    error_detection=True,
                ),
                at=at,
            )
            out.append(
                Kiosk(
                    f"kiosk-{k}",
                    f"SK{k:08d}",
                    items(f"Kiosk {k}", [f"K{k:03d}-{j}" for j in range(copies)]),
                )
            )
        peer_reader = reader(9000)
        peer = items("Peer", [f"P-{j}" for j in range(8)])
        session.commit()
        return out, peer, peer_reader, central.id


# --- the kiosks ---------------------------------------------------------------------------


def frame(body: str, seq: int) -> bytes:
    data = f"{body}AY{seq}AZ".encode()
    return data + checksum(data).encode() + b"\r"


class Connection:
    """One kiosk's connection: logged in once (an argon2 check on the server), then used."""

    def __init__(self, k: Kiosk) -> None:
        self.k, self.seq = k, 0
        self.date = time.strftime("%Y%m%d    %H%M%S")

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        answer, _ = await self.ask(f"9300CN{self.k.login}|CO{KIOSK_PW}|CPbench|")
        if not answer.startswith(b"941"):
            raise RuntimeError(f"{self.k.login} could not log in: {answer[:40]!r}")

    async def ask(self, body: str) -> tuple[bytes, float]:
        self.seq = (self.seq + 1) % 10
        t0 = time.perf_counter()
        self.writer.write(frame(body, self.seq))
        answer = await self.reader.readuntil(b"\r")
        return answer, time.perf_counter() - t0

    async def pairs(
        self,
        until: float,
        rtts: list[float],
        errors: list[str],
        *,
        every: float | None = None,
        first_at: float = 0.0,
    ) -> int:
        """Checkout then check-in of the kiosk's copies in turn, one message at a time: each
        as soon as the last is answered, or (``every``) on a schedule of one message every
        so many seconds from ``first_at``, timed from when it was due, so that a message
        sent late because the previous one was slow counts its wait too."""
        done, i, k, date = 0, 0, self.k, self.date
        due = first_at
        bodies: tuple[Callable[[str], str], ...] = (
            lambda b: f"11NN{date}{' ' * 18}AOcentral|AA{k.card}|AB{b}|AC|",
            lambda b: f"09N{date}{date}APbench|AOcentral|AB{b}|AC|",
        )
        while time.perf_counter() < until:
            barcode = k.barcodes[i % len(k.barcodes)]
            i += 1
            for body, ok in zip(bodies, (b"121", b"101"), strict=True):
                if every is not None:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                answer, rtt = await self.ask(body(barcode))
                if every is not None:
                    rtt = time.perf_counter() - due
                    due += every
                rtts.append(rtt)
                if not answer.startswith(ok):
                    errors.append(answer[:60].decode(errors="replace"))
                done += 1
        return done

    def close(self) -> None:
        self.writer.close()


@dataclass
class Run:
    messages: int
    rtts: list[float]
    errors: list[str]
    elapsed: float
    server_cpu_s: float = 0.0  # the server's processes, user and system
    kiosks_cpu_s: float = 0.0  # this process: the kiosks' side
    busy: float = 0.0  # the machine's CPUs, the fraction of their time in use


def cpu_now(server_pid: int) -> tuple[float, float, tuple[float, float]]:
    return proc_cpu_s(server_pid), self_cpu_s(), machine_busy()


def cpu_since(run: Run, server_pid: int, before: tuple[float, float, tuple[float, float]]) -> None:
    run.busy = busy_since(before[2])
    server, kiosks, _ = cpu_now(server_pid)
    run.server_cpu_s, run.kiosks_cpu_s = server - before[0], kiosks - before[1]


async def load(
    port: int,
    server_pid: int,
    kiosks: list[Kiosk],
    seconds: float,
    warmup: float,
    paced: float | None,
) -> tuple[Run, Run | None]:
    """All kiosks log in first; then a warm-up (pools, caches, the first index commits);
    then the measured run, each kiosk sending as soon as it is answered. With ``paced``
    (messages per second for all kiosks together; 0 for half the rate just measured), a
    second run where the kiosks keep to that rate between them, as kiosks serving readers
    do: the round trip then says what a reader waits at that load, not at saturation."""
    conns = [Connection(k) for k in kiosks]
    for c in conns:
        await c.open(port)
    try:
        scratch: list[float] = []
        await asyncio.gather(*(c.pairs(time.perf_counter() + warmup, scratch, []) for c in conns))
        full = Run(0, [], [], 0.0)
        cpu0 = cpu_now(server_pid)
        start = time.perf_counter()
        counts = await asyncio.gather(
            *(c.pairs(start + seconds, full.rtts, full.errors) for c in conns)
        )
        full.messages, full.elapsed = sum(counts), time.perf_counter() - start
        cpu_since(full, server_pid, cpu0)
        if paced is None:
            return full, None
        rate = paced or full.messages / full.elapsed / 2
        every = len(conns) / rate  # each kiosk's interval
        at = Run(0, [], [], 0.0)
        start = time.perf_counter() + 0.5
        counts = await asyncio.gather(
            *(
                c.pairs(
                    start + seconds,
                    at.rtts,
                    at.errors,
                    every=every,
                    first_at=start + every * n / len(conns),
                )
                for n, c in enumerate(conns)
            )
        )
        at.messages, at.elapsed = sum(counts), time.perf_counter() - start
        return full, at
    finally:
        for c in conns:
            c.close()


# --- the peer -----------------------------------------------------------------------------


def peer(
    url: str, data_dir: Path, reader_id: int, unit_id: int, barcodes: list[str], n: int
) -> float:
    """Seconds per message-equivalent (one checkout or one check-in) in-process."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    read_factory = make_session_factory(make_engine(url), read_only=True)
    index = catalog.TantivyIndex(data_dir / "index" / "catalog")
    handlers, merge = catalog.subscribers(read_factory, lambda: index)

    def unit_of_work(fn: Callable[..., object]) -> None:
        with factory() as session:
            fn(session)
            session.commit()
            events.publish_after_commit(session, None, handlers, merge)

    t0 = time.perf_counter()
    for i in range(n):
        b = barcodes[i % len(barcodes)]
        unit_of_work(
            lambda s, b=b: circulation.checkout(
                s,
                None,
                reader_id=reader_id,
                barcode=b,
                at_unit_id=unit_id,
                channel="kiosk",
                at=utcnow(),
            )
        )
        unit_of_work(
            lambda s, b=b: circulation.checkin(s, None, barcode=b, at_unit_id=unit_id, at=utcnow())
        )
    return (time.perf_counter() - t0) / (2 * n)


def live_kiosk_cycle(url: str, kiosk: Kiosk) -> list[str]:
    """What a loan and a return at a kiosk send to the database, as statement shapes: a
    server in this process, one kiosk, one warm-up pair, then the pair watched."""
    engine = make_engine(url)
    server = Sip2Server(make_session_factory(engine), limits=Limits(workers=1))

    async def pairs() -> None:
        port = await server.start("127.0.0.1", 0)
        kiosk_conn = Connection(kiosk)
        date, barcode = kiosk_conn.date, kiosk.barcodes[0]
        try:
            await kiosk_conn.open(port)
            for _ in range(2):
                out, _t = await kiosk_conn.ask(
                    f"11NN{date}{' ' * 18}AOcentral|AA{kiosk.card}|AB{barcode}|AC|"
                )
                back, _t = await kiosk_conn.ask(f"09N{date}{date}APbench|AOcentral|AB{barcode}|AC|")
                if not (out.startswith(b"121") and back.startswith(b"101")):
                    raise RuntimeError(f"the watched kiosk was refused: {out[:40]!r} {back[:40]!r}")
        finally:
            kiosk_conn.close()
            await server.close()

    try:
        done = _pgbench.live_shapes(engine, lambda: asyncio.run(pairs()))
    finally:
        engine.dispose()
    # the last loan and return (the device log's flush and the logins left aside)
    circulation_txs = [tx for tx in done if "SELECT items" in tx]
    return [s for tx in circulation_txs[-2:] for s in tx]


def raw_engine(url: str, kiosks: list[Kiosk], unit_id: int, seconds: float) -> dict[str, float]:
    """The database alone (PostgreSQL): pgbench sends a kiosk's loan and return
    (``bench/sip2_cycle.pgbench``) from as many connections as there were kiosks."""
    if not _pgbench.available():
        emit("raw_engine_messages_per_s", float("nan"), "messages/s", note="pgbench not found")
        return {}
    live = live_kiosk_cycle(url, kiosks[0])
    scripted = _pgbench.script_shapes(_pgbench.SIP2_SCRIPT)
    matches, check = _pgbench.script_check(live, scripted)
    emit("raw_engine_script_matches", matches, "bool", **check)
    dbname = url.rsplit("/", 1)[1]
    conninfo = h.pg_conninfo(dbname)
    with psycopg.connect(conninfo) as conn:
        ids: dict[str, int] = dict(conn.execute("SELECT card_number, id FROM readers").fetchall())
        rule_id = conn.execute("SELECT min(id) FROM circulation_rules").fetchone()
    r = _pgbench.run_prepared(
        conninfo,
        [[(b, ids[k.card], k.card) for b in k.barcodes] for k in kiosks],
        dbname,
        clients=len(kiosks),
        seconds=seconds,
        unit_id=unit_id,
        rule_id=int(rule_id[0]) if rule_id else 0,
        script=_pgbench.SIP2_SCRIPT,
    )
    emit(
        "raw_engine_messages_per_s",
        2 * r.cycles_per_s,
        "messages/s",
        n=2 * r.cycles,
        failed=r.failed,
        clients=len(kiosks),
        note="pgbench (C, prepared statements) sending a kiosk's loan and return: the database "
        "alone, without the device log",
    )
    emit("raw_engine_pair_p95_ms", percentile(r.cycle_ms, 95), "ms", note="a loan and a return")
    return {"raw_rate": 2 * r.cycles_per_s, "raw_matches": matches}


GOAL_RATE = 1000.0  # messages/s, the goal


def bare_python(
    url: str, kiosks: list[Kiosk], unit_id: int, seconds: float, processes: int
) -> dict[str, float]:
    """The floor of any Python SIP2 server (PostgreSQL): the same kiosks against
    ``_bare_sip2`` (asyncio on uvloop, raw psycopg, the script's statements, as many processes
    and threads as the real server), back to back, then keeping to the goal's rate."""
    bare = [_pgbench.shape(s) for s in _bare_sip2.CYCLE]
    matches, check = _pgbench.script_check(bare, _pgbench.script_shapes(_pgbench.SIP2_SCRIPT))
    emit("bare_python_statements_match", matches, "bool", **check)
    conninfo = h.pg_conninfo(url.rsplit("/", 1)[1])
    with psycopg.connect(conninfo) as conn:
        rule = conn.execute("SELECT min(id) FROM circulation_rules").fetchone()
    port = h.free_port()
    env = {
        **os.environ,
        "BARE_DSN": conninfo,
        "BARE_UNIT": str(unit_id),
        "BARE_RULE": str(rule[0] if rule else 0),
    }
    before = _pgbench.last_event_id(conninfo)
    threads = Limits().workers
    proc = subprocess.Popen(
        [sys.executable, _bare_sip2.__file__, str(port), str(processes), str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        h.wait_port(port, proc)
        full, at_goal = asyncio.run(load(port, proc.pid, kiosks, seconds, 2.0, GOAL_RATE))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        _pgbench.forget_events(conninfo, before)
    rate = full.messages / full.elapsed
    emit(
        "bare_python_messages_per_s",
        rate,
        "messages/s",
        processes=processes,
        threads=threads,
        server_cpu_ms_per_message=round(1000 * full.server_cpu_s / max(1, full.messages), 2),
        machine_busy_pct=round(100 * full.busy),
        note="asyncio on uvloop and raw psycopg, the script's statements: the floor of a "
        "Python SIP2 server here",
    )
    emit("bare_python_round_trip_p95_ms", percentile(full.rtts, 95) * 1000, "ms", n=len(full.rtts))
    emit("bare_python_round_trip_p50_ms", percentile(full.rtts, 50) * 1000, "ms")
    out = {"bare_rate": rate, "bare_p95": percentile(full.rtts, 95) * 1000}
    errors = full.errors
    if at_goal is not None and at_goal.rtts:
        out["bare_goal_rate"] = at_goal.messages / at_goal.elapsed
        out["bare_goal_p95"] = percentile(at_goal.rtts, 95) * 1000
        emit(
            "bare_python_paced_messages_per_s",
            out["bare_goal_rate"],
            "messages/s",
            asked=GOAL_RATE,
            note="the kiosks keep to the goal's rate between them; timed from when each "
            "message was due",
        )
        emit("bare_python_paced_round_trip_p95_ms", out["bare_goal_p95"], "ms", goal=10)
        errors = errors + at_goal.errors
    emit("bare_python_errors", len(errors), "messages", goal=0, better="lower")
    out["bare_errors"] = len(errors)
    return out


def run_backend(
    backend: Backend,
    seconds: float,
    clients: int,
    peer_cycles: int,
    processes: int,
    paced: float | None,
) -> dict[str, float]:
    migrate.upgrade(backend.url)
    kiosks, peer_copies, peer_reader, unit_id = seed(backend.url, clients, 4)
    port = h.free_port()
    proc = subprocess.Popen(
        [
            str(h.BIN),
            *("sip2", "serve", "--port", str(port), "--max-connections", "512"),
            *("--processes", str(processes)),
        ],
        env=backend.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        h.wait_port(port, proc)
        full, at_pace = asyncio.run(load(port, proc.pid, kiosks, seconds, 2.0, paced))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    messages, rtts, errors, elapsed = full.messages, full.rtts, full.errors, full.elapsed
    if not rtts:
        raise RuntimeError("no message was answered")
    rate = messages / elapsed
    p95 = percentile(rtts, 95) * 1000
    emit(
        "messages_per_s",
        rate,
        "messages/s",
        goal=1000,
        better="higher",
        clients=clients,
        seconds=seconds,
        processes=processes,
    )
    emit("round_trip_p95_ms", p95, "ms", goal=10, better="lower", n=len(rtts))
    emit("round_trip_p50_ms", percentile(rtts, 50) * 1000, "ms", n=len(rtts))
    emit("errors", len(errors), "messages", goal=0, better="lower")
    # CPU a message: steadier from run to run than the rate, which follows the machine's load
    emit(
        "server_cpu_ms_per_message",
        1000 * full.server_cpu_s / messages,
        "ms",
        better="lower",
        note="the server's processes, user and system time",
    )
    emit("kiosks_cpu_ms_per_message", 1000 * full.kiosks_cpu_s / messages, "ms")
    emit("machine_busy_pct", 100 * full.busy, "%", cpus=os.cpu_count())
    paced_out: dict[str, float] = {}
    if at_pace is not None and at_pace.rtts:
        paced_out = {
            "paced_rate": at_pace.messages / at_pace.elapsed,
            "paced_p95": percentile(at_pace.rtts, 95) * 1000,
        }
        note = "the kiosks keep to a rate between them; timed from when each message was due"
        emit("paced_messages_per_s", paced_out["paced_rate"], "messages/s", note=note)
        emit("paced_round_trip_p95_ms", paced_out["paced_p95"], "ms", n=len(at_pace.rtts))
        emit("paced_round_trip_p50_ms", percentile(at_pace.rtts, 50) * 1000, "ms")
        emit("paced_errors", len(at_pace.errors), "messages", goal=0, better="lower")
        errors = errors + at_pace.errors
    # Little's law: kiosks that send again as soon as they are answered wait on average
    # kiosks / messages-per-second; a p95 of 10 ms needs at least this rate.
    emit(
        "messages_per_s_for_mean_10ms",
        clients / 0.010,
        "messages/s",
        note=f"{clients} kiosks back to back: mean round trip = kiosks / rate (Little's law)",
    )
    per_msg = peer(backend.url, backend.data_dir, peer_reader, unit_id, peer_copies, peer_cycles)
    emit("peer_inprocess_ms_per_message", per_msg * 1000, "ms", n=2 * peer_cycles)
    # What one message costs the server's CPU beside the same work done in-process: the
    # load's messages per second against the peer's, which runs on one core.
    emit("ratio_vs_inprocess_rate", (1 / per_msg) / rate, "x", better="lower")
    raw: dict[str, float] = {}
    if backend.name == "postgresql":
        # before pgbench: its last cycle may stop between the loan and the return
        raw = bare_python(backend.url, kiosks, unit_id, seconds, processes)
        emit("ratio_vs_bare_python_rate", rate / raw["bare_rate"], "x", better="higher")
        raw |= raw_engine(backend.url, kiosks, unit_id, seconds)
        if "raw_rate" in raw:  # pgbench installed
            emit("ratio_vs_raw_engine_rate", rate / raw["raw_rate"], "x", better="higher")
    if errors:
        print(f"  first errors: {errors[:3]}", file=sys.stderr)
    return {
        "rate": rate,
        "p95": p95,
        "server_cpu_ms": 1000 * full.server_cpu_s / messages,
        "busy": 100 * full.busy,
        "errors": len(errors),
        "peer_ms": per_msg * 1000,
        **raw,
        **paced_out,
    }


def main() -> int:
    parser = h.arguments(__doc__, quick="5 s load runs")
    h.add_backend(parser)
    h.add_seconds(parser, "length of each load run (default 20, --quick 5)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--processes",
        type=int,
        help="server processes (default: 2 on PostgreSQL, 1 on SQLite, where a second "
        "process only queues for the same write lock)",
    )
    h.add_paced_rate(parser, "messages/s")
    args = parser.parse_args()
    h.unwind_on_sigterm()
    h.start("sip2")
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    h.emit_machine(quick=args.quick)
    failed = False
    for name in h.backends(args):
        h.set_backend(name)
        try:
            backend = h.open_backend(name, "sip2")
        except psycopg.OperationalError as exc:
            print(f"{name}: cannot reach the server: {exc}", file=sys.stderr)
            failed = True
            continue
        try:
            processes = args.processes or (2 if name == "postgresql" else 1)
            paced = None if args.paced_rate < 0 else args.paced_rate
            r = run_backend(
                backend, seconds, args.clients, 50 if args.quick else 200, processes, paced
            )
            print(
                f"{name} ({processes} server processes): {r['rate']:.0f} messages/s, "
                f"p95 {r['p95']:.1f} ms, "
                f"{r['errors']} errors; server CPU {r['server_cpu_ms']:.2f} ms/message, "
                f"machine {r['busy']:.0f}% busy; in-process {r['peer_ms']:.2f} ms/message",
                file=sys.stderr,
            )
            if "paced_rate" in r:
                print(
                    f"  paced at {r['paced_rate']:.0f} messages/s: p95 {r['paced_p95']:.1f} ms",
                    file=sys.stderr,
                )
            if "raw_rate" in r:
                same = "the same" if r["raw_matches"] else "NOT the same"
                print(
                    f"  the database alone (pgbench, {same} statements as a live kiosk): "
                    f"{r['raw_rate']:.0f} messages/s",
                    file=sys.stderr,
                )
            if "bare_rate" in r:
                at_goal = (
                    f"; at {r['bare_goal_rate']:.0f} messages/s (the goal's rate) p95 "
                    f"{r['bare_goal_p95']:.1f} ms"
                    if "bare_goal_rate" in r
                    else ""
                )
                print(
                    f"  a bare Python SIP2 server (no framework, no ORM) on the same statements:"
                    f" {r['bare_rate']:.0f} messages/s, p95 {r['bare_p95']:.1f} ms{at_goal}; "
                    f"errors {r['bare_errors']}",
                    file=sys.stderr,
                )
        except Exception as exc:
            failed = True
            print(f"{name}: could not measure: {exc}", file=sys.stderr)
        finally:
            backend.drop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
