"""Reference data, read on every loan and return but seldom changed: the member libraries
(their tree paths, names and opening hours) and the circulation rule matrix. Each process
keeps what it has read, per engine, and reads it again when it changed.

How a change is noticed:

- A session that adds, changes or deletes a row of a watched model (:func:`watch`) bumps
  the ``reference_state`` counter in the same transaction. Until it ends, that session
  reads reference data from the database itself (it may see its own uncommitted rows, which
  no other session may). When it commits, this process forgets what it kept at once (for
  every engine: two may read one database).
- Another process (a second web worker, the SIP2 server) compares the counter with the one
  it read at most every :data:`CHECK_EVERY` seconds, so a rule edited in the console applies
  to that process's next loans within that time.

Writes that bypass the ORM (raw SQL) are not seen; code that does them calls
:func:`forget`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Integer, event, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from biblioverse.db import Base

T = TypeVar("T")

CHECK_EVERY = 1.0  # seconds between two looks at another process's changes
_DIRTY = "reference_changed"


class ReferenceState(Base):
    """One row: a counter bumped by every transaction that changes reference data."""

    __tablename__ = "reference_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


_watched: tuple[type, ...] = ()  # any row added, changed or deleted
_watched_changes: tuple[type, ...] = ()  # rows changed or deleted (new ones change nothing kept)


def watch(*models: type, new_rows: bool = True) -> None:
    """Rows of these models are reference data: changing one invalidates the caches. With
    ``new_rows`` False a new row does not (a new API token makes no kept one wrong)."""
    global _watched, _watched_changes
    if new_rows:
        _watched = tuple(dict.fromkeys((*_watched, *models)))
    _watched_changes = tuple(dict.fromkeys((*_watched_changes, *models)))


class _Kept:
    """What one process has read from one database."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.version: int | None = None
        self.checked_at = -1e18
        self.lock = threading.Lock()


_kept: weakref.WeakKeyDictionary[Engine, _Kept] = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def _kept_for(engine: Engine) -> _Kept:
    kept = _kept.get(engine)
    if kept is None:
        with _kept_lock:
            kept = _kept.setdefault(engine, _Kept())
    return kept


def _version(session: Session) -> int | None:
    return session.scalar(select(ReferenceState.version).where(ReferenceState.id == 1))


def get(session: Session, key: str, load: Callable[[Session], T]) -> T:
    """The value ``load(session)`` gives, as kept for this database; read again when
    reference data changed. The value is shared by every session of the process: callers
    must not change it, unless it is a memo (a dict that ``load`` makes empty) of values
    derived from watched rows only."""
    if session.info.get(_DIRTY):
        return load(session)
    kept = _kept_for(_engine_of(session))
    now = time.monotonic()
    if now - kept.checked_at > CHECK_EVERY:
        version = _version(session)
        with kept.lock:
            if version != kept.version:
                kept.values = {}
                kept.version = version
            kept.checked_at = now
    values = kept.values
    if key in values:
        return values[key]  # type: ignore[no-any-return]
    value = load(session)
    with kept.lock:
        if kept.values is values:  # not forgotten meanwhile
            values[key] = value
    return value


def forget(engine: Engine | None = None) -> None:
    """Drop what this process keeps (for one engine, or for all)."""
    with _kept_lock:
        for eng, kept in list(_kept.items()):
            if engine is None or eng is engine:
                with kept.lock:
                    kept.values = {}
                    kept.checked_at = -1e18


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: Any) -> None:
    if not _watched_changes or session.info.get(_DIRTY):
        return
    if any(isinstance(obj, _watched) for obj in session.new) or any(
        isinstance(obj, _watched_changes) for obj in (*session.dirty, *session.deleted)
    ):
        session.info[_DIRTY] = True
        session.connection().execute(
            update(ReferenceState)
            .where(ReferenceState.id == 1)
            .values(version=ReferenceState.version + 1)
        )


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_DIRTY, False):
        forget()  # every engine: another one of this process may read the same database


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_DIRTY, None)
