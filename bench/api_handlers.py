"""A check-out and a check-in through the web app, in-process: what one API request costs in
Python, without the network, uvicorn or the other clients.

    .venv/bin/python bench/api_handlers.py                       # SQLite
    .venv/bin/python bench/api_handlers.py --backend postgresql
    PYTHONPATH=/tmp/old/src .venv/bin/python /tmp/old/bench/api_handlers.py   # a worktree, with _harness.py

The app of ``biblioverse serve`` (``create_app``, its lifespan and so its events' relay) is
called as an ASGI application, one request at a time, with the staff bearer token and the
JSON bodies of ``bench/circulation.py``'s cycles. Everything the app does per request is
counted: its middleware, FastAPI's dependencies and validation, the worker-thread hops, the
service, the commit. Not counted: parsing HTTP (uvicorn's C parser) and the socket.

Prints one JSON object per line: ``cpu_ms_per_request`` (the process's CPU, every thread,
over rounds of check-out/check-in pairs, the best of 7: the machine's speed varies),
``statements_per_request``, ``thread_hops_per_request`` (the functions sent to worker
threads) and ``loop_python_calls_per_request`` (the Python calls on the event loop's thread,
counted by cProfile: the same for the same code, whatever the machine does).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import time
from typing import Any

import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
import anyio.to_thread
import circulation as circ  # its seed
from sqlalchemy import event

from biblioverse import deps, migrate
from biblioverse.app import create_app
from biblioverse.db import make_engine, make_session_factory, utcnow

Reply = tuple[int, bytes]


async def call(app: Any, method: str, path: str, body: bytes, token: str | None) -> Reply:
    """One request through the ASGI app, as uvicorn hands it over."""
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"user-agent", b"bench"),
        (b"accept", b"*/*"),
    ]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    given = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def drive(app: Any, world: circ.World, pairs: int) -> dict[str, float]:
    api = circ.API
    status, raw = await call(
        app,
        "POST",
        f"{api}/auth/token",
        json.dumps({"kind": "staff", "login": circ.DESK_USER, "password": circ.DESK_PW}).encode(),
        None,
    )
    if status != 200:
        raise RuntimeError(f"login: {status} {raw[:200]!r}")
    token = json.loads(raw)["access_token"]
    reader = world.client_readers[0]
    codes = world.client_copies[0]
    central = world.central_id

    async def pair(barcode: str) -> None:
        out = json.dumps({"reader_id": reader, "barcode": barcode, "library_id": central})
        back = json.dumps({"barcode": barcode, "library_id": central})
        s1, r1 = await call(app, "POST", f"{api}/circulation/checkout", out.encode(), token)
        s2, r2 = await call(app, "POST", f"{api}/circulation/checkin", back.encode(), token)
        if (s1, s2) != (201, 200):
            raise RuntimeError(f"refused: {s1} {r1[:200]!r} / {s2} {r2[:200]!r}")

    for i in range(100):  # warm: caches, prepared statements
        await pair(codes[i % len(codes)])
    best = float("inf")
    best_wall = float("inf")
    for _round in range(7):
        t0, w0 = time.process_time(), time.perf_counter()
        for i in range(pairs):
            await pair(codes[i % len(codes)])
        best = min(best, (time.process_time() - t0) / (2 * pairs))
        best_wall = min(best_wall, (time.perf_counter() - w0) / (2 * pairs))

    hops, statements = [0], [0]
    engine = app.state.session_factory.kw["bind"]

    def count(*_a: object) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    real_run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(*args: Any, **kwargs: Any) -> Any:
        hops[0] += 1
        return await real_run_sync(*args, **kwargs)

    profile = cProfile.Profile()  # the event loop's thread only (cProfile is per thread)
    anyio.to_thread.run_sync = counting_run_sync  # type: ignore[assignment]
    units = getattr(deps, "_UNITS", None)  # the unit-of-work threads (ADR 0023)
    if units is not None:
        real_submit = units.submit

        def counting_submit(*args: Any, **kwargs: Any) -> Any:
            hops[0] += 1
            return real_submit(*args, **kwargs)

        units.submit = counting_submit
    try:
        profile.enable()
        for i in range(50):
            await pair(codes[i % len(codes)])
    finally:
        profile.disable()
        anyio.to_thread.run_sync = real_run_sync
        if units is not None:
            del units.submit
        event.remove(engine, "before_cursor_execute", count)
    return {
        "cpu": best,
        "wall": best_wall,
        "hops": hops[0] / 100,
        "statements": statements[0] / 100,
        "loop_calls": pstats.Stats(profile).total_calls / 100,  # type: ignore[attr-defined]
    }


def main() -> int:
    parser = h.arguments(__doc__)
    h.add_backend(parser, both=False)
    parser.add_argument("--pairs", type=int, default=200, help="pairs a round (7 rounds)")
    args = parser.parse_args()
    h.start("api_handlers")
    h.emit_machine()
    h.set_backend(args.backend)
    backend = h.open_backend(args.backend, "circ")
    try:
        migrate.upgrade(backend.url)
        seed_engine = make_engine(backend.url)
        sizes = circ.Sizes(1, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0)
        world = circ.seed_world(make_session_factory(seed_engine), sizes, utcnow())
        seed_engine.dispose()
        os.environ.update(backend.env())
        app = create_app()

        async def run() -> dict[str, float]:
            async with app.router.lifespan_context(app):
                return await drive(app, world, args.pairs)

        out = asyncio.run(run())
        h.emit("cpu_ms_per_request", 1000 * out["cpu"], "ms")
        h.emit("wall_ms_per_request", 1000 * out["wall"], "ms")
        h.emit("statements_per_request", out["statements"], "statements")
        h.emit("thread_hops_per_request", out["hops"], "hops")
        h.emit("loop_python_calls_per_request", out["loop_calls"], "calls")
    finally:
        backend.drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
