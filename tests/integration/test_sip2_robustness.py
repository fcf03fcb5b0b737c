"""The live socket under what kiosks in the field send: CRLF, split frames, garbage, bad and
missing checksums, stalls, overlong frames, too many connections. The server never crashes,
answers what can be answered, closes what must be closed, and other connections go on."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from pathlib import Path
from typing import TypeVar

import pysip2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pysip2 import ACSStatusResponse, CheckoutResponse, ItemInformationResponse, LoginResponse
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from biblioverse.accounts import LoginThrottle, ThrottlePolicy
from biblioverse.circulation.models import Loan
from biblioverse.sip2.protocol import checksum
from biblioverse.sip2.server import Limits
from tests import factories
from tests.factories import NOW
from tests.integration.sip2_support import (
    KIOSK_LOGIN,
    KIOSK_PASSWORD,
    Wire,
    kiosk_account,
    race_to_borrow,
    sip2_client,
    sip2_server,
    with_checksum,
)

LOGIN = f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPentrance|".encode()
STATUS = b"9900302.00"
DATE = "20261118    140000"


def _summed(body: bytes, seq: int = 1) -> bytes:
    data = body + b"AY" + str(seq).encode() + b"AZ"
    return data + checksum(data).encode() + b"\r"


def _world(session: Session, *, error_detection: bool = False) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    factories.copies(session, w, "A Book", ["R-1"])
    kiosk_account(session, w, error_detection=error_detection)
    session.commit()
    session.rollback()


M = TypeVar("M", bound=pysip2.SIPMessage)


def _answer(raw: bytes, kind: type[M]) -> M:
    """The answer as pysip2's strict codec reads it, which must be of the kind asked for."""
    return pysip2.decode_as(raw, kind).message


def _online(wire: Wire) -> bool:
    return _answer(wire.ask(STATUS + b"\r"), ACSStatusResponse).online_status == "Y"


def test_crlf_nuls_and_a_frame_split_into_single_bytes(engine: Engine, session: Session) -> None:
    _world(session)
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            for byte in LOGIN + b"\r\n":
                wire.send(bytes([byte]))
            assert wire.reply() == b"941\r"
            wire.send(STATUS + b"\x00\x00\r\n" + STATUS + b"\r")  # two frames in one packet
            assert wire.reply().startswith(b"98Y")
            assert wire.reply().startswith(b"98Y")
        finally:
            wire.close()


def test_checksums_are_checked_and_a_bad_one_asks_for_a_resend(
    engine: Engine, session: Session
) -> None:
    _world(session)
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            answer = wire.ask(_summed(LOGIN, 3))
            decoded = pysip2.decode_as(answer, LoginResponse)
            assert decoded.message.ok == "1" and decoded.sequence_number == 3
            bad = _summed(STATUS, 4)[:-5] + b"0000\r"
            assert wire.ask(bad) == b"96AZFEF6\r"
            good = wire.ask(_summed(STATUS, 4))
            assert pysip2.decode_message(good).sequence_number == 4
            # A lower-case checksum is as good as an upper-case one.
            lower = _summed(STATUS, 5)
            assert wire.ask(lower[:-5] + lower[-5:-1].lower() + b"\r").startswith(b"98Y")
            # 97: the last answer again, byte for byte.
            last = wire.ask(_summed(STATUS, 6))
            assert wire.ask(b"97\r") == last
        finally:
            wire.close()


def test_an_account_that_requires_checksums_refuses_messages_without(
    engine: Engine, session: Session
) -> None:
    _world(session, error_detection=True)
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            assert _answer(wire.ask(LOGIN + b"\r"), LoginResponse).ok == "1"
            assert wire.ask(STATUS + b"\r") == b"96AZFEF6\r"
            answer = wire.ask(_summed(STATUS, 2))
            assert pysip2.decode_message(answer).checksum is not None  # and it answers with one
        finally:
            wire.close()


def test_nothing_is_done_before_a_login(engine: Engine, session: Session) -> None:
    _world(session)
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            status = _answer(wire.ask(STATUS + b"\r"), ACSStatusResponse)
            assert status.online_status == "N" and status.supported_messages == "N" * 16
            checkout = wire.ask(f"11NN{DATE}{' ' * 18}AOcentral|AACARD000001|ABR-1|AC|\r".encode())
            refused = _answer(checkout, CheckoutResponse)
            assert refused.ok == "0" and refused.screen_message == (
                "This machine is not logged in.",
            )
            wrong = wire.ask(f"9300CN{KIOSK_LOGIN}|COwrong-password|\r".encode())
            assert wrong == b"940\r"
        finally:
            wire.close()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Loan)) == 0


def test_repeated_failed_logins_close_the_connection(engine: Engine, session: Session) -> None:
    _world(session)
    with sip2_server(engine, limits=Limits(max_failed_logins=3, idle_timeout_s=5)) as running:
        wire = Wire(running.port)
        try:
            for _ in range(3):
                assert wire.ask(f"9300CN{KIOSK_LOGIN}|COguess|\r".encode()) == b"940\r"
            assert wire.closed()
        finally:
            wire.close()


def test_failed_logins_count_across_connections(engine: Engine, session: Session) -> None:
    """Reconnecting does not reset the count: after four guesses from one machine its
    login is locked there, even with the right password, for the policy's window; another
    machine still logs in, and after the window the first one does too."""
    _world(session)
    now = [NOW]
    limits = Limits(
        max_failed_logins=3,
        idle_timeout_s=5,
        throttle=ThrottlePolicy(window_s=900, account_failures=4, address_failures=30),
    )
    right = f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|\r".encode()
    guess = f"9300CN{KIOSK_LOGIN}|COguess|\r".encode()

    def login(message: bytes, source: str = "127.0.0.1") -> bytes:
        wire = Wire(running.port, source=source)
        try:
            return wire.ask(message)
        finally:
            wire.close()

    with sip2_server(engine, limits=limits, clock=lambda: now[0]) as running:
        first = Wire(running.port)
        try:
            for _ in range(3):
                assert first.ask(guess) == b"940\r"
            assert first.closed()  # the connection's own limit
        finally:
            first.close()
        assert login(guess) == b"940\r"  # the fourth, on a new connection
        assert login(right) == b"940\r"  # locked here, right password or not
        assert login(right, source="127.0.0.2") == b"941\r"  # another kiosk is not
        now[0] = NOW + dt.timedelta(seconds=901)
        assert login(right) == b"941\r"
        assert login(guess) == b"940\r"  # a success started the count again
        assert login(right) == b"941\r"
    session.rollback()
    keys = set(session.scalars(select(LoginThrottle.key)))
    assert keys == {"sip2-addr:127.0.0.1"}  # the login's count went with its success


def test_a_stalled_half_message_is_closed_and_others_go_on(
    engine: Engine, session: Session
) -> None:
    _world(session)
    with sip2_server(engine, limits=Limits(idle_timeout_s=1.0)) as running:
        stalled = Wire(running.port)
        other = Wire(running.port)
        try:
            stalled.send(b"9300CNkiosk")  # half a message, then nothing
            assert other.ask(LOGIN + b"\r") == b"941\r"
            time.sleep(0.6)
            assert _online(other)  # kept alive by talking
            time.sleep(0.7)
            assert stalled.closed()  # gone after a second without its carriage return
            assert _online(other)
        finally:
            stalled.close()
            other.close()


def test_an_overlong_frame_closes_the_connection(engine: Engine, session: Session) -> None:
    _world(session)
    with sip2_server(engine, limits=Limits(max_message=1024, idle_timeout_s=5)) as running:
        wire = Wire(running.port)
        try:
            wire.send(b"23" + b"x" * 5000)
            assert wire.closed()
        finally:
            wire.close()
        fresh = Wire(running.port)
        try:
            assert fresh.ask(LOGIN + b"\r") == b"941\r"
        finally:
            fresh.close()


def test_connections_beyond_the_limit_are_turned_away(engine: Engine, session: Session) -> None:
    _world(session)
    with sip2_server(engine, limits=Limits(max_connections=2, idle_timeout_s=5)) as running:
        first, second = Wire(running.port), Wire(running.port)
        try:
            assert first.ask(LOGIN + b"\r") == b"941\r"
            assert second.ask(LOGIN + b"\r") == b"941\r"
            third = Wire(running.port)
            assert third.closed()
            third.close()
            assert _online(first)
        finally:
            first.close()
            second.close()


def test_garbage_gets_no_answer_and_breaks_nothing(engine: Engine, session: Session) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the fuzzing is about the socket, not the database")
    _world(session)
    with sip2_server(engine, limits=Limits(idle_timeout_s=5)) as running:
        watcher = Wire(running.port)
        watcher.ask(LOGIN + b"\r")

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=6))
        def fuzz(packets: list[bytes]) -> None:
            wire = Wire(running.port, timeout=5)
            try:
                wire.ask(LOGIN + b"\r")
                for p in packets:
                    wire.send(p)
                # Whatever came before, a well-formed message on a new line is answered.
                wire.send(b"\r")
                wire.buffer = b""
                wire.sock.settimeout(0.2)
                try:
                    while wire.sock.recv(65536):
                        pass
                except TimeoutError:
                    pass
                wire.sock.settimeout(5)
                assert _online(wire)
            except ConnectionError:
                pass  # closed: an overlong frame, which is allowed
            finally:
                wire.close()
            assert _online(watcher)  # the other connection never noticed

        fuzz()
        watcher.close()


def test_kiosks_racing_for_one_copy_lend_it_once(engine: Engine, session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    factories.copies(session, w, "Wanted", ["RACE-1"])
    kiosk_account(session, w)
    card_numbers = [factories.reader(session, w.central, 10 + n).card_number for n in range(8)]
    session.commit()
    session.rollback()
    with sip2_server(engine, limits=Limits(idle_timeout_s=10, workers=8)) as running:
        wires = [Wire(running.port, timeout=30) for _ in card_numbers]
        for wire in wires:
            assert wire.ask(LOGIN + b"\r") == b"941\r"
        race_to_borrow(wires, card_numbers, "RACE-1")
        for wire in wires:
            wire.close()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Loan)) == 1


RESEND = "96AZFEF6\r"
# AZ fields that are no checksum: empty, not hex, too long
BAD_SUMS = ["", "|", "GGGG", "12345", "12 4", "Z"]


def test_an_empty_or_unreadable_checksum_asks_for_a_resend(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    """An AZ field that is empty or not hex digits is a corrupted message, as a wrong
    checksum is: answered with 96 and nothing is done, login included."""
    _world(session)
    with sip2_server(engine) as running:
        c = sip2_client(running.port, str(tmp_path))
        try:
            login = c.sip_login_request(KIOSK_LOGIN, KIOSK_PASSWORD)
            assert c.get_response(with_checksum(login, "")) == RESEND
            not_yet = c.get_response(c.sip_sc_status_request())
            assert _answer(not_yet.encode(), ACSStatusResponse).online_status == "N"
            logged_in = c.get_response(c.sip_login_request(KIOSK_LOGIN, KIOSK_PASSWORD))
            assert _answer(logged_in.encode(), LoginResponse).ok == "1"
            for bad in BAD_SUMS:
                assert c.get_response(with_checksum(c.sip_sc_status_request(), bad)) == RESEND
            c.patron, c.patronpwd = "CARD000001", "1357"
            checkout = c.sip_checkout_request("R-1")
            assert c.get_response(with_checksum(checkout, "")) == RESEND
            assert c.get_response(with_checksum(checkout, "XYZW")) == RESEND
            online = c.get_response(c.sip_sc_status_request())
            assert _answer(online.encode(), ACSStatusResponse).online_status == "Y"
        finally:
            c.disconnect()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Loan)) == 0


def test_an_account_that_requires_checksums_refuses_a_login_with_an_empty_one(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    _world(session, error_detection=True)
    with sip2_server(engine) as running:
        c = sip2_client(running.port, str(tmp_path))
        try:
            for bad in BAD_SUMS:
                login = c.sip_login_request(KIOSK_LOGIN, KIOSK_PASSWORD)
                assert c.get_response(with_checksum(login, bad)) == RESEND
            answer = c.get_response(c.sip_login_request(KIOSK_LOGIN, KIOSK_PASSWORD))
            assert _answer(answer.encode(), LoginResponse).ok == "1"
            assert c.get_response(with_checksum(c.sip_sc_status_request(), "")) == RESEND
        finally:
            c.disconnect()


def test_an_unknown_command_asks_for_a_resend_and_is_logged_without_its_data(
    engine: Engine, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """SIP2 2.00 has no answer for a message it does not define but 96; the machine hears
    it at once instead of waiting for its timeout, and the connection goes on."""
    _world(session)
    caplog.set_level(logging.INFO, logger="biblioverse.sip2")
    unknown = b"45N" + DATE.encode() + b"AOcentral|AACARD000001|ADsecret-pin|"
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            assert wire.ask(unknown + b"\r") == RESEND.encode()  # before login too
            assert wire.ask(LOGIN + b"\r") == b"941\r"
            assert wire.ask(unknown + b"\r") == RESEND.encode()
            assert wire.ask(_summed(unknown, 2)) == RESEND.encode()
            # a resend request is not answered with another: they would echo forever
            assert wire.ask(b"96\r" + STATUS + b"\r").startswith(b"98Y")
            assert _online(wire)
        finally:
            wire.close()
        running.flush()
    text = caplog.text
    assert "45" in text and "unsupported" in text
    assert "CARD000001" not in text and "secret-pin" not in text


ITEM = f"17{DATE}AOcentral|ABR-1|AC|\r".encode()


def _open(port: int, source: str, half: bool) -> socket.socket | None:
    """A connection that never logs in: silent, or half a login without its CR."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0))
        if half:
            sock.sendall(b"9300CNkiosk-cent")
    except OSError:
        return None
    return sock


def _gone(sock: socket.socket, wait: float = 0.5) -> bool:
    """Whether the server has closed the connection (waiting at most ``wait`` to hear)."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_connections_not_logged_in_are_limited_per_address_and_in_time(
    engine: Engine, session: Session
) -> None:
    _world(session)
    limits = Limits(max_per_address=4, login_timeout_s=1.0, idle_timeout_s=30)
    with sip2_server(engine, limits=limits) as running:
        waiting = [_open(running.port, "127.0.0.5", half=n % 2 == 1) for n in range(4)]
        assert all(s is not None and not _gone(s, 0.05) for s in waiting)
        extra = _open(running.port, "127.0.0.5", half=False)
        assert extra is not None and _gone(extra)  # a fifth from that address is refused
        elsewhere = Wire(running.port, source="127.0.0.6")  # another address is not
        kiosk: Wire | None = None
        try:
            assert _online(elsewhere) is False  # answered, not logged in
            time.sleep(1.3)
            # a second without a login: the four are closed, and the other one too
            assert all(s is not None and _gone(s) for s in waiting)
            assert elsewhere.closed()
            kiosk = Wire(running.port, source="127.0.0.5")
            assert kiosk.ask(LOGIN + b"\r") == b"941\r"
            time.sleep(1.3)
            assert _online(kiosk)  # logged in: only the idle timeout applies
            # logged in, it no longer counts among the address's waiting connections
            more = [_open(running.port, "127.0.0.5", half=False) for _ in range(4)]
            assert all(s is not None and not _gone(s, 0.05) for s in more)
            for s in more:
                assert s is not None
                s.close()
        finally:
            for s in [*waiting, extra]:
                if s is not None:
                    s.close()
            elsewhere.close()
            if kiosk is not None:
                kiosk.close()


@pytest.mark.timeout(90)
def test_a_flood_of_idle_and_half_open_connections_does_not_lock_kiosks_out(
    engine: Engine, session: Session
) -> None:
    """Hundreds of connections that never log in, silent or stalled in half a message, from
    the kiosk's own address and from twenty others, more than the server takes at once: a
    kiosk logged in before is answered as quickly as ever, one that logs in meanwhile from
    another address is served, and once the flood stops its connections are gone."""
    _world(session)
    limits = Limits(max_connections=64, max_per_address=16, login_timeout_s=2.0, idle_timeout_s=60)
    sources = ["127.0.0.1"] + [f"127.0.0.{n}" for n in range(3, 23)]
    with sip2_server(engine, limits=limits) as running:
        kiosk = Wire(running.port)
        late: Wire | None = None
        opened: list[socket.socket] = []
        stop, full = threading.Event(), threading.Event()

        def flood() -> None:
            n = 0
            while not stop.is_set():
                sock = _open(running.port, sources[n % len(sources)], half=n % 2 == 1)
                if sock is not None:
                    opened.append(sock)
                n += 1
                if n >= 300:
                    full.set()
                while len(opened) > 600:
                    opened.pop(0).close()

        try:
            assert kiosk.ask(LOGIN + b"\r") == b"941\r"
            usual = []
            for _ in range(20):
                began = time.monotonic()
                assert _answer(kiosk.ask(ITEM), ItemInformationResponse).circulation_status == "03"
                usual.append(time.monotonic() - began)
            flooding = threading.Thread(target=flood, name="flood", daemon=True)
            flooding.start()
            assert full.wait(30)
            assert running.server.connections >= limits.max_connections - 2
            late = Wire(running.port, source="127.0.0.2", timeout=5)
            assert late.ask(LOGIN + b"\r") == b"941\r"
            slowest = 0.0
            until = time.monotonic() + 3.0
            while time.monotonic() < until:
                for wire in (kiosk, late):
                    began = time.monotonic()
                    answer = _answer(wire.ask(ITEM), ItemInformationResponse)
                    assert answer.circulation_status == "03"
                    slowest = max(slowest, time.monotonic() - began)
            stop.set()
            flooding.join(30)
            assert slowest < max(1.0, 20 * max(usual))
            time.sleep(limits.login_timeout_s + 1.0)
            assert running.server.connections == 2  # the flood's are closed, the kiosks' not
            assert _online(kiosk) and _online(late)
        finally:
            stop.set()
            for sock in opened:
                sock.close()
            kiosk.close()
            if late is not None:
                late.close()


def test_the_connection_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from biblioverse.cli import _sip2_limits
    from biblioverse.settings import Settings, load_settings

    monkeypatch.setenv("BIBLIOVERSE_SIP2_LOGIN_TIMEOUT_S", "4")
    monkeypatch.setenv("BIBLIOVERSE_SIP2_MAX_PER_ADDRESS", "3")
    limits = _sip2_limits(load_settings(), max_connections=9)
    assert (limits.login_timeout_s, limits.max_per_address, limits.max_connections) == (4, 3, 9)
    defaults = Settings.model_fields  # the server's own defaults are the settings'
    assert (Limits().login_timeout_s, Limits().max_per_address) == (
        defaults["sip2_login_timeout_s"].default,
        defaults["sip2_max_per_address"].default,
    )


@pytest.mark.timeout(60)
def test_logins_waiting_on_their_check_leave_a_thread_to_the_logged_in(
    engine: Engine, session: Session
) -> None:
    """Logins (an argon2 check each) take at most all but one of the server's threads:
    machines guessing passwords cannot hold up the messages of those logged in."""
    _world(session)
    with sip2_server(engine, limits=Limits(workers=3, idle_timeout_s=30)) as running:
        kiosk = Wire(running.port)
        guessing: list[Wire] = []
        release = threading.Event()
        busy = [0, 0]  # now, most at once
        lock = threading.Lock()
        try:
            assert kiosk.ask(LOGIN + b"\r") == b"941\r"
            real = running.server._login

            def slow(link: object, request: object, host: str) -> object:
                with lock:
                    busy[0] += 1
                    busy[1] = max(busy)
                release.wait(20)
                with lock:
                    busy[0] -= 1
                return real(link, request, host=host)  # type: ignore[arg-type]

            running.server._login = slow  # type: ignore[assignment,method-assign]
            for n in range(5):
                wire = Wire(running.port, source=f"127.0.0.{10 + n}", timeout=20)
                wire.send(f"9300CN{KIOSK_LOGIN}|COguess|\r".encode())
                guessing.append(wire)
            time.sleep(0.5)
            began = time.monotonic()
            assert _answer(kiosk.ask(ITEM), ItemInformationResponse).circulation_status == "03"
            assert time.monotonic() - began < 1.0
            assert busy[1] == 2
            release.set()
            assert all(w.reply() == b"940\r" for w in guessing)
        finally:
            release.set()
            kiosk.close()
            for wire in guessing:
                wire.close()
