"""Where a reader's phone is, for borrowing by phone (ADR 0040): in a library, if it is on
that library's network (its Wi-Fi, named in the deployment's settings), or if it scanned one
of that library's "you are here" signs a little while ago. A sign's code is exchanged for a
ticket, signed with the app's key, that says which library and until when; the page keeps it
in the reader's session, an app sends it with the loan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from biblioverse import libraries

SALT = "biblioverse.presence"
SESSION_KEY = "here"  # the page session's ticket


@dataclass(frozen=True)
class Presence:
    """The library a phone is in; ``until``: when a scanned sign stops counting (None: on
    the library's network, for as long as it is)."""

    unit_id: int
    until: dt.datetime | None


def _signer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def scanned(
    session: Session, secret: str, unit_id: int, code: str, *, at: dt.datetime, minutes: int
) -> tuple[str, Presence] | None:
    """A ticket for a sign's code, if it is the library's code now; None if not."""
    if not libraries.is_here_code(session, unit_id, code):
        return None
    until = at + dt.timedelta(minutes=minutes)
    ticket = _signer(secret).dumps({"u": unit_id, "t": until.isoformat()})
    return ticket, Presence(unit_id, until)


def of_ticket(secret: str, ticket: str | None, *, at: dt.datetime) -> Presence | None:
    """What a ticket says, if it is ours and still counts."""
    if not ticket:
        return None
    try:
        body: Any = _signer(secret).loads(ticket)
        unit_id, until = int(body["u"]), dt.datetime.fromisoformat(body["t"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    return Presence(unit_id, until) if until > at else None


def where(
    session: Session,
    secret: str,
    *,
    ticket: str | None,
    address: str | None,
    networks: Mapping[str, Sequence[libraries.Network]],
    at: dt.datetime,
) -> Presence | None:
    """The library the phone is in: its network first (it says so as long as the phone is
    there), else a ticket that still counts."""
    on_network = libraries.library_of_address(session, address, networks)
    if on_network is not None:
        return Presence(on_network, None)
    return of_ticket(secret, ticket, at=at)
