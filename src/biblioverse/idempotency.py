"""Idempotency keys: a retried request from a device or a phone gets the first answer.

A client sends ``Idempotency-Key: <token>`` with a request that changes state. The first
request claims the key by inserting its row at the start of the transaction; a concurrent
duplicate waits on the key's unique index (PostgreSQL) or on the write lock (SQLite) and,
once the first commits, gets the stored answer instead of running again. A request that
fails rolls back its claim with everything else, so a retry runs afresh.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from biblioverse.db import Base, JSONType, UTCDateTime
from biblioverse.errors import Conflict, FieldError, ValidationFailed

MAX_KEY = 80


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(40), primary_key=True)  # "reader:12"
    key: Mapped[str] = mapped_column(String(MAX_KEY), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class KeyReused(Conflict):
    code = "idempotency_key_reused"


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), body])).hexdigest()


def validate(key: str) -> str:
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            [FieldError("Idempotency-Key", "invalid", "1 to 80 printable ASCII characters.")]
        )
    return key


def replay(
    session: Session, principal: str, key: str, digest: str, *, at: dt.datetime
) -> IdempotencyKey | None:
    """The stored answer of an earlier request with this key, or None after claiming the key
    for this one (in the current transaction)."""
    found = _stored(session, principal, key, digest)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            session.add(
                IdempotencyKey(principal=principal, key=key, request_hash=digest, created_at=at)
            )
    except IntegrityError:
        # A concurrent request with the same key committed first.
        session.rollback()
        found = _stored(session, principal, key, digest)
        if found is None:  # pragma: no cover - the winner rolled back meanwhile
            raise Conflict("a request with this idempotency key is still running") from None
        return found
    return None


def _stored(session: Session, principal: str, key: str, digest: str) -> IdempotencyKey | None:
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.principal == principal, IdempotencyKey.key == key
        )
    )
    if row is None:
        return None
    if row.request_hash != digest:
        raise KeyReused("this idempotency key was used for a different request")
    return row


def remember(session: Session, principal: str, key: str, status_code: int, response: Any) -> None:
    row = session.get(IdempotencyKey, (principal, key))
    assert row is not None, "claim the key with replay() first"
    row.status_code, row.response = status_code, response
