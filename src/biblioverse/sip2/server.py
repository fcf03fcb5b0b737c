"""The SIP2 server: asyncio for the connections, a thread pool for the database work.

Each connection is read frame by frame (a carriage return, or a line feed, ends a frame)
and answered in order. Every message is one transaction through the circulation services;
their events are published after the commit, as for a web request. What the server learns of
each device (messages, errors, the last lines of its log) is kept in memory and written to
the database once a second, not once per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import re
import signal
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from biblioverse import accounts, events, readers
from biblioverse.access import PrincipalKind
from biblioverse.db import make_session_factory, utcnow
from biblioverse.errors import Throttled
from biblioverse.sip2 import acs, service

if TYPE_CHECKING:
    from biblioverse import jetstream
from biblioverse.sip2.protocol import (
    Field,
    FrameError,
    Request,
    Response,
    UnknownCommand,
    clean_frame,
    encode,
    parse,
    trailer,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_PORT = 6001
_TERMINATOR = re.compile(rb"[\r\n]")
# Values kept out of the device log: passwords and PINs entirely; the reader's name and
# contact details; of the card number only the last four characters.
_SECRET = (
    Field.LOGIN_PASSWORD,
    Field.PATRON_PASSWORD,
    Field.TERMINAL_PASSWORD,
    Field.PERSONAL_NAME,
    Field.EMAIL_ADDRESS,
    Field.HOME_PHONE_NUMBER,
    Field.HOME_ADDRESS,
)
BUSY = "The library system is busy. Please try again."


@dataclass(frozen=True)
class Limits:
    idle_timeout_s: float = 300.0  # a connection silent this long (or stalled mid-message) ends
    max_message: int = 4096  # bytes in one frame
    # at the limit, a connection not logged in makes room; a logged-in one never does
    max_connections: int = 256
    login_timeout_s: float = 10.0  # a connection that has not logged in by then is closed
    max_per_address: int = 16  # connections not logged in from one address at once
    max_failed_logins: int = 5  # per connection, then it is closed
    # and across connections, per login and address and per address (as sign-ins are)
    throttle: accounts.ThrottlePolicy = field(default_factory=accounts.ThrottlePolicy)
    # Threads doing database work (PostgreSQL; on SQLite the event loop does it). A few: a
    # message's work is mostly Python, under the GIL, and more threads took it from each
    # other (ADR 0023; the runs are in docs/benchmarks.md). Three leave room for a login's
    # argon2 check beside the messages.
    workers: int = 3


@dataclass(eq=False)
class _Waiting:
    """A connection not logged in yet, so that it can be closed to make room."""

    host: str
    writer: asyncio.StreamWriter
    evicted: bool = False


def _masked(code: str, value: str) -> str:
    if not value:
        return value
    if code == Field.PATRON_IDENTIFIER:
        return f"…{value[-4:]}"
    return "****" if code in _SECRET else value


def mask(text: str, request: Request) -> str:
    """The text of a request fit for the device log."""
    for code, values in request.fields.items():
        for value in values:
            hidden = _masked(code, value)
            if hidden != value:
                text = text.replace(f"{code}{value}", f"{code}{hidden}", 1)
    return text


def mask_response(response: Response) -> str:
    """The text of a response fit for the device log."""
    fields = [
        (
            code,
            [_masked(code, str(v)) for v in value]
            if isinstance(value, list)
            else None
            if value is None
            else _masked(code, str(value)),
        )
        for code, value in response.fields
    ]
    return Response(response.command, response.fixed, fields).text()


class Sip2Server:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        handlers: Mapping[str, Sequence[events.Subscriber]] | None = None,
        merge: Mapping[str, events.Merger] | None = None,
        relay: events.Relay | None = None,
        limits: Limits | None = None,
        currency: str = "CNY",
        clock: Callable[[], dt.datetime] = utcnow,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.factory = factory
        # reads outside any write transaction (a PIN's check); without an engine to read
        # from, a PIN is checked in the message's transaction as before
        bind = factory.kw.get("bind")
        self.read_factory = (
            make_session_factory(bind, read_only=True) if isinstance(bind, Engine) else None
        )
        # On SQLite a message's transaction holds the database's write lock from its first
        # statement, so messages are answered one at a time whatever the threads; they run
        # on the event loop's thread, which a thread of the pool would have to share the GIL
        # with (ADR 0022). Logins and new PINs (argon2) still go to the pool.
        self.inline = isinstance(bind, Engine) and bind.dialect.name == "sqlite"
        self.handlers, self.merge = handlers or {}, merge or {}
        self.relay = relay
        self.limits = limits or Limits()
        self.currency, self.clock, self.tls = currency, clock, tls
        self.pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="sip2")
        # logins (argon2) take all threads but one: guesses must not hold up the logged in
        self._logins = asyncio.Semaphore(max(1, self.limits.workers - 1))
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._traffic: dict[int, service.Traffic] = {}
        self._traffic_lock = threading.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        # connections not logged in, by address, oldest first
        self._waiting: dict[str, dict[_Waiting, None]] = {}
        self._turned_away, self._turned_away_logged = 0, -1.0e9

    # --- life ---

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen; returns the port (useful with port 0). ``reuse_port``: other processes
        listen on the same port too, and the kernel shares the connections among them."""
        # a TLS handshake left hanging is a connection not logged in either
        handshake = {"ssl_handshake_timeout": self.limits.login_timeout_s} if self.tls else {}
        self._server = await asyncio.start_server(
            self._client,
            host,
            port,
            ssl=self.tls,
            limit=self.limits.max_message * 2,
            reuse_port=reuse_port,
            **handshake,
        )
        self._flusher = asyncio.create_task(self._flush_every(1.0))
        return int(self._server.sockets[0].getsockname()[1])

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await asyncio.get_running_loop().run_in_executor(self.pool, self.flush)
        self.pool.shutdown(wait=True)

    # --- the device log and counters ---

    def _note(
        self,
        link: acs.Link,
        direction: str,
        text: str,
        *,
        error: str | None = None,
        address: str | None = None,
    ) -> None:
        if link.terminal is None:
            if error:
                log.info("sip2 %s before login: %s", address, error)
            return
        now = self.clock()
        with self._traffic_lock:
            t = self._traffic.setdefault(link.terminal.account_id, service.Traffic())
            t.last_seen, t.address = now, address or t.address
            if direction == "in":
                t.messages += 1
            if error:
                t.errors += 1
                t.last_error = error
            t.lines.append((now, direction, text))
            del t.lines[: -service.LOG_KEPT]

    def flush(self) -> None:
        """Write what was counted and logged since the last flush (also at shutdown)."""
        with self._traffic_lock:
            traffic, self._traffic = self._traffic, {}
        if not traffic:
            return
        try:
            with self.factory() as session:
                service.record_traffic(session, traffic)
                session.commit()
        except SQLAlchemyError:
            log.exception("could not write the SIP2 device log; counts of this second lost")

    async def _flush_every(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(seconds)
            await loop.run_in_executor(self.pool, self.flush)

    # --- connections ---

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if len(self._waiting.get(host, ())) >= self.limits.max_per_address:
            self._turn_away(host, "too many connections from it not logged in")
            writer.close()
            return
        if self.connections >= self.limits.max_connections and not self._make_room():
            self._turn_away(host, f"{self.connections} connections open, all logged in")
            writer.close()
            return
        self.connections += 1
        self._clients.add(task)
        waiting = _Waiting(host, writer)
        self._waiting.setdefault(host, {})[waiting] = None
        link = acs.Link()
        try:
            await self._converse(link, reader, writer, address, waiting)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the device went away
        except asyncio.CancelledError:
            pass  # the server is stopping
        except Exception:  # one broken conversation must never stop the others
            log.exception("sip2: connection %s failed", address)
        finally:
            if not waiting.evicted:  # an evicted connection gave its place up already
                self.connections -= 1
            self._logged_in(waiting)
            self._clients.discard(task)
            self._note(link, "note", "connection closed", address=address)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _logged_in(self, waiting: _Waiting) -> None:
        """The connection no longer counts among those not logged in (it did, or it ended)."""
        of_host = self._waiting.get(waiting.host)
        if of_host is not None and of_host.pop(waiting, False) is None and not of_host:
            del self._waiting[waiting.host]

    def _make_room(self) -> bool:
        """Close the oldest connection not logged in of the address with the most of them
        (a flood's, rather than a kiosk's that is logging in); False: all are logged in."""
        if not self._waiting:
            return False
        host = max(self._waiting, key=lambda h: len(self._waiting[h]))
        oldest = next(iter(self._waiting[host]))
        self._logged_in(oldest)
        oldest.evicted = True
        self.connections -= 1
        self._turn_away(host, "closed, not logged in, to make room")
        oldest.writer.transport.abort()
        return True

    def _turn_away(self, host: str, why: str) -> None:
        """Log a connection refused or closed for room: in a flood, one line a second with
        the count, so that the flood does not fill the log too."""
        self._turned_away += 1
        now = time.monotonic()
        if now - self._turned_away_logged >= 1.0:
            log.warning(
                "sip2: %d connection(s) turned away; the last from %s: %s",
                self._turned_away,
                host,
                why,
            )
            self._turned_away, self._turned_away_logged = 0, now

    async def _converse(
        self,
        link: acs.Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        waiting: _Waiting,
    ) -> None:
        loop = asyncio.get_running_loop()
        login_by = loop.time() + self.limits.login_timeout_s
        buffer = bytearray()
        failed_logins = 0
        while True:
            if waiting.evicted:
                return
            m = _TERMINATOR.search(buffer)
            if m is None:
                if len(buffer) > self.limits.max_message:
                    self._note(link, "note", "closed: message too long", error="too long")
                    return
                timeout = self.limits.idle_timeout_s
                if link.terminal is None:
                    timeout = min(timeout, login_by - loop.time())
                try:
                    if timeout <= 0:
                        raise TimeoutError
                    chunk = await asyncio.wait_for(reader.read(65536), timeout=timeout)
                except TimeoutError:
                    if link.terminal is None and loop.time() >= login_by:
                        why = f"not logged in within {self.limits.login_timeout_s:g} s"
                    else:
                        why = "stalled in a message" if buffer else "idle"
                    self._note(link, "note", f"closed: {why}", address=address)
                    return
                if not chunk:
                    return
                buffer += chunk
                continue
            frame = clean_frame(bytes(buffer[: m.start()]))
            del buffer[: m.end()]
            if not frame:
                continue  # the LF of a CRLF, or an empty line
            if len(frame) > self.limits.max_message:
                self._note(link, "note", "closed: message too long", error="too long")
                return
            answer, close = await self._answer(link, frame, address)
            if link.terminal is not None:
                self._logged_in(waiting)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
            if close == "login":
                failed_logins += 1
                if failed_logins >= self.limits.max_failed_logins:
                    log.warning("sip2: %s closed after %d failed logins", address, failed_logins)
                    return

    # --- one message ---

    def _charset(self, link: acs.Link) -> str:
        return link.terminal.charset if link.terminal is not None else "utf-8"

    def _decode(self, link: acs.Link, data: bytes) -> str:
        if link.terminal is None:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("latin-1")
        return data.decode(link.terminal.charset, errors="replace")

    def _frame(self, link: acs.Link, response: Response, sequence: str | None, sums: bool) -> bytes:
        error_detection = sums or (link.terminal is not None and link.terminal.error_detection)
        return encode(
            response,
            encoding=self._charset(link),
            sequence=sequence,
            error_detection=error_detection,
        )

    async def _answer(
        self, link: acs.Link, frame: bytes, address: str
    ) -> tuple[bytes | None, str | None]:
        """The bytes to send back (None: nothing) and why to count a failure, if any."""
        t = trailer(frame)
        text = self._decode(link, t.body)
        required = link.terminal is not None and link.terminal.error_detection
        if t.checksum_ok is False or (required and t.checksum is None and text[:2] != "97"):
            why = "bad checksum" if t.checksum_ok is False else "no checksum"
            self._note(link, "in", f"{text[:2]}… ({why})", error=why, address=address)
            out = self._frame(link, Response("96", ""), None, True)
            self._note(link, "out", "96 (please resend)")
            return out, None
        if text[:2] == "97":
            self._note(link, "in", "97 (resend)", address=address)
            return link.last, None
        try:
            request = parse(text, t.sequence)
        except UnknownCommand as exc:
            return self._unknown(link, exc, address), None
        except FrameError as exc:
            self._note(link, "in", f"{text[:2]}… ({exc})", error=str(exc), address=address)
            return None, None
        if request.command != "93":
            self._note(link, "in", mask(text, request), address=address)
        sums = t.checksum is not None
        failure = None
        if request.command == "93":
            host = address.rpartition(":")[0] or address  # failures count per machine
            async with self._logins:
                response = await self._run(functools.partial(self._login, host=host), link, request)
            failure = "login" if response.fixed == "0" else None
            # Noted once the device is known: a login counts among its messages.
            self._note(link, "in", mask(text, request), address=address)
        elif request.command == "99":
            response = acs.acs_status(
                link.terminal,
                self.clock(),
                timeout_s=int(self.limits.idle_timeout_s),
                retries=3,
            )
        elif link.terminal is None:
            refused = acs.negative(request, self.clock(), acs.NOT_LOGGED_IN)
            if refused is None:
                return None, None
            response = refused
        elif not self.inline:
            response = await self._run(self._handle, link, request)
        else:
            response = await self._inline(link, request)
        out = self._frame(link, response, request.sequence, sums)
        link.last = out
        self._note(link, "out", mask_response(response))
        return out, failure

    def _unknown(self, link: acs.Link, exc: UnknownCommand, address: str) -> bytes | None:
        """A command SIP2 2.00 does not define: 96 is the one answer the standard has for any
        message, and the machine hears it at once instead of waiting for its timeout. Only
        the code is logged: the rest may hold a card number or a PIN."""
        self._note(link, "in", f"{exc.command}… ({exc})", error=str(exc), address=address)
        if link.terminal is not None:
            log.info("sip2 device %d: %s", link.terminal.account_id, exc)
        if exc.command == "96":
            return None  # a resend request answered by another would go back and forth forever
        self._note(link, "out", "96 (please resend)")
        return self._frame(link, Response("96", ""), None, True)

    async def _run(
        self, fn: Callable[[acs.Link, Request], _T], link: acs.Link, request: Request
    ) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, fn, link, request)

    def _password_first(self, login: str, password: str, host: str) -> service.SecretChecked | None:
        """The password checked on a snapshot before the login's transaction (as a PIN is,
        see :meth:`_check_pin`); None: checked in the transaction. Throttled goes up."""
        if self.read_factory is None:
            return None
        try:
            with self.read_factory() as session:
                return service.sip2_password_first(
                    session, login, password, address=host, at=self.clock()
                )
        except Throttled:
            raise
        except Exception:
            log.exception("sip2: the password of %s could not be checked first", host)
            return None

    def _login(self, link: acs.Link, request: Request, host: str) -> Response:
        login = request.get(Field.LOGIN_USER_ID)
        password = request.fields.get(Field.LOGIN_PASSWORD, [""])[0]
        try:
            checked = self._password_first(login, password, host)
        except Throttled:
            log.warning("sip2: login from %s refused: too many failed logins", host)
            return Response("94", "0")
        with self.factory() as session:
            try:
                terminal = service.sip2_login(
                    session,
                    login,
                    password,
                    address=host,
                    at=self.clock(),
                    policy=self.limits.throttle,
                    checked=checked,
                )
                session.commit()  # the attempt's count, or its reset
            except Throttled:
                session.commit()  # a refused attempt counts too
                log.warning("sip2: login from %s refused: too many failed logins", host)
                return Response("94", "0")
            except SQLAlchemyError as exc:
                session.rollback()
                log.warning("sip2: login from %s: database error: %s", host, exc)
                return Response("94", "0")
        if terminal is None:
            return Response("94", "0")
        link.terminal = terminal
        link.pins.clear()
        return Response("94", "1")

    def _pin_to_check(self, link: acs.Link, request: Request) -> tuple[str, str] | None:
        """The card and PIN of a request whose PIN this connection has not seen right yet."""
        card = request.get(Field.PATRON_IDENTIFIER)
        pin = request.fields.get(Field.PATRON_PASSWORD, [""])[0]
        if not card or not pin or self.read_factory is None or link.pin_seen(card, pin):
            return None
        return card, pin

    def _check_pin(self, link: acs.Link, request: Request) -> service.SecretChecked | None:
        """A PIN this connection has not seen right yet is checked before the message's
        transaction, on a snapshot: argon2 takes tens of milliseconds, and on SQLite a
        transaction holds the database's write lock from its first statement, so every
        kiosk and desk would wait for it. None when there is nothing to check here."""
        wanted = self._pin_to_check(link, request)
        if wanted is None or self.read_factory is None:
            return None
        card, pin = wanted
        with self.read_factory() as session:
            reader = readers.by_card(session, card)
            if reader is None:
                return None
            try:  # a reader locked out: the transaction refuses the PIN without a check
                person = accounts.person_key(PrincipalKind.READER, reader.id)
                accounts.check_throttle(session, [person], self.clock())
            except Throttled:
                return None
        return acs.pin_first(reader, pin)

    def _check_pin_first(self, link: acs.Link, request: Request) -> service.SecretChecked | None:
        try:
            return self._check_pin(link, request)
        except Exception:  # checked in the transaction instead, where a fault is answered
            log.exception("sip2 %s: the PIN could not be checked first", request.name)
            return None

    def _handle(self, link: acs.Link, request: Request) -> Response:
        """A message in a thread of the pool."""
        pin_checked = self._check_pin_first(link, request)
        response, done = self._transaction(link, request, pin_checked)
        if done is not None:
            self._publish(request, done)
        return response

    async def _inline(self, link: acs.Link, request: Request) -> Response:
        """A message on the event loop's thread (SQLite); what may take long goes to the
        pool: a new PIN's check before the transaction, and the events it publishes itself
        after (urgent ones, a catalogue change that search must show at once)."""
        loop = asyncio.get_running_loop()
        pin_checked = None
        if self._pin_to_check(link, request) is not None:
            pin_checked = await self._run(self._check_pin_first, link, request)
        response, done = self._transaction(link, request, pin_checked)
        if done is not None:
            if events.publishes_here(done, self.relay):
                # shielded: a connection dropped meanwhile must not leave the session open
                await asyncio.shield(loop.run_in_executor(self.pool, self._publish, request, done))
            else:
                self._publish(request, done)
        return response

    def _transaction(
        self, link: acs.Link, request: Request, pin_checked: service.SecretChecked | None
    ) -> tuple[Response, Session | None]:
        """The message's unit of work: its handler and the commit. With the answer, the
        committed session, whose events are still to be published (None: refused)."""
        handler = acs.HANDLERS[request.command]
        now = self.clock()
        session = self.factory()
        try:
            ctx = acs.Context(
                session,
                link,
                request,
                now,
                self.currency,
                throttle=self.limits.throttle,
                pin_checked=pin_checked,
            )
            response = handler(ctx)
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            log.warning("sip2 %s: database error: %s", request.name, exc)
            refused = acs.negative(request, now, BUSY)
            assert refused is not None
            self._note(link, "note", f"database error in {request.name}", error="database")
            session.close()
            return refused, None
        except Exception as exc:  # a fault of ours: the machine hears no, the log says why
            session.rollback()
            log.exception("sip2 %s failed", request.name)
            refused = acs.negative(request, now, acs.ASK_DESK)
            assert refused is not None
            self._note(link, "note", f"{request.name} failed: {exc}", error=type(exc).__name__)
            session.close()
            return refused, None
        return response, session

    def _publish(self, request: Request, session: Session) -> None:
        """Committed: whatever happens to the events now, the machine is told what was
        done (the outbox keeps what could not be published for the next pass)."""
        try:
            events.publish_after_commit(session, self.relay, self.handlers, self.merge)
        except Exception:
            log.exception("sip2: events of %s not published yet", request.name)
        finally:
            session.close()


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@contextlib.asynccontextmanager
async def running(
    database_url: str,
    index_dir: Any,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    currency: str = "CNY",
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    stream: Callable[[], jetstream.Link] | None = None,
) -> Any:
    """A server with its own database pools and outbox relay (the search index learns of
    loans and returns made at the machines); yields it once it listens. ``stream``: with
    several nodes, the relay publishes every event to the NATS stream (ADR 0034), and the
    node's web app, which follows it, refreshes the index."""
    from biblioverse import catalog
    from biblioverse.db import make_engine, make_session_factory

    engine = make_engine(database_url)
    read_engine = make_engine(database_url)
    factory = make_session_factory(engine)
    read_factory = make_session_factory(read_engine, read_only=True)
    index = catalog.TantivyIndex(index_dir)
    handlers, merge = catalog.subscribers(read_factory, lambda: index)
    # its events for the search index only: the others (a building alarm's) wait for the
    # web app's relay, which has their subscribers
    link = stream() if stream is not None else None
    if link is not None:
        link.start()
    relay = events.Relay(
        factory,
        read_factory,
        handlers,
        merge,
        topics=None if link is not None else set(handlers),
        deliver=link.publish if link is not None else None,
    )
    relay.start()
    server = Sip2Server(
        factory,
        handlers=handlers,
        merge=merge,
        relay=relay,
        limits=limits,
        currency=currency,
        tls=tls,
    )
    try:
        server.port = await server.start(host, port, reuse_port=reuse_port)
        yield server
    finally:
        await server.close()
        relay.stop()
        if link is not None:
            link.stop()
        engine.dispose()
        read_engine.dispose()


def serve(
    database_url: str, index_dir: Any, host: str, port: int, *, processes: int = 1, **kwargs: Any
) -> None:
    """Run until interrupted (the ``biblioverse sip2 serve`` command). With ``processes``
    above one, that many server processes listen on the port together (SO_REUSEPORT),
    each with its own database pools, thread pool and outbox relay: a message costs a few
    milliseconds of Python, and one process uses one core at most."""

    async def main() -> None:
        async with running(
            database_url, index_dir, host, port, reuse_port=processes > 1, **kwargs
        ) as server:
            log.info("SIP2 server listening on %s:%d (pid %d)", host, server.port, os.getpid())
            await server.serve_forever()

    def one() -> None:
        with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_loop()) as r:
            r.run(main())

    if processes <= 1:
        one()
        return
    if port == 0:
        raise ValueError("several processes need a fixed port to share")
    _supervise([_fork(one) for _ in range(processes)])


def _loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it comes with uvicorn's standard extras, as
    for the web app), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _fork(run: Callable[[], None]) -> int:
    """A child process running ``run`` (forked before any thread, pool or loop exists)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run()
        except BaseException:
            log.exception("SIP2 server process failed")
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
    return pid


def _supervise(children: list[int]) -> None:
    """Wait for the server processes. SIGINT or SIGTERM stops them all (a terminal's Ctrl+C
    reaches them directly, a service manager's SIGTERM through here); when one ends on its
    own, the others are stopped too, so that a service manager sees the failure and starts
    the whole server again."""
    alive = set(children)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(alive):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    try:
        while alive:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in alive:
                continue
            alive.discard(pid)
            if os.waitstatus_to_exitcode(status) != 0:
                failed = True
            if alive and not stopping:
                log.warning("SIP2 server process %d ended; stopping the others", pid)
                failed = True
                stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise SystemExit(1)
