"""What every benchmark shares (not a benchmark itself: ``make bench`` skips ``_*.py``): the
JSON line (``emit``), the one percentile (``percentile``), the machine line, the command
line's common options, free ports, throwaway databases (``Backend``), a served app
(``serve``) and wrk.

Importing it puts this checkout's ``src/`` first on ``sys.path``, so that a script run from a
git worktree measures that worktree's code, not the virtualenv's editable install.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

BIN = Path(sys.executable).parent / "biblioverse"
PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres"

# --- the JSON line ------------------------------------------------------------------------------

_bench = ""
_backend = ""


def start(bench: str) -> None:
    """Name the benchmark every ``emit`` of this process reports under."""
    global _bench
    _bench = bench


def set_backend(name: str) -> None:
    """The database the following rows measure ("" for none: the key is left out)."""
    global _backend
    _backend = name


def backend_name() -> str:
    return _backend


def _plain(value: Any) -> Any:
    # NaN and infinity are not JSON: a figure that could not be measured is null
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    """One JSON object on a line of stdout, keys in DESIGN.md's order: bench, metric, value
    (to 3 decimals), unit, then goal, better and n when given, the backend when set, the rest."""
    row: dict[str, object] = {
        "bench": _bench,
        "metric": metric,
        "value": _plain(round(value, 3)),
        "unit": unit,
    }
    for key in ("goal", "better", "n"):
        if key in extra:
            row[key] = extra.pop(key)
    if _backend:
        row["backend"] = _backend
    row.update(extra)
    print(json.dumps({k: _plain(v) for k, v in row.items()}), flush=True)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def emit_machine(**extra: object) -> str:
    """The first row of every script: the machine it ran on (DESIGN.md asks each to say)."""
    described = machine()
    emit(
        "machine",
        os.cpu_count() or 0,
        "cores",
        machine=described,
        host=platform.node(),
        at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **extra,
    )
    return described


# --- the percentile -----------------------------------------------------------------------------


def percentile(samples: Iterable[float], q: float) -> float:
    """Nearest rank: the smallest sample that at least ``q`` % of the samples are at or below,
    the ceil(q/100 * n)-th smallest (counted from 1). Always a value that was measured; with
    fewer than 20 samples the p95 is the largest. NaN without samples."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not between 0 and 100")
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = math.ceil(Fraction(str(q)) * len(ordered) / 100)  # exact: 7/100 * 100 is 7, not 8
    return ordered[max(1, rank) - 1]


# --- the command line ---------------------------------------------------------------------------


def arguments(doc: str | None, quick: str | None = None) -> argparse.ArgumentParser:
    """A parser whose --help shows the script's docstring; ``--quick`` when ``quick`` (its
    help) is given."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def add_backend(parser: argparse.ArgumentParser, *, both: bool = True) -> None:
    """--backend sqlite|postgresql (|both, the default, when ``both``; else sqlite)."""
    choices = ["sqlite", "postgresql", *(["both"] if both else [])]
    parser.add_argument("--backend", choices=choices, default="both" if both else "sqlite")


def backends(args: argparse.Namespace) -> list[str]:
    return ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]


def add_seconds(parser: argparse.ArgumentParser, help: str, default: float | None = None) -> None:
    parser.add_argument("--seconds", type=float, default=default, help=help)


def add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")


def add_paced_rate(parser: argparse.ArgumentParser, unit: str) -> None:
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=0.0,
        help=f"{unit} of the second, paced run (default 0: half the rate of the first; "
        "negative: no paced run)",
    )


def unwind_on_sigterm() -> None:
    """A SIGTERM (a CI timeout) unwinds too: servers stop and databases are dropped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# --- ports, databases, servers --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_conninfo(dbname: str) -> str:
    return f"{PG_CONNINFO} dbname={dbname}"


@dataclass
class Backend:
    name: str  # "sqlite" or "postgresql"
    url: str  # SQLAlchemy URL
    data_dir: Path  # the app's BIBLIOVERSE_DATA_DIR; drop() removes it
    drop: Callable[[], None]

    @property
    def dbname(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def conninfo(self) -> str:
        """libpq's connection string of the PostgreSQL database."""
        return pg_conninfo(self.dbname)

    def raw_connect(self) -> Any:
        """A DB-API connection of the raw driver (sqlite3 or psycopg), set up as the app's."""
        if self.name == "postgresql":
            return psycopg.connect(self.conninfo())
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA cache_size=-65536")  # as the app's engine sets it
        return conn

    def env(self) -> dict[str, str]:
        """The environment of ``biblioverse`` commands on this database."""
        return app_env(self.url, self.data_dir)


def app_env(url: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "BIBLIOVERSE_DATA_DIR": str(data_dir), "BIBLIOVERSE_DATABASE_URL": url}


def open_backend(name: str, tag: str) -> Backend:
    """An empty database, ``bench_<tag>_<pid>`` on PostgreSQL (127.0.0.1:5432, user postgres)
    or a file in a temporary folder, and a data folder; ``drop()`` removes both."""
    work = Path(tempfile.mkdtemp(prefix=f"bv-bench-{tag}-"))
    if name == "sqlite":
        path = work / "biblioverse.db"
        return Backend(
            name, f"sqlite:///{path}", work, lambda: shutil.rmtree(work, ignore_errors=True)
        )
    dbname = f"bench_{tag}_{os.getpid()}"
    try:
        with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname}")
            conn.execute(f"CREATE DATABASE {dbname}")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

    def drop() -> None:
        with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)

    return Backend(name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}", work, drop)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def stop(self) -> None:
        """SIGTERM to the server's own process group (uvicorn and its workers), SIGKILL
        to what is left after 15 s: a worker stuck in a wait must not outlive the run (it
        would keep the search index's writer lock)."""
        group = self.process.pid  # the server leads its own session (start_new_session)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            self.process.poll()
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.process.wait()


def serve(command: Callable[[int], list[str]], env: dict[str, str], log: Path) -> Server:
    """Start ``command(port)`` in its own process group, its output to ``log``; return once
    /health answers 200."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command(port),
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{server.base}/health").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("server did not answer /health in 30 s")


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Return once something accepts connections on ``port``; fail if ``process`` exits."""
    end = time.time() + timeout
    while time.time() < end:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


# --- wrk --------------------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    base: str,
    lua: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    timeout: str | None = None,
) -> list[str]:
    """wrk on ``base`` with a Lua script whose ``done`` writes a line ``RESULT f1 f2 ...``;
    those fields. wrk's own percentiles (``latency:percentile``) are its histogram's."""
    with tempfile.TemporaryDirectory(prefix="bv-bench-wrk-") as work:
        script = Path(work) / "load.lua"
        script.write_text(lua)
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            *(["--timeout", timeout] if timeout else []),
            *("-s", str(script), base),
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return next(x for x in out.splitlines() if x.startswith("RESULT")).split()[1:]
