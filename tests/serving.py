"""Run `biblioverse serve` as a real process for tests that need a server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

BIN = Path(sys.executable).parent / "biblioverse"


def cli_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment of a command on this data folder: its SQLite database, unless
    ``database_url`` names another."""
    env = {**os.environ, "BIBLIOVERSE_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("BIBLIOVERSE_DATABASE_URL", None)
    if database_url is not None:
        env["BIBLIOVERSE_DATABASE_URL"] = database_url
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(
    data_dir: Path,
    *,
    timeout_s: float = 15,
    cwd: Path | None = None,
    database_url: str | None = None,
) -> Iterator[str]:
    """Serve the data folder (and ``database_url``, if not its SQLite database) on a free
    port until the block ends; yields the base URL."""
    env = cli_env(data_dir, database_url)
    with serving(data_dir, timeout_s=timeout_s, cwd=cwd, env=env) as (url, _proc):
        yield url


@contextmanager
def serving(
    data_dir: Path,
    *,
    timeout_s: float = 15,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    log_name: str = "server.log",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`served`, with the process (a test may kill it), more arguments for `serve`
    (``args``) and another environment (``env``, default :func:`cli_env`)."""
    port = free_port()
    log_path = data_dir / log_name
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--port", str(port), *args],
            env=dict(env) if env is not None else cli_env(data_dir),
            stdout=log,
            stderr=log,
            cwd=cwd,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{url} did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield url, proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def served_app(app: ASGIApp, *, timeout_s: float = 15) -> Iterator[tuple[str, int]]:
    """Serve an app object with a real uvicorn server in a thread of this process (for an
    app a test built itself); yields the host and port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on port {port}")
            time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
