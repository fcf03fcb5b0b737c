"""A SIP2 server on a real socket for the tests, in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pysip2
from Sip2.sip2 import Sip2
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from biblioverse import sip2
from biblioverse.db import make_session_factory
from biblioverse.sip2.server import Limits, Sip2Server
from tests.factories import NOW, World

KIOSK_LOGIN = "kiosk-central-1"
KIOSK_PASSWORD = "kiosk-password-1"


@dataclass
class Running:
    server: Sip2Server
    port: int
    loop: asyncio.AbstractEventLoop

    def flush(self) -> None:
        self.server.flush()


@contextmanager
def sip2_server(
    engine: Engine,
    *,
    limits: Limits | None = None,
    clock: Callable[[], dt.datetime] = lambda: NOW,
) -> Iterator[Running]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sip2-test-loop", daemon=True)
    thread.start()
    server = Sip2Server(
        make_session_factory(engine),
        limits=limits or Limits(idle_timeout_s=5.0, workers=4),
        clock=clock,
    )
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
    try:
        yield Running(server, port, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def kiosk_account(
    session: Session,
    w: World,
    *,
    error_detection: bool = False,
    charset: str = "utf-8",
    **kw: object,
) -> sip2.Sip2Account:
    data = sip2.Sip2AccountInput(
        name="Central entrance kiosk",
        login=KIOSK_LOGIN,
        password=KIOSK_PASSWORD,
        org_unit_id=w.central.id,
        location="Ground floor, entrance",
        charset=charset,
        error_detection=error_detection,
    )
    for k, v in kw.items():
        setattr(data, k, v)
    account, _key = sip2.create_sip2_account(session, None, data, at=NOW)
    return account


class Wire:
    """A raw socket for what no client library sends: garbage, split frames, stalls."""

    def __init__(self, port: int, timeout: float = 5.0, source: str | None = None) -> None:
        # source: another loopback address (127.0.0.2) to stand for another machine
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> bytes:
        """The next frame the server sends, CR included."""
        while b"\r" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        frame, _, self.buffer = self.buffer.partition(b"\r")
        return frame + b"\r"

    def ask(self, data: bytes) -> bytes:
        self.send(data)
        return self.reply()

    def closed(self) -> bool:
        """True when the server has closed the connection (reads end)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self) -> None:
        self.sock.close()


def race_to_borrow(wires: list[Wire], cards: list[str], barcode: str) -> list[bytes]:
    """Every connection asks at once to lend ``barcode`` to its own card; the answers, and
    the assurance that exactly one was a loan and the others were told it is on loan."""
    answers: list[bytes] = []
    date = "20261118    140000"

    def borrow(wire: Wire, card: str) -> None:
        answers.append(
            wire.ask(f"11NN{date}{' ' * 18}AOcentral|AA{card}|AB{barcode}|AC|\r".encode())
        )

    threads = [
        threading.Thread(target=borrow, args=(wire, card))
        for wire, card in zip(wires, cards, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    oks = [a for a in answers if pysip2.decode_as(a, pysip2.CheckoutResponse).message.ok == "1"]
    assert len(answers) == len(cards) and len(oks) == 1
    refused = {
        pysip2.decode_as(a, pysip2.CheckoutResponse).message.screen_message
        for a in answers
        if a not in oks
    }
    assert refused == {("This copy is already on loan.",)}
    return answers


def sip2_client(port: int, log_dir: str) -> Sip2:
    """The PyPI ``sip2`` client, with sequence numbers and checksums (its defaults)."""
    c = Sip2()
    c.hostName, c.hostPort = "127.0.0.1", port
    c.tlsEnable = False
    c.socketTimeout = 10
    c.logfile_path = log_dir  # the client writes its own log file
    c.hostEncoding = "utf-8"
    c.institutionId = "central"
    c.scLocation = "Ground floor, entrance"
    c.connect()
    return c


def with_checksum(request: str, value: str) -> str:
    """A request the client wrote, its checksum (AZ) replaced by ``value``."""
    at = request.rindex("AZ") + 2
    return request[:at] + value + "\r"
