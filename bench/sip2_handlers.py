"""The SIP2 handlers of a loan and a return, in-process: what one message costs in Python.

    .venv/bin/python bench/sip2_handlers.py                       # SQLite
    .venv/bin/python bench/sip2_handlers.py --backend postgresql
    PYTHONPATH=/tmp/old/src .venv/bin/python /tmp/old/bench/sip2_handlers.py   # a worktree, with _harness.py

One thread, one kiosk's device account, the handlers of messages 11 (checkout) and 09
(check-in) called as the server calls them (a session per message, commit), without the
socket, the thread pool or the events' relay. On SQLite a message's transaction holds the
database's write lock from its first statement to its commit, so the SIP2 server serves at
most about one over this time per second (docs/adr/0021). Prints one JSON object per line:
``cpu_ms_per_message`` (the best of 7 rounds of 200 pairs: the machine's speed varies), and
``python_calls_per_message`` (counted by cProfile over 100 pairs: the same for the same code,
whatever the machine does), and ``statements_per_message``.
"""

from __future__ import annotations

import cProfile
import pstats
import time

import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
import sip2 as kiosks  # its seed
from sqlalchemy import event

from biblioverse import migrate
from biblioverse.accounts import ThrottlePolicy
from biblioverse.db import make_engine, make_session_factory, utcnow
from biblioverse.sip2 import acs, service
from biblioverse.sip2.protocol import Response, parse


def main() -> int:
    parser = h.arguments(__doc__)
    h.add_backend(parser, both=False)
    parser.add_argument("--pairs", type=int, default=200, help="pairs a round (7 rounds)")
    args = parser.parse_args()
    h.start("sip2_handlers")
    h.emit_machine()
    h.set_backend(args.backend)
    backend = h.open_backend(args.backend, "sip2")
    try:
        migrate.upgrade(backend.url)
        (kiosk,), _peer, _reader, _unit = kiosks.seed(backend.url, 1, 50)
        engine = make_engine(backend.url)
        factory = make_session_factory(engine)
        with factory() as session:
            terminal = service.sip2_login(
                session,
                kiosk.login,
                kiosks.KIOSK_PW,
                address="bench",
                at=utcnow(),
                policy=ThrottlePolicy(),
            )
            session.commit()
        link = acs.Link(terminal=terminal)
        date = "20261204    120000"

        def one(body: str) -> Response:
            request = parse(body)
            session = factory()
            try:
                ctx = acs.Context(
                    session, link, request, utcnow(), "CNY", throttle=ThrottlePolicy()
                )
                response = acs.HANDLERS[request.command](ctx)
                session.commit()
            finally:
                session.close()
            return response

        def pair(barcode: str) -> None:
            out = one(f"11NN{date}{' ' * 18}AOcentral|AA{kiosk.card}|AB{barcode}|AC|")
            back = one(f"09N{date}{date}APbench|AOcentral|AB{barcode}|AC|")
            if not (out.fixed.startswith("1") and back.fixed.startswith("1")):
                raise RuntimeError(f"refused: {out.fixed!r} {back.fixed!r}")

        codes = kiosk.barcodes
        for i in range(100):  # warm: caches, prepared statements
            pair(codes[i % len(codes)])
        best = float("inf")
        for _round in range(7):
            t0 = time.process_time()
            for i in range(args.pairs):
                pair(codes[i % len(codes)])
            best = min(best, (time.process_time() - t0) / (2 * args.pairs))
        statements = [0]

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_a: object) -> None:
            statements[0] += 1

        profile = cProfile.Profile()
        profile.enable()
        for i in range(100):
            pair(codes[i % len(codes)])
        profile.disable()
        calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
        h.emit("cpu_ms_per_message", 1000 * best, "ms")
        h.emit("python_calls_per_message", calls / 200, "calls")
        h.emit("statements_per_message", statements[0] / 200, "statements")
        engine.dispose()
    finally:
        backend.drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
