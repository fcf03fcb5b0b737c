"""The floor of any Python SIP2 server for the SIP2 benchmark's kiosks (not a benchmark itself:
``make bench`` skips ``_*.py``; ``bench/sip2.py`` serves it on PostgreSQL).

    BARE_DSN=... BARE_UNIT=... BARE_RULE=... python bench/_bare_sip2.py PORT PROCESSES THREADS

An asyncio TCP server on uvloop, no framework, no ORM: one message per carriage return, its
checksum checked and the answer's made, as the real server does with error detection on. It
answers a login (93) without checking the password, and a checkout (11) and a check-in (09)
with the statements of ``bench/sip2_cycle.pgbench`` through raw psycopg, prepared, one
connection a thread, on a pool of THREADS threads, in PROCESSES processes sharing the port
(the first starts the others, so its process group's CPU is the server's). No rules, no
device log, no event relay: what the kiosks get from it is what the real server could give
if everything it does above the database cost nothing in Python.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import _bare_sql as sql

BY_CARD = f"SELECT {sql.READER_COLUMNS} FROM readers WHERE readers.card_number = %s"  # noqa: S608
ITEM = (
    f"SELECT {sql.ITEM_COLUMNS}, records.title FROM items "  # noqa: S608
    "JOIN records ON records.id = items.record_id WHERE items.barcode = %s FOR UPDATE OF items"
)
# What a loan and a return send, in order, for the check against the script (verbs and
# tables only, ``_pgbench.shape``): keep it in step with checkout() and checkin().
_LOAN = ["BEGIN", BY_CARD, ITEM, sql.BORROWER, sql.HOLDS_OF, sql.LEND, *sql.ENDING]
_RETURN = ["BEGIN", ITEM, sql.OPEN_LOAN, sql.RETURN, sql.QUEUE, *sql.ENDING]
CYCLE = [*_LOAN, *_RETURN]


def checksum(data: bytes) -> bytes:
    return b"%04X" % (-sum(data) & 0xFFFF)


def _fields(message: bytes) -> dict[bytes, bytes]:
    return {f[:2]: f[2:] for f in message.split(b"|")}


def checkout(card: str, barcode: str, stamp: str) -> str:
    conn = sql.connection()
    with conn.transaction(), conn.cursor() as cur:
        reader = cur.execute(BY_CARD, (card,)).fetchone()
        item = cur.execute(ITEM, (barcode,)).fetchone()
        if reader is None or item is None or item[11] != "available":
            return f"120NNN{stamp}AOcentral|AA{card}|AB{barcode}|AJ|AH|AFrefused|"
        cur.execute(sql.BORROWER, {"r": reader[0]}).fetchone()
        cur.execute(sql.HOLDS_OF, (item[0], reader[0], item[1])).fetchall()
        row = cur.execute(sql.LEND, (item[0], reader[0], sql.UNIT, sql.RULE, "kiosk")).fetchone()
        assert row is not None
        cur.execute(sql.SHELVE, ("on_loan", item[0]))
        sql.events(cur, "circulation.loan.created", row[0], item[0], item[1])
    due = row[1].strftime("%Y%m%d    %H%M%S")
    return f"121NNY{stamp}AOcentral|AA{card}|AB{barcode}|AJ{item[14]}|AH{due}|"


def checkin(barcode: str, stamp: str) -> str:
    conn = sql.connection()
    with conn.transaction(), conn.cursor() as cur:
        item = cur.execute(ITEM, (barcode,)).fetchone()
        loan = cur.execute(sql.OPEN_LOAN, (item[0],)).fetchone() if item else None
        if item is None or loan is None:
            return f"100YNN{stamp}AOcentral|AB{barcode}|AQcentral|AJ|AFnot on loan|"
        cur.execute(sql.RETURN, (sql.UNIT, loan[0]))
        cur.execute(sql.QUEUE, (item[1],)).fetchall()
        cur.execute(sql.SHELVE, ("available", item[0]))
        sql.events(cur, "circulation.loan.returned", loan[0], item[0], item[1])
    return f"101YNN{stamp}AOcentral|AB{barcode}|AQcentral|AJ{item[14]}|"


class Kiosk(asyncio.Protocol):
    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool, self.buffer = pool, b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r", 1)
            asyncio.get_running_loop().create_task(self.answer(line.strip(b"\n\x00")))

    async def answer(self, line: bytes) -> None:
        seq = b"0"
        at = line.rfind(b"AZ")
        if at >= 0:
            if checksum(line[: at + 2]) != line[at + 2 : at + 6].upper():
                self._send("96")
                return
            ay = line.rfind(b"AY", 0, at)
            seq = line[ay + 2 : ay + 3] if ay >= 0 else b"0"
        stamp = time.strftime("%Y%m%d    %H%M%S")
        code, fields = line[:2], _fields(line)
        loop = asyncio.get_running_loop()
        if code == b"93":
            body = "941"
        elif code == b"11":
            card, barcode = fields[b"AA"].decode(), fields[b"AB"].decode()
            body = await loop.run_in_executor(self.pool, checkout, card, barcode, stamp)
        elif code == b"09":
            barcode = fields[b"AB"].decode()
            body = await loop.run_in_executor(self.pool, checkin, barcode, stamp)
        else:
            body = "96"
        self._send(body, seq)

    def _send(self, body: str, seq: bytes = b"0") -> None:
        data = body.encode() + b"AY" + seq + b"AZ"
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data + checksum(data) + b"\r")


async def serve(port: int, threads: int) -> None:
    pool = ThreadPoolExecutor(threads)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Kiosk(pool), "127.0.0.1", port, reuse_port=True, backlog=512
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    port, processes, threads = (int(a) for a in sys.argv[1:4])
    children = [
        subprocess.Popen([sys.executable, __file__, str(port), "1", str(threads)])
        for _ in range(processes - 1)
    ]
    try:
        import uvloop

        uvloop.run(serve(port, threads))
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()


if __name__ == "__main__":
    main()
