"""A kiosk session over a real TCP socket, driven by a SIP2 client we did not write (the PyPI
``sip2`` package), every answer checked with pysip2's strict codec; then what the console
sees of the device, and the answers a return sorter and an RFID pad rely on."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pysip2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from Sip2.sip2 import Sip2
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from biblioverse import catalog, circulation, readers, sip2
from biblioverse.accounts import LoginThrottle, ThrottlePolicy
from biblioverse.circulation.models import Fee, Loan
from biblioverse.deps import get_now
from biblioverse.security import hash_secret, verify_secret
from biblioverse.sip2 import Traffic, acs
from tests import factories
from tests.factories import NOW, READER_PW, World
from tests.integration.sip2_support import (
    KIOSK_LOGIN,
    KIOSK_PASSWORD,
    Wire,
    kiosk_account,
    sip2_server,
)

M = TypeVar("M", bound=pysip2.SIPMessage)


def _strict(raw: str, kind: type[M]) -> M:
    """pysip2 refuses anything that is not SIP2 2.00 to the letter, or not the answer asked for."""
    return pysip2.decode_as(raw.encode("utf-8"), kind, encoding="utf-8").message


def _client(port: int, tmp_path: Path) -> Sip2:
    c = Sip2()
    c.hostName, c.hostPort = "127.0.0.1", port
    c.tlsEnable = False
    c.socketTimeout = 10
    c.logfile_path = str(tmp_path)  # the client writes its own log file
    c.hostEncoding = "utf-8"
    c.institutionId = "central"
    c.scLocation = "Ground floor, entrance"
    c.connect()
    return c


def _setup(session: Session) -> tuple[World, int]:
    w = factories.world(session)
    factories.rule(session, w)
    factories.copies(session, w, "The Gardens of Suzhou", ["SIP-1", "SIP-2"])
    factories.copies(session, w, "Rivers of China", ["SIP-3"], library=w.airport)
    kiosk_account(session, w)
    session.add(
        Fee(
            reader_id=w.reader_central.id,
            org_unit_id=w.central.id,
            kind="manual",
            amount=Decimal("2.50"),
            paid=Decimal("0"),
            waived=Decimal("0"),
            note="damaged barcode label",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    session.commit()
    reader_id = w.reader_central.id
    session.rollback()  # let go of SQLite before the server's threads write
    return w, reader_id


def test_a_full_kiosk_session_with_a_client_we_did_not_write(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    w, reader_id = _setup(session)
    with sip2_server(engine) as running:
        c = _client(running.port, tmp_path)
        try:
            login = c.sip_login_response(
                c.get_response(c.sip_login_request(KIOSK_LOGIN, KIOSK_PASSWORD))
            )
            assert login["fixed"]["Ok"] == "1"
            _strict(c.last_response, pysip2.LoginResponse)

            status = c.sip_sc_status_response(c.get_response(c.sip_sc_status_request()))
            assert status["fixed"]["OnlineStatus"] == "Y"
            acs = _strict(c.last_response, pysip2.ACSStatusResponse)
            assert acs.supported_messages == "Y" * 16
            assert acs.institution_id == "central"
            assert acs.checkout_ok == "Y" and acs.checkin_ok == "Y"

            c.patron, c.patronpwd = "CARD000001", "1357"
            info = c.sip_patron_information_response(
                c.get_response(c.sip_patron_information_request("fine"))
            )
            decoded = _strict(c.last_response, pysip2.PatronInformationResponse)
            assert decoded.personal_name == "Reader 1"
            assert decoded.valid_patron == "Y" and decoded.valid_patron_password == "Y"
            assert decoded.fee_amount == "2.50" and decoded.currency_type == "CNY"
            assert decoded.fine_items_count == "0001"
            assert len(decoded.fine_items) == 1 and "2.50" in decoded.fine_items[0]
            assert info["fixed"]["PatronStatus"].strip() == ""  # nothing denied

            out = c.sip_checkout_response(c.get_response(c.sip_checkout_request("SIP-1")))
            assert out["fixed"]["Ok"] == "1"
            checkout = _strict(c.last_response, pysip2.CheckoutResponse)
            assert checkout.desensitize == "Y"  # RFID: security off as the copy leaves
            assert checkout.title_identifier == "The Gardens of Suzhou"
            first_due = checkout.due_date
            assert first_due.startswith("202612")  # 28 days on, in the library's time

            renewed = c.sip_renew_response(
                c.get_response(c.sip_renew_request(itemIdentifier="SIP-1"))
            )
            assert renewed["fixed"]["Ok"] == "1"
            assert _strict(c.last_response, pysip2.RenewResponse).renewal_ok == "Y"

            back = c.sip_checkin_response(c.get_response(c.sip_checkin_request("SIP-1")))
            assert back["fixed"]["Ok"] == "1"
            checkin = _strict(c.last_response, pysip2.CheckinResponse)
            assert checkin.resensitize == "Y"  # security back on
            assert checkin.alert == "N" and checkin.sort_bin == "SHELVE"
            assert checkin.permanent_location == "central"

            paid = c.sip_fee_paid_response(
                c.get_response(c.sip_fee_paid_request(1, 0, "2.50", currencyType="CNY"))
            )
            assert paid["fixed"]["PaymentAccepted"] == "Y"
            _strict(c.last_response, pysip2.FeePaidResponse)

            end = c.sip_end_patron_session_response(
                c.get_response(c.sip_end_patron_session_request())
            )
            assert end["fixed"]["EndSession"] == "Y"
            _strict(c.last_response, pysip2.EndSessionResponse)
        finally:
            c.disconnect()
        running.flush()

    # What the library sees afterwards: one loan made at the kiosk, renewed and returned;
    # the fee paid; the device seen, its messages counted and logged with secrets masked.
    loan = session.scalar(select(Loan).where(Loan.reader_id == reader_id))
    assert loan is not None and loan.channel == "kiosk" and loan.renewals == 1
    assert loan.returned_at is not None
    assert circulation.fees.balance(session, reader_id) == Decimal("0.00")
    line = sip2.sip2_accounts(session, w.actor(session, w.admin))[0]
    assert line.account.messages == 8 and line.account.errors == 0
    assert line.device.last_seen_at is not None
    log = sip2.log_of(session, w.actor(session, w.admin), line.account.id)
    text = "\n".join(x.text for x in log)
    assert "1357" not in text and KIOSK_PASSWORD not in text and "Reader 1" not in text
    assert "reader1@example.org" not in text and "CARD000001" not in text
    assert "AD****" in text and "AA…0001" in text


def test_refusals_reach_the_kiosk_screen_in_the_reader_language(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    _w, reader_id = _setup(session)
    item = catalog.item_for_update(session, barcode="SIP-2")
    item.circulates = False
    session.commit()
    session.rollback()
    with sip2_server(engine) as running:
        c = _client(running.port, tmp_path)
        try:
            c.get_response(c.sip_login_request(KIOSK_LOGIN, KIOSK_PASSWORD))
            c.patron, c.patronpwd = "CARD000001", "1357"
            c.language = "019"  # Chinese, said with the patron status
            c.get_response(c.sip_patron_status_request())
            c.get_response(c.sip_checkout_request("SIP-2"))
            refused = _strict(c.last_response, pysip2.CheckoutResponse)
            assert refused.ok == "0" and refused.desensitize == "N"
            assert refused.screen_message == ("该复本不外借。",)

            c.language = "001"
            c.patronpwd = "0000"
            c.get_response(c.sip_patron_status_request())
            status = _strict(c.last_response, pysip2.PatronStatusResponse)
            assert status.valid_patron == "Y" and status.valid_patron_password == "N"
            assert status.personal_name == ""  # a wrong PIN learns nothing about the card
            assert status.screen_message == ("The PIN does not match this card.",)
            c.get_response(c.sip_checkout_request("SIP-1"))  # and borrows nothing
            assert _strict(c.last_response, pysip2.CheckoutResponse).ok == "0"

            c.patron = "NO-SUCH-CARD"
            c.get_response(c.sip_patron_status_request())
            unknown = _strict(c.last_response, pysip2.PatronStatusResponse)
            assert unknown.valid_patron == "N"
            assert unknown.patron_status[:4] == "YYYY"
        finally:
            c.disconnect()
    assert session.scalar(select(Loan).where(Loan.reader_id == reader_id)) is None


def _stamp(when: dt.datetime, zone: str) -> float:
    """The Unix time the sip2 client writes (in the machine's local time, with a blank zone)
    as ``when`` on the wall clock of the library's zone."""
    return when.astimezone(ZoneInfo(zone)).replace(tzinfo=None).timestamp()


def test_a_kiosk_return_is_never_before_its_loan_nor_in_the_future(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    """A kiosk that went offline sends each return with the date it took the copy in: that
    date is believed, but a return dated before its loan began ends the loan when it began
    (a wrong clock, or a replay; the copy is back either way), and one in the future now."""
    w, _reader_id = _setup(session)
    desk = w.actor(session, w.central_librarian)
    lent = NOW - dt.timedelta(days=5)
    for barcode in ("SIP-1", "SIP-2", "SIP-3"):
        factories.lend(session, desk, w.reader_central, barcode, w.central, at=lent)
    session.commit()
    session.rollback()
    zone = w.central.timezone
    dates = {
        "SIP-1": NOW - dt.timedelta(days=8),  # before the loan began
        "SIP-2": NOW - dt.timedelta(days=2),  # during the loan: offline
        "SIP-3": NOW + dt.timedelta(days=3),  # in the future
    }
    with sip2_server(engine) as running:
        c = _client(running.port, tmp_path)
        try:
            c.get_response(c.sip_login_request(KIOSK_LOGIN, KIOSK_PASSWORD))
            for barcode, when in dates.items():
                c.get_response(c.sip_checkin_request(barcode, returnDate=_stamp(when, zone)))
                assert _strict(c.last_response, pysip2.CheckinResponse).ok == "1"
        finally:
            c.disconnect()
    session.rollback()
    returned = {
        item.barcode: loan.returned_at
        for loan, item in session.execute(
            select(Loan, catalog.Item).join(catalog.Item, catalog.Item.id == Loan.item_id)
        )
    }
    assert returned == {"SIP-1": lent, "SIP-2": NOW - dt.timedelta(days=2), "SIP-3": NOW}
    assert session.scalar(select(func.count()).select_from(Fee).where(Fee.kind != "manual")) == 0


def test_a_return_sorter_is_told_where_each_copy_goes(engine: Engine, session: Session) -> None:
    """At the central library: a copy owned by the airport branch goes home in transit; a copy
    another reader holds goes to the hold shelf; an unknown tag goes to the exception bin."""
    w, _reader_id = _setup(session)
    desk = w.actor(session, w.central_librarian)
    factories.lend(session, desk, w.reader_central, "SIP-3", w.central)
    factories.lend(session, desk, w.reader_central, "SIP-1", w.central)
    record_id = catalog.item_for_update(session, barcode="SIP-1").record_id
    circulation.holds.place(
        session,
        None,
        reader_id=w.reader_community.id,
        record_id=record_id,
        item_id=None,
        pickup_unit_id=w.central.id,
        at=NOW,
    )
    session.commit()
    session.rollback()
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            assert (
                wire.ask(f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPsorter|\r".encode()) == b"941\r"
            )
            date = "20261118    140000"
            raw = wire.ask(f"09N{date}{date}APsorter|AOcentral|ABSIP-3|AC|\r".encode())
            home = pysip2.decode_as(raw, pysip2.CheckinResponse, encoding="utf-8").message
            assert (home.ok, home.resensitize, home.alert, home.sort_bin) == (
                "1",
                "Y",
                "Y",
                "TRANSIT",
            )
            assert home.permanent_location == "airport"
            assert b"|CV04|" in raw and b"|CTairport|" in raw  # send to the airport branch
            raw = wire.ask(f"09N{date}{date}APsorter|AOcentral|ABSIP-1|AC|\r".encode())
            held = pysip2.decode_as(raw, pysip2.CheckinResponse, encoding="utf-8").message
            assert (held.ok, held.alert, held.sort_bin) == ("1", "Y", "HOLD")
            assert b"|CV01|" in raw and b"|CT" not in raw  # the hold shelf here
            stranger = pysip2.decode_as(
                wire.ask(f"09N{date}{date}APsorter|AOcentral|ABE200-FOREIGN|AC|\r".encode()),
                pysip2.CheckinResponse,
                encoding="utf-8",
            ).message
            assert (stranger.ok, stranger.resensitize, stranger.sort_bin) == ("0", "N", "CHECK")
        finally:
            wire.close()
    hold = session.scalars(select(circulation.Hold)).one()
    assert hold.status == circulation.HoldState.READY.value


def test_an_rfid_pad_reads_and_writes_item_information(engine: Engine, session: Session) -> None:
    w, _ = _setup(session)
    kiosk_account(session, w, login="pad-airport", org_unit_id=w.airport.id, kind="pad")
    session.commit()
    session.rollback()
    date = "20261118    140000"
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            wire.ask(f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|\r".encode())
            updated = wire.ask(f"19{date}AOcentral|ABSIP-1|AC|CHtag locked|\r".encode())
            written = pysip2.decode_as(updated, pysip2.ItemStatusUpdateResponse, encoding="utf-8")
            assert written.message.item_properties_ok == "1"
            info = pysip2.decode_as(
                wire.ask(f"17{date}AOcentral|ABSIP-1|AC|\r".encode()),
                pysip2.ItemInformationResponse,
                encoding="utf-8",
            ).message
            assert info.circulation_status == "03"  # available
            assert info.item_properties == "tag locked"
            assert info.title_identifier == "The Gardens of Suzhou"
            assert info.owner == "central"
        finally:
            wire.close()
        # A pad of the airport branch may read the central library's copy, not write it.
        pad = Wire(running.port)
        try:
            pad.ask(f"9300CNpad-airport|CO{KIOSK_PASSWORD}|\r".encode())
            refused = pad.ask(f"19{date}AOairport|ABSIP-1|AC|CHmine now|\r".encode())
            written = pysip2.decode_as(refused, pysip2.ItemStatusUpdateResponse, encoding="utf-8")
            assert written.message.item_properties_ok == "0"
            info = pysip2.decode_as(
                pad.ask(f"17{date}AOairport|ABSIP-1|AC|\r".encode()),
                pysip2.ItemInformationResponse,
                encoding="utf-8",
            ).message
            assert info.item_properties == "tag locked"
        finally:
            pad.close()


def test_holds_renew_all_and_blocks_from_a_kiosk(engine: Engine, session: Session) -> None:
    w, _reader_id = _setup(session)
    factories.lend(session, None, w.reader_central, "SIP-1", w.central)
    factories.lend(session, None, w.reader_central, "SIP-2", w.central)
    session.commit()
    session.rollback()
    date = "20261118    140000"
    card = "AACARD000001|AD1357|"
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            wire.ask(f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|\r".encode())

            def ask(text: str, kind: type[M]) -> M:
                answer = wire.ask(text.encode() + b"\r")
                return pysip2.decode_as(answer, kind, encoding="utf-8").message

            renewed = ask(f"65{date}AOcentral|{card}", pysip2.RenewAllResponse)
            assert (renewed.ok, renewed.renewed_count, renewed.unrenewed_count) == (
                "1",
                "0002",
                "0000",
            )
            assert set(renewed.renewed_items) == {"SIP-1", "SIP-2"}

            # The other reader asks for the airport's title, to collect at the airport.
            other = "AACARD000002|AD1357|"
            placed = ask(f"15+{date}BSairport|AOcentral|{other}ABSIP-3|", pysip2.HoldResponse)
            assert placed.ok == "1" and placed.queue_position == "1"
            assert placed.pickup_location == "airport"
            again = ask(f"15+{date}AOcentral|{other}ABSIP-3|", pysip2.HoldResponse)
            assert again.ok == "0" and again.screen_message == (
                "You already have a hold on this title.",
            )
            cancelled = ask(f"15-{date}AOcentral|{other}ABSIP-3|", pysip2.HoldResponse)
            assert cancelled.ok == "1"
            assert ask(f"15-{date}AOcentral|{other}ABSIP-3|", pysip2.HoldResponse).ok == "0"

            blocked = ask(
                f"01N{date}AOcentral|ALcard reported stolen|AACARD000002|AC|",
                pysip2.PatronStatusResponse,
            )
            assert blocked.patron_status[:4] == "YYYY"
            refused = ask(
                f"11NN{date}{' ' * 18}AOcentral|{other}ABSIP-3|AC|", pysip2.CheckoutResponse
            )
            assert refused.ok == "0" and refused.screen_message == ("Your card is blocked.",)
            enabled = ask(f"25{date}AOcentral|{other}", pysip2.PatronEnableResponse)
            assert enabled.patron_status.strip() == ""
        finally:
            wire.close()
    session.rollback()
    assert session.scalar(select(circulation.Hold.status)) == "cancelled"
    reader = session.get(readers.Reader, w.reader_community.id)
    assert reader is not None and reader.status == "active"


def test_device_log_keeps_the_newest_lines_of_each_account(session: Session) -> None:
    """What the server flushes every second: counts add up, the last error and address stay
    until replaced, and each account keeps its newest LOG_KEPT lines, not a line more."""
    w = factories.world(session)
    first = kiosk_account(session, w)
    second = kiosk_account(session, w, login="kiosk-second", name="Second kiosk")
    first_id, second_id = first.id, second.id
    kept = sip2.service.LOG_KEPT

    def lines(tag: str, n: int) -> list[tuple[dt.datetime, str, str]]:
        return [(NOW + dt.timedelta(seconds=i), "in", f"{tag} {i}") for i in range(n)]

    sip2.record_traffic(
        session,
        {
            first_id: Traffic(
                messages=kept,
                errors=1,
                last_error="bad checksum",
                last_seen=NOW,
                address="10.0.0.7:51000",
                lines=lines("a", kept),
            ),
            second_id: Traffic(messages=3, lines=lines("b", 3)),
        },
    )
    sip2.record_traffic(
        session,
        {
            first_id: Traffic(
                messages=5, last_seen=NOW + dt.timedelta(minutes=1), lines=lines("c", 5)
            )
        },
    )
    session.commit()

    def texts(account_id: int) -> list[str]:
        return [
            line.text
            for line in sip2.log_of(session, w.actor(session, w.admin), account_id, limit=1000)
        ]

    shown = texts(first_id)
    assert len(shown) == kept
    assert shown[:5] == ["c 4", "c 3", "c 2", "c 1", "c 0"] and shown[-1] == "a 5"
    assert texts(second_id) == ["b 2", "b 1", "b 0"]
    one = session.get(sip2.Sip2Account, first_id)
    assert one is not None
    session.refresh(one)
    assert (one.messages, one.errors) == (kept + 5, 1)
    assert one.last_error == "bad checksum" and one.last_address == "10.0.0.7:51000"
    two = session.get(sip2.Sip2Account, second_id)
    assert two is not None
    session.refresh(two)
    assert (two.messages, two.errors, two.last_error) == (3, 0, None)


def test_a_kiosk_loan_and_return_read_the_copy_once_and_need_no_savepoint(
    engine: Engine, session: Session
) -> None:
    """The copy a kiosk lends or takes back is read once, its row locked, and the services
    do not read it again; a loan or a return that is not refused needs no savepoint. A
    refused return rolls back and still answers with the copy's details."""
    w, _reader_id = _setup(session)
    card = w.reader_central.card_number
    session.rollback()
    sent: list[str] = []

    def listen(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        sent.append(" ".join(statement.split()))

    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            assert wire.ask(f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPk|\r".encode()) == b"941\r"
            date = "20261118    140000"
            running.flush()
            event.listen(engine, "before_cursor_execute", listen)
            try:
                lent = wire.ask(f"11NN{date}{' ' * 18}AOcentral|AA{card}|ABSIP-1|AC|\r".encode())
                back = wire.ask(f"09N{date}{date}APk|AOcentral|ABSIP-1|AC|\r".encode())
            finally:
                event.remove(engine, "before_cursor_execute", listen)
            again = wire.ask(f"09N{date}{date}APk|AOcentral|ABSIP-1|AC|\r".encode())
        finally:
            wire.close()
    assert lent.startswith(b"121") and back.startswith(b"101")
    copy_reads = [s for s in sent if s.startswith("SELECT items.id")]
    assert len(copy_reads) == 2, copy_reads  # one for the loan, one for the return
    assert not [s for s in sent if s.startswith(("SAVEPOINT", "RELEASE"))]
    refused = pysip2.decode_as(again, pysip2.CheckinResponse, encoding="utf-8").message
    assert refused.ok == "0"
    # the copy's owner and title, though the refusal rolled the transaction back
    assert b"|AQcentral|" in again and b"|AJThe Gardens of Suzhou|" in again
    assert session.scalars(select(Loan).where(Loan.returned_at.is_(None))).all() == []


def _others_may_write(engine: Engine) -> bool:
    """Whether another connection could take SQLite's write lock now (always on PostgreSQL,
    whose writers do not shut each other out)."""
    if engine.dialect.name != "sqlite":
        return True
    other = sqlite3.connect(str(engine.url.database), timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        return True
    except sqlite3.OperationalError:  # database is locked
        return False
    finally:
        other.close()


def test_a_pin_is_checked_before_the_transaction_so_others_may_write_meanwhile(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 takes tens of milliseconds: a kiosk's PIN is checked on a snapshot before the
    message's transaction begins. On SQLite that transaction holds the database's write
    lock from its first statement: checked inside it, every other kiosk and desk waited.
    A right PIN is remembered for the connection; a wrong one is refused."""
    w, _reader_id = _setup(session)
    card = w.reader_central.card_number
    session.rollback()
    checks: list[tuple[str, bool]] = []  # (PIN, could another connection write meanwhile)
    real_verify = verify_secret

    def verify(stored: str | None, pin: str) -> bool:
        free = _others_may_write(engine)
        checks.append((pin, free))
        return real_verify(stored, pin)

    monkeypatch.setattr(acs, "verify_secret", verify)
    date = "20261118    140000"
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            assert wire.ask(f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPk|\r".encode()) == b"941\r"
            answers = [
                wire.ask(f"23001{date}AOcentral|AA{card}|AC|AD{pin}|\r".encode())
                for pin in ("0000", "1357", "1357")
            ]
        finally:
            wire.close()
    assert [b"|CQN|" in a for a in answers] == [True, False, False]
    assert [b"|CQY|" in a for a in answers] == [False, True, True]
    assert checks == [("0000", True), ("1357", True)]  # the right PIN once, then remembered


def test_a_kiosk_checking_a_new_pin_does_not_hold_up_the_others(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PIN's check (argon2, tens of milliseconds) runs beside the other kiosks' messages:
    here it goes on only once another kiosk's loan has been answered. On SQLite the server
    answers messages on its event loop's thread, and a check run there would stop it."""
    w, _reader_id = _setup(session)
    card = w.reader_central.card_number
    session.rollback()
    checking, lent_meanwhile = threading.Event(), threading.Event()
    waited: list[bool] = []
    real_verify = verify_secret

    def verify(stored: str | None, pin: str) -> bool:
        checking.set()
        waited.append(lent_meanwhile.wait(10))
        return real_verify(stored, pin)

    monkeypatch.setattr(acs, "verify_secret", verify)
    date = "20261118    140000"
    login = f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPk|\r".encode()
    answers: list[bytes] = []
    with sip2_server(engine) as running:
        pin_kiosk, other = Wire(running.port, timeout=15), Wire(running.port)
        try:
            assert pin_kiosk.ask(login) == b"941\r" and other.ask(login) == b"941\r"
            asking = threading.Thread(
                target=lambda: answers.append(
                    pin_kiosk.ask(f"23001{date}AOcentral|AA{card}|AC|AD1357|\r".encode())
                )
            )
            asking.start()
            assert checking.wait(10)
            lent = other.ask(f"11NN{date}{' ' * 18}AOcentral|AA{card}|ABSIP-1|AC|\r".encode())
            lent_meanwhile.set()
            asking.join(15)
        finally:
            pin_kiosk.close()
            other.close()
    assert lent.startswith(b"121")  # the loan, answered while the PIN was being checked
    assert waited == [True]
    assert len(answers) == 1 and b"|CQY|" in answers[0]


def test_a_login_password_is_checked_before_the_transaction_so_others_may_write_meanwhile(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kiosk's login (argon2) is checked on a snapshot first, as a PIN is: kiosks logging
    in again after a network outage do not hold SQLite's write lock in turn. A wrong
    password is still refused and counted."""
    _setup(session)
    checks: list[tuple[str, bool]] = []  # (password, could another connection write meanwhile)
    real_verify = verify_secret

    def verify(stored: str | None, password: str) -> bool:
        free = _others_may_write(engine)
        checks.append((password, free))
        return real_verify(stored, password)

    monkeypatch.setattr(sip2.service, "verify_secret", verify)
    with sip2_server(engine) as running:
        wire = Wire(running.port)
        try:
            wrong = wire.ask(f"9300CN{KIOSK_LOGIN}|COnot-the-password|CPk|\r".encode())
            right = wire.ask(f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPk|\r".encode())
        finally:
            wire.close()
    assert (wrong, right) == (b"940\r", b"941\r")
    assert checks == [("not-the-password", True), (KIOSK_PASSWORD, True)]  # once each
    session.rollback()
    # the wrong password counted against the machine; the right one cleared its own count
    counted = session.scalars(select(LoginThrottle.key)).all()
    assert counted == ["sip2-addr:127.0.0.1"]


def test_a_password_changed_after_the_first_check_is_checked_again(session: Session) -> None:
    """The check made before the transaction holds only for the hash it was made against."""
    w = factories.world(session)
    kiosk_account(session, w)
    session.commit()
    at = NOW
    checked = sip2.service.sip2_password_first(
        session, KIOSK_LOGIN, KIOSK_PASSWORD, address="10.0.0.9", at=at
    )
    assert checked.matches
    account = session.scalars(select(sip2.Sip2Account)).one()
    account.password_hash = hash_secret("a new password")
    session.flush()
    policy = ThrottlePolicy()
    login = sip2.service.sip2_login
    assert (
        login(
            session,
            KIOSK_LOGIN,
            KIOSK_PASSWORD,
            address="10.0.0.9",
            at=at,
            policy=policy,
            checked=checked,
        )
        is None
    )
    assert (
        login(
            session,
            KIOSK_LOGIN,
            "a new password",
            address="10.0.0.9",
            at=at,
            policy=policy,
            checked=checked,
        )
        is not None
    )


def test_a_pin_changed_after_the_first_check_is_checked_again() -> None:
    """The check made before the transaction holds only for the PIN it was made against,
    and only the transaction's verdict is remembered for the connection."""
    link = acs.Link()
    reader = readers.Reader(pin_hash=hash_secret("1357"))
    checked = acs.pin_first(reader, "1357")
    assert checked.matches and not link.pin_seen("CARD1", "1357")  # not remembered yet
    reader.pin_hash = hash_secret("2468")  # changed meanwhile
    assert not link.check_pin(reader, "CARD1", "1357", checked)
    assert link.check_pin(reader, "CARD1", "2468", acs.pin_first(reader, "2468"))
    assert link.pin_known("CARD1", "2468", reader.pin_hash)
    reader.pin_hash = hash_secret("1357")  # and changed again: the PIN is checked again
    assert link.pin_seen("CARD1", "2468") and not link.pin_known("CARD1", "2468", reader.pin_hash)
    assert not link.check_pin(reader, "CARD1", "2468") and not link.pin_seen("CARD1", "2468")


# --- PINs guessed, and PINs changed, while a kiosk's connection is open -------------------------

_DATE = "20261118    140000"
_KIOSK_LOGIN = f"9300CN{KIOSK_LOGIN}|CO{KIOSK_PASSWORD}|CPk|\r".encode()


def _patron_status(wire: Wire, card: str, pin: str) -> bytes:
    return wire.ask(f"23001{_DATE}AOcentral|AA{card}|AC|AD{pin}|\r".encode())


def test_wrong_pins_add_up_with_wrong_passwords_and_lock_the_reader_at_kiosks_and_on_the_web(
    engine: Engine,
    session: Session,
    client: TestClient,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader's wrong PINs at a kiosk count with their wrong passwords on the web, as one
    person's failed sign-ins. Once locked, a kiosk is told the PIN is wrong, the right one
    too, whether this connection knew it already or not, and the PIN is not even checked;
    the web refuses the right password."""
    app.dependency_overrides[get_now] = lambda: NOW
    w, _reader_id = _setup(session)
    card = w.reader_central.card_number
    checked: list[str] = []
    real_verify = verify_secret

    def verify(stored: str | None, pin: str) -> bool:
        checked.append(pin)
        return real_verify(stored, pin)

    monkeypatch.setattr(acs, "verify_secret", verify)

    def sign_in(password: str) -> int:
        body = {"kind": "reader", "login": card, "password": password}
        return int(client.post("/api/v1/auth/token", json=body).status_code)

    with sip2_server(engine) as running:
        kiosk, other = Wire(running.port), Wire(running.port)
        try:
            assert kiosk.ask(_KIOSK_LOGIN) == b"941\r" and other.ask(_KIOSK_LOGIN) == b"941\r"
            assert b"|CQY|" in _patron_status(kiosk, card, "1357")  # known to this connection
            assert [sign_in("a guess") for _ in range(2)] == [401, 401]
            assert all(b"|CQN|" in _patron_status(kiosk, card, "0000") for _ in range(3))
            checked.clear()
            known = _patron_status(kiosk, card, "1357")
            fresh = _patron_status(other, card, "1357")
        finally:
            kiosk.close()
            other.close()
    for answer in (known, fresh):
        assert b"|CQN|" in answer and b"|AFThe PIN does not match this card.|" in answer
        assert b"|AEReader 1|" not in answer
    assert checked == []  # refused without a look at the PIN: no hint whether it was right
    assert sign_in(READER_PW) == 429


def test_a_pin_changed_on_the_web_is_refused_on_a_kiosk_connection_that_knew_it(
    engine: Engine, session: Session, client: TestClient, app: FastAPI
) -> None:
    """A connection remembers a right PIN with the stored PIN it matched: once the reader
    has a new PIN, the old one is refused on that open connection too, and the new one is
    taken."""
    app.dependency_overrides[get_now] = lambda: NOW
    w, _reader_id = _setup(session)
    card = w.reader_central.card_number
    with sip2_server(engine) as running:
        kiosk = Wire(running.port)
        try:
            assert kiosk.ask(_KIOSK_LOGIN) == b"941\r"
            assert b"|CQY|" in _patron_status(kiosk, card, "1357")
            body = {"kind": "reader", "login": card, "password": READER_PW}
            token = client.post("/api/v1/auth/token", json=body).json()["access_token"]
            changed = client.patch(
                "/api/v1/readers/me",
                json={"new_pin": "2468", "current_password": READER_PW},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert changed.status_code == 200
            old, new = _patron_status(kiosk, card, "1357"), _patron_status(kiosk, card, "2468")
        finally:
            kiosk.close()
    assert b"|CQN|" in old and b"|AEReader 1|" not in old
    assert b"|CQY|" in new and b"|AEReader 1|" in new
