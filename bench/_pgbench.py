"""The raw engine's figure for a check-out and check-in cycle on PostgreSQL, for the
circulation and SIP2 benchmarks (not a benchmark itself: ``make bench`` skips ``_*.py``).

pgbench, PostgreSQL's own load generator (C), sends the statements a cycle sends
(``bench/cycle.pgbench``) from as many connections as the benchmark has clients, on the same
machine: what the database can do when nothing else costs anything. The script is checked
against the statements a live cycle sends (their verbs and tables, in order), so that a
change to the services that the script does not follow shows up in the report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event

SCRIPT = Path(__file__).with_name("cycle.pgbench")
SIP2_SCRIPT = Path(__file__).with_name("sip2_cycle.pgbench")
PERIODIC = {"SELECT reference_state"}  # biblioverse.reference's look at its counter

_TABLE_AFTER = {
    "SELECT": re.compile(r"\bFROM\s+(\w+)", re.I),
    "UPDATE": re.compile(r"^UPDATE\s+(\w+)", re.I),
    "INSERT": re.compile(r"^INSERT\s+INTO\s+(\w+)", re.I),
    "DELETE": re.compile(r"^DELETE\s+FROM\s+(\w+)", re.I),
}

_NESTED = re.compile(r"\([^()]*\)")


def shape(sql: str) -> str:
    """A statement's verb and the table it reads or writes: "SELECT items", "COMMIT"."""
    sql = sql.strip()
    verb = sql.split(None, 1)[0].rstrip(";").upper() if sql else ""
    found = _TABLE_AFTER.get(verb)
    while _NESTED.search(sql):  # a subquery's FROM is not the statement's table
        sql = _NESTED.sub("", sql)
    m = found.search(sql) if found else None
    return f"{verb} {m.group(1)}" if m else verb


def script_shapes(path: Path = SCRIPT) -> list[str]:
    """The statements of a pgbench script, as shapes (meta-commands and comments left out)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [shape(x) for x in lines if x.strip() and not x.startswith(("--", "\\"))]


def live_shapes(
    engine: Engine,
    cycle: Callable[[], None],
) -> list[list[str]]:
    """The transactions begun and ended during ``cycle`` through ``engine``, each as the
    shapes of its statements, from any thread (a server running in this process can be
    watched). The reference data's periodic version check is left out: it is not part of
    any one request."""
    lock = threading.Lock()
    open_tx: dict[int, list[str]] = {}
    done: list[list[str]] = []

    def begin(conn: Any) -> None:
        with lock:
            open_tx[id(conn)] = ["BEGIN"]

    def sent(conn: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        with lock:
            tx = open_tx.get(id(conn))
            found = shape(statement)
            if tx is not None and found not in PERIODIC:
                # executemany sends the statement once per row (psycopg pipelines them)
                tx.extend([found] * (len(parameters) if many else 1))

    def end(word: str) -> Callable[[Any], None]:
        def ended(conn: Any) -> None:
            with lock:
                tx = open_tx.pop(id(conn), None)
                if tx is not None:
                    done.append([*tx, word])

        return ended

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("begin", begin),
        ("before_cursor_execute", sent),
        ("commit", end("COMMIT")),
        ("rollback", end("ROLLBACK")),
    ]
    for name, fn in hooks:
        event.listen(engine, name, fn)
    try:
        cycle()
    finally:
        for name, fn in hooks:
            event.remove(engine, name, fn)
    return done


def script_check(live: list[str], scripted: list[str]) -> tuple[float, dict[str, Any]]:
    """``raw_engine_script_matches``: 1 when the script sends what the live request sent,
    and the fields that go with it (both lists when they differ)."""
    same = live == scripted
    extra: dict[str, Any] = {"goal": 1, "statements": len(live)}
    if not same:
        extra |= {"live": live, "script": scripted}
    return float(same), extra


def available() -> bool:
    return shutil.which("pgbench") is not None


def prepare(conninfo: str, copies: Sequence[Sequence[tuple[str, int, str | None]]]) -> None:
    """``copies[k]``: the (barcode, reader id, reader's card) that pgbench client k lends
    and takes back."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_cycle_copies")
        conn.execute(
            "CREATE TABLE bench_cycle_copies (client int, n int, barcode varchar,"
            " reader_id int, card varchar, PRIMARY KEY (client, n))"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_cycle_copies VALUES (%s, %s, %s, %s, %s)",
                [
                    (k, n, barcode, reader, card)
                    for k, own in enumerate(copies)
                    for n, (barcode, reader, card) in enumerate(own)
                ],
            )
        conn.execute("ANALYZE bench_cycle_copies")


def forget_events(conninfo: str, since_id: int) -> None:
    """Mark what pgbench wrote to the outbox as published, so that no relay acts on it."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "UPDATE outbox_events SET published_at = now() WHERE id > %s AND published_at IS NULL",
            (since_id,),
        )


def last_event_id(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM outbox_events").fetchone()
        return int(row[0]) if row else 0


@dataclass
class PeerResult:
    cycles: int
    seconds: float
    cycle_ms: list[float]  # each cycle's time (two transactions), as pgbench logged it
    failed: int

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0


def run_prepared(
    conninfo: str,
    copies: Sequence[Sequence[tuple[str, int, str | None]]],
    dbname: str,
    **options: Any,
) -> PeerResult:
    """``prepare`` the copies, ``run`` pgbench with ``options``, then ``forget_events`` what it
    wrote to the outbox."""
    prepare(conninfo, copies)
    before = last_event_id(conninfo)
    try:
        return run(dbname, copies_each=min(len(c) for c in copies), **options)
    finally:
        forget_events(conninfo, before)


def run(
    dbname: str,
    *,
    clients: int,
    copies_each: int,
    seconds: float,
    unit_id: int,
    rule_id: int,
    threads: int = 2,
    script: Path = SCRIPT,
) -> PeerResult:
    """pgbench with a cycle's script, prepared statements (as psycopg prepares a statement
    it has sent five times), ``clients`` connections driven by ``threads`` threads."""
    with tempfile.TemporaryDirectory(prefix="bv-pgbench-") as work:
        cmd = [
            "pgbench",
            "--no-vacuum",
            "--host=127.0.0.1",
            "--port=5432",
            "--username=postgres",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={threads}",
            f"--time={max(1, round(seconds))}",
            "--log",
            f"--define=copies={copies_each}",
            f"--define=unit={unit_id}",
            f"--define=rule={rule_id}",
            f"--file={script}",
            dbname,
        ]
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr[-2000:]}")
        latencies: list[float] = []
        for log in Path(work).glob("pgbench_log.*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():  # "failed" rows say so there
                    latencies.append(int(fields[2]) / 1000)
        failed = _number(done.stdout, r"number of failed transactions: (\d+)")
        measured = _number(done.stdout, r"duration: (\d+) s") or seconds
        return PeerResult(len(latencies), float(measured), latencies, int(failed))


def _number(text: str, pattern: str) -> float:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0
