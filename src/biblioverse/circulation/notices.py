"""Notices to readers: loans due soon, overdue loans, holds ready to collect, copies sent
back by courier that reached the library.

They are written in the same transaction as what caused them (a hold set aside) or by the
daily job (due soon, overdue), once each (a unique key), shown in the reader's account, and
e-mailed in the reader's language by :func:`send_pending` when an SMTP server is configured;
otherwise they stay in the table, the outbox a mail relay can pick up later.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import catalog, i18n, libraries, readers
from biblioverse.circulation import fees
from biblioverse.circulation.models import CourierLoan, Hold, Loan, Notice
from biblioverse.i18n import N_

DUE_SOON = dt.timedelta(days=2)

SUBJECTS = {
    "due_soon": N_("Due soon: %(title)s"),
    "overdue": N_("Overdue: %(title)s"),
    "hold_ready": N_("Ready to collect: %(title)s"),
    "arrived": N_("Received: %(title)s"),
}
BODIES = {
    "due_soon": N_("%(title)s is due %(when)s. Renew it in your account or bring it back."),
    "overdue": N_("%(title)s was due %(when)s. Please bring it back to any member library."),
    "hold_ready": N_("%(title)s waits for you at %(library)s until %(when)s."),
    "arrived": N_("%(title)s, sent back by courier, reached %(library)s on %(when)s."),
}


def _add(session: Session, **values: object) -> bool:
    """Add a notice unless one with its key exists (True if added)."""
    key = str(values["key"])
    if session.scalar(select(Notice.id).where(Notice.key == key)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(Notice(**values))
    except IntegrityError:  # written meanwhile by a concurrent job
        return False
    return True


def hold_ready(session: Session, hold: Hold, title: str, at: dt.datetime) -> None:
    _add(
        session,
        reader_id=hold.reader_id,
        kind="hold_ready",
        key=f"hold_ready:{hold.id}",
        title=title[:500],
        at=hold.expires_at,
        unit_id=hold.pickup_unit_id,
        created_at=at,
    )


def arrived(
    session: Session, reader_id: int, transit_id: int, title: str, unit_id: int, at: dt.datetime
) -> None:
    """A copy the reader sent back by courier has reached a library."""
    _add(
        session,
        reader_id=reader_id,
        kind="arrived",
        key=f"arrived:{transit_id}",
        title=title[:500],
        at=at,
        unit_id=unit_id,
        created_at=at,
    )


def daily(session: Session, at: dt.datetime) -> int:
    """Notices of loans due within two days and of loans overdue (once per due date)."""
    added = 0
    rows = session.execute(
        select(Loan, catalog.Record.title)
        .join(catalog.Item, catalog.Item.id == Loan.item_id)
        .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
        .where(
            Loan.status == "open",
            Loan.reader_id.is_not(None),
            Loan.due_at < at + DUE_SOON,
            Loan.id.not_in(fees.booked_for_courier_query().with_only_columns(CourierLoan.loan_id)),
        )
        .order_by(Loan.id)
    )
    for loan, title in rows:
        kind = "overdue" if loan.due_at < at else "due_soon"
        added += _add(
            session,
            reader_id=loan.reader_id,
            kind=kind,
            key=f"{kind}:{loan.id}:{loan.due_at.date().isoformat()}",
            title=title[:500],
            at=loan.due_at,
            unit_id=loan.org_unit_id,
            created_at=at,
        )
    return added


@dataclass
class Words:
    subject: str
    body: str


def words(notice: Notice, units: dict[int, libraries.UnitName], tz: str) -> Words:
    """The notice in the current locale."""
    values = {
        "title": notice.title,
        "when": i18n.format_datetime(notice.at, tz, "short") if notice.at else "",
        "library": units[notice.unit_id].name(i18n.get_locale()) if notice.unit_id else "",
    }
    return Words(
        i18n.gettext(SUBJECTS[notice.kind]) % values, i18n.gettext(BODIES[notice.kind]) % values
    )


def recent(session: Session, reader_id: int, limit: int = 10) -> list[Notice]:
    return list(
        session.scalars(
            select(Notice)
            .where(Notice.reader_id == reader_id)
            .order_by(Notice.created_at.desc(), Notice.id.desc())
            .limit(limit)
        )
    )


def smtp_sender(url: str, sender: str) -> Callable[[EmailMessage], None]:
    """Sends through ``smtp://[user:password@]host[:port]`` (``smtps://`` for TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"not an smtp:// or smtps:// URL: {url!r}")

    def send(message: EmailMessage) -> None:
        message["From"] = sender
        kind = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
        with kind(
            parts.hostname or "", parts.port or (465 if parts.scheme == "smtps" else 25), timeout=30
        ) as smtp:
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)

    return send


def send_pending(
    session: Session, send: Callable[[EmailMessage], None], at: dt.datetime, limit: int = 500
) -> int:
    """E-mail unsent notices to readers who have an address, each in the reader's language.
    A notice is marked sent only after the server took it; one that fails stays for the
    next run."""
    units = libraries.unit_names(session)
    rows = session.execute(
        select(Notice, readers.Reader)
        .join(readers.Reader, readers.Reader.id == Notice.reader_id)
        .where(Notice.sent_at.is_(None), readers.Reader.email.is_not(None))
        .order_by(Notice.id)
        .limit(limit)
    ).all()
    sent = 0
    before = i18n.get_locale()
    try:
        for notice, reader in rows:
            i18n.set_locale(reader.preferred_locale or "zh_Hans")
            text = words(
                notice,
                units,
                libraries.get_unit(session, notice.unit_id or reader.home_library_id).timezone,
            )
            message = EmailMessage()
            message["To"] = reader.email
            message["Subject"] = text.subject
            message.set_content(text.body)
            send(message)
            notice.sent_at = at
            sent += 1
    finally:
        i18n.set_locale(before)
    return sent
