"""Notices to readers: written once, shown in the account, e-mailed in the reader's language
through a real SMTP server (aiosmtpd) when one is configured."""

from __future__ import annotations

import datetime as dt
import email
import socket
from collections.abc import Iterator
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from sqlalchemy.orm import Session

from biblioverse import circulation
from biblioverse.circulation import holds, notices
from tests import factories

NOW = factories.NOW
DAY = dt.timedelta(days=1)


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[email.message.EmailMessage] = []

    def handle_message(self, message: email.message.Message) -> None:
        self.received.append(email.message_from_bytes(message.as_bytes(), policy=policy.default))


@pytest.fixture()
def smtp() -> Iterator[tuple[str, Inbox]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        server.stop()


def test_notices_are_written_once_and_mailed_in_the_readers_language(
    session: Session, smtp: tuple[str, Inbox]
) -> None:
    url, inbox = smtp
    w = factories.world(session)
    circulation.save_rule(
        session, None, circulation.RuleInput(w.consortium.id, policy=circulation.Policy()), at=NOW
    )
    factories.copies(session, w, "Due soon", ["N-1"])
    (held,) = factories.copies(session, w, "Held for me", ["N-2"])
    w.reader_central.preferred_locale = "zh_Hans"
    loan = factories.lend(session, None, w.reader_central, "N-1", w.central)
    hold = holds.place(
        session,
        None,
        reader_id=w.reader_central.id,
        record_id=held.record_id,
        pickup_unit_id=w.central.id,
        at=NOW,
    )
    circulation.checkin(session, None, barcode="N-2", at_unit_id=w.central.id, at=NOW)
    assert hold.status == "ready"
    assert notices.daily(session, NOW) == 0  # nothing due yet
    assert notices.daily(session, loan.due_at - DAY) == 1
    assert notices.daily(session, loan.due_at - DAY) == 0  # once
    assert notices.daily(session, loan.due_at + DAY) == 1  # overdue, once
    kinds = [n.kind for n in notices.recent(session, w.reader_central.id)]
    assert sorted(kinds) == ["due_soon", "hold_ready", "overdue"]

    sent = notices.send_pending(session, notices.smtp_sender(url, "Library <lib@example.org>"), NOW)
    assert sent == 3 and len(inbox.received) == 3
    subjects = sorted(str(m["Subject"]) for m in inbox.received)
    assert subjects == ["可取书：Held for me", "应还提醒：Due soon", "逾期：Due soon"]
    assert all(m["To"] == "reader1@example.org" for m in inbox.received)
    ready = next(m for m in inbox.received if "Held for me" in str(m["Subject"]))
    assert ready.get_content().strip() == (
        "《Held for me》已在 central图书馆 的预约架上，为您保留至 2026年11月25日 21:00。"
    )
    assert notices.send_pending(session, notices.smtp_sender(url, "x@example.org"), NOW) == 0
    with pytest.raises(ValueError):
        notices.smtp_sender("http://example.org", "x@example.org")
