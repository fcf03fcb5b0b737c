"""The floor of any Python web server for the circulation benchmark's cycles (not a benchmark
itself: ``make bench`` skips ``_*.py``; ``bench/circulation.py`` serves it on PostgreSQL).

A bare ASGI application, no framework, no ORM, served by the same uvicorn (uvloop, httptools,
as many worker processes and as many threads a process as ``biblioverse serve``). It answers
``POST /api/v1/circulation/checkout`` and ``.../checkin`` with the statements of
``bench/cycle.pgbench`` (the ones a live cycle sends: the script is checked against it) through
raw psycopg, prepared, one connection a thread, and the JSON that wrk's script reads. It checks
a fixed bearer token and nothing else: no rules, no idempotency, no event relay, no metrics.
What this reaches on the machine is what the app could reach if everything it does above the
database cost nothing in Python; the app's rate over this one is how far it is from that.

Settings come from the environment: ``BARE_DSN``, ``BARE_TOKEN``, ``BARE_UNIT`` (the library
of the loans), ``BARE_RULE`` (their rule) and ``BARE_THREADS``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _bare_sql as sql

Message = dict[str, Any]
Body = dict[str, Any]

ITEM = f"SELECT {sql.ITEM_COLUMNS} FROM items WHERE items.barcode = %s FOR UPDATE"  # noqa: S608
# What a cycle sends, in order, for the check against the script (verbs and tables only,
# ``_pgbench.shape``): keep it in step with checkout() and checkin().
_LOAN = ["BEGIN", ITEM, sql.BORROWER, sql.HOLDS_OF, sql.LEND, *sql.ENDING]
_RETURN = ["BEGIN", ITEM, sql.OPEN_LOAN, sql.RETURN, sql.QUEUE, *sql.ENDING]
CYCLE = [*_LOAN, *_RETURN]


def checkout(body: Body) -> tuple[int, Body]:
    conn = sql.connection()
    with conn.transaction(), conn.cursor() as cur:
        item = cur.execute(ITEM, (body["barcode"],)).fetchone()
        if item is None or item[11] != "available":
            return 409, {"error": "item_on_loan"}
        reader = int(body["reader_id"])
        cur.execute(sql.BORROWER, {"r": reader}).fetchone()
        cur.execute(sql.HOLDS_OF, (item[0], reader, item[1])).fetchall()
        row = cur.execute(sql.LEND, (item[0], reader, sql.UNIT, sql.RULE, "api")).fetchone()
        assert row is not None
        cur.execute(sql.SHELVE, ("on_loan", item[0]))
        sql.events(cur, "circulation.loan.created", row[0], item[0], item[1])
    return 201, {"loan_id": row[0], "item_id": item[0], "due_at": row[1].isoformat()}


def checkin(body: Body) -> tuple[int, Body]:
    conn = sql.connection()
    with conn.transaction(), conn.cursor() as cur:
        item = cur.execute(ITEM, (body["barcode"],)).fetchone()
        loan = cur.execute(sql.OPEN_LOAN, (item[0],)).fetchone() if item else None
        if item is None or loan is None:
            return 409, {"error": "not_on_loan"}
        cur.execute(sql.RETURN, (sql.UNIT, loan[0]))
        cur.execute(sql.QUEUE, (item[1],)).fetchall()
        cur.execute(sql.SHELVE, ("available", item[0]))
        sql.events(cur, "circulation.loan.returned", loan[0], item[0], item[1])
    return 200, {"loan_id": loan[0], "item_id": item[0]}


ROUTES: dict[str, Callable[[Body], tuple[int, Body]]] = {
    "/api/v1/circulation/checkout": checkout,
    "/api/v1/circulation/checkin": checkin,
}
_pool = ThreadPoolExecutor(int(os.environ.get("BARE_THREADS", "4")))
_bearer = b"Bearer " + os.environ.get("BARE_TOKEN", "").encode()


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    handler = ROUTES.get(scope["path"])
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    if scope["path"] == "/health":
        status, out = 200, {"status": "ok"}
    elif handler is None or scope["method"] != "POST":
        status, out = 404, {"error": "not_found"}
    elif not hmac.compare_digest(authorization, _bearer):
        status, out = 401, {"error": "not_authenticated"}
    else:
        loop = asyncio.get_running_loop()
        status, out = await loop.run_in_executor(_pool, handler, json.loads(body))
    raw = json.dumps(out, separators=(",", ":")).encode()  # wrk's script reads "item_id":N
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
