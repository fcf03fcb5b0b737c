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
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

Message = dict[str, Any]
Body = dict[str, Any]

_ITEM_COLUMNS = (
    "items.id, items.record_id, items.barcode, items.rfid_tag, items.org_unit_id, "
    "items.location_id, items.at_unit_id, items.call_number, items.shelf_key, items.item_type, "
    "items.price, items.status, items.circulates, items.created_at"
)
ITEM = f"SELECT {_ITEM_COLUMNS} FROM items WHERE items.barcode = %s FOR UPDATE"  # noqa: S608
READER = (
    "SELECT readers.id, readers.card_number, readers.name, readers.email, readers.phone, "
    "readers.birth_date, readers.guardian_name, readers.home_library_id, readers.category, "
    "readers.status, readers.expires_on, readers.password_hash, readers.pin_hash, "
    "readers.registered_via, readers.keep_history, readers.preferred_locale, "
    "readers.blocked_reason, readers.created_at, readers.activated_at, "
    "(SELECT count(*) FROM loans WHERE loans.reader_id = %(r)s AND loans.returned_at IS NULL), "
    "(SELECT coalesce(sum((fees.amount - fees.paid) - fees.waived), 0) FROM fees "
    "WHERE fees.reader_id = %(r)s) FROM readers WHERE readers.id = %(r)s"
)
HOLDS_OF = (
    "SELECT holds.id, holds.status, holds.trapped_item_id, holds.reader_id FROM holds "
    "WHERE holds.trapped_item_id = %s AND holds.status IN ('ready', 'in_transit') "
    "OR holds.reader_id = %s AND holds.record_id = %s AND holds.status = 'waiting' "
    "ORDER BY holds.id FOR UPDATE"
)
LEND = (
    "INSERT INTO loans (item_id, reader_id, org_unit_id, rule_id, channel, loaned_at, due_at, "
    "renewals, returned_at, returned_unit_id, status, lost_at) VALUES (%s, %s, %s, %s, 'api', "
    "now(), now() + interval '28 days', 0, NULL, NULL, 'open', NULL) RETURNING loans.id, "
    "loans.due_at"
)
SHELVE = "UPDATE items SET status = %s, at_unit_id = NULL WHERE items.id = %s"
EVENT = (
    "INSERT INTO outbox_events (topic, payload, created_at, published_at) "
    "VALUES (%s, %s::jsonb, now(), NULL)"
)
OPEN_LOAN = (
    "SELECT loans.id, loans.item_id, loans.reader_id, loans.org_unit_id, loans.rule_id, "
    "loans.channel, loans.loaned_at, loans.due_at, loans.renewals, loans.returned_at, "
    "loans.returned_unit_id, loans.status, loans.lost_at, readers.category FROM loans "
    "JOIN readers ON readers.id = loans.reader_id "
    "WHERE loans.item_id = %s AND loans.returned_at IS NULL"
)
RETURN = (
    "UPDATE loans SET status = 'returned', returned_at = now(), returned_unit_id = %s "
    "WHERE loans.id = %s"
)
QUEUE = (
    "SELECT holds.id, holds.item_id, holds.pickup_unit_id, readers.category, "
    "readers.home_library_id FROM holds JOIN readers ON readers.id = holds.reader_id "
    "WHERE holds.record_id = %s AND holds.status = 'waiting' "
    "ORDER BY holds.priority DESC, holds.placed_at, holds.id LIMIT 50 "
    "FOR UPDATE OF holds SKIP LOCKED"
)
# What a cycle sends, in order, for the check against the script (verbs and tables only,
# ``_pgbench.shape``): keep it in step with checkout() and checkin().
_LOAN = ["BEGIN", ITEM, READER, HOLDS_OF, LEND, SHELVE, EVENT, EVENT, "COMMIT"]
_RETURN = ["BEGIN", ITEM, OPEN_LOAN, RETURN, QUEUE, SHELVE, EVENT, EVENT, "COMMIT"]
CYCLE = [*_LOAN, *_RETURN]

_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["BARE_DSN"], prepare_threshold=0)
    return conn


def _events(cur: psycopg.Cursor[Any], topic: str, loan: int, item: int, record: int) -> None:
    cur.executemany(  # pipelined, as the app's outbox rows are
        EVENT,
        [
            (topic, json.dumps({"loan_id": loan, "item_id": item})),
            ("catalog.records.changed", json.dumps({"record_ids": [record]})),
        ],
    )


def checkout(body: Body) -> tuple[int, Body]:
    conn, unit, rule = _connection(), int(os.environ["BARE_UNIT"]), int(os.environ["BARE_RULE"])
    with conn.transaction(), conn.cursor() as cur:
        item = cur.execute(ITEM, (body["barcode"],)).fetchone()
        if item is None or item[11] != "available":
            return 409, {"error": "item_on_loan"}
        reader = int(body["reader_id"])
        cur.execute(READER, {"r": reader}).fetchone()
        cur.execute(HOLDS_OF, (item[0], reader, item[1])).fetchall()
        row = cur.execute(LEND, (item[0], reader, unit, rule)).fetchone()
        assert row is not None
        cur.execute(SHELVE, ("on_loan", item[0]))
        _events(cur, "circulation.loan.created", row[0], item[0], item[1])
    return 201, {"loan_id": row[0], "item_id": item[0], "due_at": row[1].isoformat()}


def checkin(body: Body) -> tuple[int, Body]:
    conn = _connection()
    with conn.transaction(), conn.cursor() as cur:
        item = cur.execute(ITEM, (body["barcode"],)).fetchone()
        loan = cur.execute(OPEN_LOAN, (item[0],)).fetchone() if item else None
        if item is None or loan is None:
            return 409, {"error": "not_on_loan"}
        cur.execute(RETURN, (int(os.environ["BARE_UNIT"]), loan[0]))
        cur.execute(QUEUE, (item[1],)).fetchall()
        cur.execute(SHELVE, ("available", item[0]))
        _events(cur, "circulation.loan.returned", loan[0], item[0], item[1])
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
