"""Engine, sessions and the declarative base shared by every context.

SQLite (WAL) is the embedded default; PostgreSQL runs the same code. Sessions never
commit inside services: whoever opened the session (the request, the CLI command, the
job) commits or rolls back.
"""

from __future__ import annotations

import datetime as dt
import select as _select
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: type[StrEnum], *, name: str | None = None) -> CheckConstraint:
    """``CHECK (column IN (...))`` listing the enum's values: the database's list of allowed
    values is written from the enum that names them, never a second time by hand."""
    listed = ", ".join("'" + v.value.replace("'", "''") + "'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# Shelf-order keys compare byte by byte (biblioverse.callnumbers): SQLite does by default,
# PostgreSQL needs the C collation whatever the database's own.
SortKey = String(200).with_variant(String(200, collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class WriterQueue:
    """SQLite's writers of one process, in the order they asked. SQLite lets one writer in
    at a time; a thread that finds the lock taken sleeps and tries again (1, 2, 5 ... then
    100 ms at a time), and under load one thread can lose again and again while others
    come and go: kiosks at a third of the server's rate waited more than a second in one
    message of twenty (`bench/sip2.py --paced-rate`). Threads queued here are let in one
    after the other, without sleeping, as each writer gives its connection back to the pool
    (after its COMMIT: let in at the commit event, which comes before it, the next writer
    found the lock still taken and slept). Between processes SQLite's own waiting still
    applies. A thread that waits longer than ``timeout`` goes on to SQLite's lock as before
    (a thread that already holds a write transaction and opens a second one would
    otherwise wait for itself)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Event] = deque()

    def enter(self) -> bool:
        with self._lock:
            if not self._held:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(self.timeout):
            return True
        with self._lock:
            if turn.is_set():  # let in just as the wait ended
                return True
            self._waiting.remove(turn)
            return False

    def leave(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()  # the next writer's turn; still held
            else:
                self._held = False


_IN_QUEUE = "biblioverse.writer_queue"


# PostgreSQL connections kept per engine. SQLAlchemy's default (5, and 10 more closed again
# when given back) was below what a web worker serves at once (up to 16 requests with 32
# clients on two workers) and below the SIP2 server's 8 threads and its relay: the
# connections past 5 were closed when given back and opened again for a later request, each
# a new backend process (py-spy saw psycopg connecting and closing under load). SQLite keeps
# the default: a connection there is cheap to open, and each keeps its own page cache
# (``cache_size``). ADR 0021.
POOL_SIZE = 16
POOL_OVERFLOW = 16


def _size_pool(kwargs: dict[str, Any]) -> None:
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_OVERFLOW)


def make_engine(url: str, **kwargs: Any) -> Engine:
    # orjson for JSON columns: json.dumps was a large share of a large import's time.
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is turned off so that BEGIN IMMEDIATE
            # below takes the write lock at the start: two checkouts of one item then
            # queue instead of both reading "free".
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # 64 MB of page cache (the default is 2 MB): a catalogue of 250,000 records has
            # indexes of tens of MB, and an import slowed down as they outgrew the cache.
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        writers = WriterQueue()

        def _begin(conn: Any, statement: str) -> None:
            # Straight to the driver: through exec_driver_sql (events, an execution context,
            # a cursor) the BEGIN of every unit of work was a visible share of a SIP2
            # server's time. Its
            # errors are raised as the rest of SQLAlchemy raises them; statement logging
            # (echo) and cursor events do not see it.
            try:
                conn.connection.driver_connection.execute(statement)
            except sqlite3.Error as exc:
                raise sa_exc.DBAPIError.instance(
                    statement,
                    None,
                    exc,
                    sqlite3.Error,
                    connection_invalidated=conn.dialect.is_disconnect(exc, None, None),
                    dialect=conn.dialect,
                ) from exc

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A read-only unit of work (a catalogue search) must not queue behind writers.
            if conn.get_execution_options().get(READ_ONLY):
                _begin(conn, "BEGIN")
                return
            if not conn.info.get(_IN_QUEUE) and writers.enter():
                conn.info[_IN_QUEUE] = True
            try:
                _begin(conn, "BEGIN IMMEDIATE")
            except BaseException:
                _let_next_writer_in(conn.info)
                raise

        def _let_next_writer_in(info: dict[Any, Any]) -> None:
            if info.pop(_IN_QUEUE, False):
                writers.leave()

        # The next writer is let in when this one's connection goes back to the pool (a
        # session gives it back when its transaction ends) or the pool drops it.
        @event.listens_for(engine.pool, "checkin")
        def _given_back(_dbapi: Any, record: Any) -> None:
            if record is not None:
                _let_next_writer_in(record.info)

        @event.listens_for(engine.pool, "invalidate")
        def _dropped(_dbapi: Any, record: Any, _exc: Any) -> None:
            if record is not None:
                _let_next_writer_in(record.info)

        return engine
    _size_pool(kwargs)
    engine = create_engine(url, **kwargs)
    # Not pool_pre_ping: its SELECT 1 is a round trip on every checkout (docs/benchmarks.md).
    event.listen(engine, "checkout", _refuse_if_closed)
    return engine


def _refuse_if_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Before the pool hands out a PostgreSQL connection: if the server has closed it (a
    restart, ``pg_terminate_backend``, an idle timeout), the server said so on the socket,
    which an idle connection otherwise leaves silent. Raising DisconnectionError makes the
    pool drop it and take another. Looking costs a poll() with no wait, no round trip."""
    conn = getattr(dbapi_conn, "driver_connection", dbapi_conn)
    if conn.closed:
        raise DisconnectionError("connection closed")
    try:
        poller = _select.poll()
        poller.register(conn.fileno(), _select.POLLIN)
        pending = poller.poll(0)
    except (OSError, ValueError) as exc:
        raise DisconnectionError(str(exc)) from exc
    if pending:
        raise DisconnectionError("the server closed the connection or spoke unasked")


READ_ONLY = "biblioverse_read_only"


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """``read_only`` sessions read a snapshot and never write; on SQLite they begin a plain
    (deferred) transaction, so they run beside a writer instead of waiting for it."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=not read_only)


def allocate_ids(session: Session, table: Table, n: int) -> list[int]:
    """``n`` new primary keys for ``table``, for a bulk insert that needs them up front
    (an INSERT ... RETURNING goes row by row on SQLite). PostgreSQL draws them from the
    column's sequence; on SQLite the writer holds the database lock (BEGIN IMMEDIATE), so
    the numbers after the highest id are free until it commits."""
    if n <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n},
        )
        return [int(r[0]) for r in rows]
    top = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + n))


def upsert_insert(session: Session):  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT for the session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work for a CLI command or a job: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- rows written outside the unit of work --------------------------------------------------
#
# A check-out or check-in writes two or three rows it has already read. Through the session's
# unit of work each write cost a flush (history, dependency sort, events), a large share of
# a message at a kiosk. These write the row with one statement built once per set of
# columns and leave the object as if it had been read with the new values, so the session
# has nothing to flush (ADR 0021).

_T = TypeVar("_T", bound=Base)
_STATEMENTS: dict[tuple[str, Table, tuple[str, ...]], Any] = {}


def _statement(kind: str, table: Table, names: tuple[str, ...]) -> Any:
    """``UPDATE table SET names ... WHERE id = :_id`` or ``INSERT ... RETURNING id``, built
    once per table and set of columns; the values are bound as ``_v_<name>``."""
    key = (kind, table, names)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        values = {n: bindparam(f"_v_{n}", type_=table.c[n].type) for n in names}
        if kind == "update":
            stmt = update(table).where(table.c.id == bindparam("_id")).values(values)
        else:
            stmt = insert(table).values(values).returning(table.c.id)
        _STATEMENTS[key] = stmt
    return stmt


def plain_rows(session: Session, stmt: Any, params: dict[str, Any]) -> Any:
    """The rows of a select of columns, on the session's connection: without the ORM's
    work for entities, after a flush as the session's own execute would do."""
    session.flush()
    return session.connection().execute(stmt, params)


def write_row(session: Session, obj: Base, **values: Any) -> None:
    """UPDATE the row of ``obj`` (loaded in ``session``) with ``values`` by its primary key,
    and set them on ``obj`` as its loaded state. What the session holds is flushed first, so
    statements keep the order of the code. Column defaults and ORM events do not run: for
    columns that have none (see the callers). A rollback of the transaction, or of a
    savepoint taken before, expires ``obj`` (see :func:`_forget_rows_written`)."""
    stmt = _statement("update", cast(Table, obj.__table__), tuple(values))
    params = {f"_v_{n}": v for n, v in values.items()}
    params["_id"] = obj.id  # type: ignore[attr-defined]
    session.flush()
    session.connection().execute(stmt, params)
    for name, value in values.items():
        set_committed_value(obj, name, value)
    _note_written(session, obj, new=False)


def insert_row(session: Session, cls: type[_T], **values: Any) -> _T:
    """INSERT a row of ``cls`` with ``values`` (every column but the id) and return it as a
    persistent object of ``session``, as if read back, without the unit of work."""
    stmt = _statement("insert", cast(Table, cls.__table__), tuple(values))
    session.flush()
    new_id = session.connection().execute(stmt, {f"_v_{n}": v for n, v in values.items()})
    obj = cls(id=new_id.scalar_one(), **values)
    make_transient_to_detached(obj)
    session.add(obj)
    _note_written(session, obj, new=True)
    return obj


# The unit of work undoes in memory what a rollback undoes in the database; for rows written
# past it, these do: a rollback expires the objects written (read again when next used) and
# lets go of those inserted, or a later insert given the same id would clash with them.
_WRITTEN = "biblioverse.rows_written"


def _note_written(session: Session, obj: Any, *, new: bool) -> None:
    here = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_WRITTEN, []).append((here, obj, new))


def _under(transaction: Any, ended: Any) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget_rows_written(session: Session, previous: Any) -> None:
    written = session.info.get(_WRITTEN)
    if not written:
        return
    kept = []
    for transaction, obj, new in written:
        if not _under(transaction, previous):
            kept.append((transaction, obj, new))
        elif new:
            if obj in session:
                session.expunge(obj)
        elif obj in session:
            session.expire(obj)
    session.info[_WRITTEN] = kept


@event.listens_for(Session, "after_transaction_end")
def _rows_written_kept(session: Session, transaction: Any) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_WRITTEN, None)  # committed, or rolled back (done above)
