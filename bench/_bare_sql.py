"""The statements and the connection shared by the bare servers (``_bare_api``, ``_bare_sip2``):
what a loan and a return send to PostgreSQL, as ``bench/cycle.pgbench`` and
``bench/sip2_cycle.pgbench`` have them, through raw psycopg, prepared, one connection a thread
(``BARE_DSN``), loans made at ``BARE_UNIT`` under rule ``BARE_RULE``."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import psycopg

READER_COLUMNS = (
    "readers.id, readers.card_number, readers.name, readers.email, readers.phone, "
    "readers.birth_date, readers.guardian_name, readers.home_library_id, readers.category, "
    "readers.status, readers.expires_on, readers.password_hash, readers.pin_hash, "
    "readers.registered_via, readers.keep_history, readers.preferred_locale, "
    "readers.blocked_reason, readers.created_at, readers.activated_at"
)
ITEM_COLUMNS = (
    "items.id, items.record_id, items.barcode, items.rfid_tag, items.org_unit_id, "
    "items.location_id, items.at_unit_id, items.call_number, items.shelf_key, items.item_type, "
    "items.price, items.status, items.circulates, items.created_at"
)
BORROWER = (
    f"SELECT {READER_COLUMNS}, "  # noqa: S608
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
    "renewals, returned_at, returned_unit_id, status, lost_at) VALUES (%s, %s, %s, %s, %s, "
    "now(), now() + interval '28 days', 0, NULL, NULL, 'open', NULL) "
    "RETURNING loans.id, loans.due_at"
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

# How a loan's and a return's transactions end: the copy's row, its two events, the commit.
ENDING = [SHELVE, EVENT, EVENT, "COMMIT"]
UNIT = int(os.environ.get("BARE_UNIT", "0"))  # read once (the bench imports this unset)
RULE = int(os.environ.get("BARE_RULE", "0"))
_local = threading.local()


def connection() -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["BARE_DSN"], prepare_threshold=0)
    return conn


def events(cur: psycopg.Cursor[Any], topic: str, loan: int, item: int, record: int) -> None:
    """A loan's or a return's two outbox rows, pipelined, as the app's are."""
    cur.executemany(
        EVENT,
        [
            (topic, json.dumps({"loan_id": loan, "item_id": item})),
            ("catalog.records.changed", json.dumps({"record_ids": [record]})),
        ],
    )
