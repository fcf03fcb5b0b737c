"""The schema: migrations agree with the models, and invariants hold in the database."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import catalog, circulation, events, migrate, readers
from biblioverse.db import make_engine, make_session_factory
from biblioverse.deps import get_now
from tests import factories


def test_models_and_migrations_agree(database_url: str) -> None:
    migrate.check(database_url)  # raises when autogenerate would find a difference


def raw_reader(home_id: int, **over: object) -> readers.Reader:
    """A row written past the services, to see what the database itself refuses."""
    fields: dict[str, object] = {
        "card_number": "RAW0001",
        "name": "Raw",
        "birth_date": dt.date(1990, 1, 1),
        "home_library_id": home_id,
        "category": "adult",
        "status": "active",
        "expires_on": dt.date(2030, 1, 1),
        "registered_via": "desk",
        "created_at": factories.NOW,
    }
    return readers.Reader(**{**fields, **over})


def test_card_numbers_are_unique_in_the_database_itself(session: Session) -> None:
    w = factories.world(session)
    session.add(raw_reader(w.central.id, card_number=w.reader_central.card_number))
    with pytest.raises(IntegrityError):
        session.flush()


def test_status_outside_the_lifecycle_is_refused_by_the_database(session: Session) -> None:
    w = factories.world(session)
    session.add(raw_reader(w.central.id, status="sleeping"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_registration_records_an_event_in_the_same_transaction(session: Session) -> None:
    w = factories.world(session)
    seen: list[dict[str, object]] = []
    events.subscribe("reader.registered", lambda topic, payload: seen.append(payload))
    reader = readers.register_online(
        session,
        readers.NewReader(
            name="Ada",
            birth_date=dt.date(1990, 1, 1),
            category="adult",
            home_library_id=w.central.id,
            email="ada@example.org",
            password="a long passphrase",
        ),
        at=factories.NOW,
    )
    session.commit()
    assert events.dispatch_pending(session) >= 1
    session.commit()
    assert {"reader_id": reader.id, "home_library_id": w.central.id, "channel": "online"} in seen
    assert events.dispatch_pending(session) == 0  # published once


def test_record_refreshes_are_merged_into_one_delivery_and_published_once(
    session: Session,
) -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    for rid in (3, 1, 3, 2):
        events.record(session, "catalog.records.changed", {"record_ids": [rid]}, at=factories.NOW)
    events.record(
        session,
        "catalog.records.changed",
        {"record_ids": [4, 5], "indexed_ids": [5]},  # an import already indexed 5
        at=factories.NOW,
    )
    events.record(session, "circulation.loan.created", {"loan_id": 9}, at=factories.NOW)
    session.commit()
    handlers = {
        t: [lambda topic, payload: seen.append((topic, payload))]
        for t in ("catalog.records.changed", "circulation.loan.created")
    }
    merge = {"catalog.records.changed": catalog.merge_record_changes}
    assert events.dispatch_pending(session, handlers=handlers, merge=merge) == 6
    session.commit()
    assert seen == [
        ("circulation.loan.created", {"loan_id": 9}),
        ("catalog.records.changed", {"record_ids": [1, 2, 3, 4]}),
    ]
    assert events.dispatch_pending(session, handlers=handlers, merge=merge) == 0


def test_concurrent_registrations_with_one_email_make_one_card(
    session: Session, app: FastAPI
) -> None:
    w = factories.world(session)
    app.dependency_overrides[get_now] = lambda: factories.NOW
    body = {
        "name": "Race",
        "birth_date": "1990-01-01",
        "category": "adult",
        "home_library_id": w.central.id,
        "email": "race@example.org",
        "password": "a long passphrase",
    }
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def register() -> None:
        with TestClient(app) as c:
            barrier.wait()
            statuses.append(c.post("/api/v1/readers/register", json=body).status_code)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.dependency_overrides.clear()
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    session.expire_all()
    count = session.query(readers.Reader).filter_by(email="race@example.org").count()
    assert count == 1


def test_events_go_with_their_transaction_and_savepoint(engine: Engine) -> None:
    """An event is written when its transaction commits: not when it rolls back or is closed,
    and not when it was recorded inside a savepoint that rolled back."""
    factory = make_session_factory(engine)

    def topics() -> list[str]:
        with factory() as s:
            return list(s.scalars(select(events.OutboxEvent.topic).order_by(events.OutboxEvent.id)))

    with factory() as s:
        events.record(s, "test.rolled.back", {}, at=factories.NOW)
        s.rollback()
        events.record(s, "test.kept.outer", {"n": 1}, at=factories.NOW)
        try:
            with s.begin_nested():
                events.record(s, "test.savepoint.undone", {}, at=factories.NOW)
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        with s.begin_nested():
            events.record(s, "test.kept.savepoint", {"n": 2}, at=factories.NOW)
        events.record(s, "test.kept.after", {"n": 3}, at=factories.NOW)
        s.commit()
    with factory() as s:
        events.record(s, "test.closed.uncommitted", {}, at=factories.NOW)
    assert topics() == ["test.kept.outer", "test.kept.savepoint", "test.kept.after"]
    with factory() as s:
        payloads = list(
            s.scalars(select(events.OutboxEvent.payload).order_by(events.OutboxEvent.id))
        )
    assert payloads == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_connection_the_server_closed_is_not_handed_out(database_url: str) -> None:
    """After PostgreSQL ends a pooled connection (a restart, an administrator, an idle
    timeout), the next unit of work gets a live one instead of an error."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to close connections")
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    admin = make_engine(database_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as conn:  # waits (up to 5 s) until the backend has ended
            ended = conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
            assert ended.scalar_one() is True
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_the_migration_to_reference_books_by_rule_changes_no_library_s_lending(
    tmp_path: Path,
) -> None:
    """Before 0017 no reference copy circulated; after it, a reference row that lends
    nothing keeps it so until a librarian changes the row, and precious copies stay in."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        w = factories.world(s)
        factories.rule(s, w)
        factories.copies(s, w, "Reference", ["R-1"], item_type="reference")
        factories.copies(s, w, "Old", ["P-1"], item_type="precious")
        s.commit()
    command.downgrade(migrate.alembic_config(url), "0016")
    with engine.begin() as c:
        c.execute(text("UPDATE items SET circulates = 1 WHERE item_type = 'precious'"))
        assert c.execute(text("SELECT circulates FROM items ORDER BY barcode")).all() == [
            (1,),
            (0,),
        ]
    migrate.upgrade(url)
    with make_session_factory(engine)() as s:
        ref = s.scalar(select(catalog.Item.id).where(catalog.Item.barcode == "R-1"))
        reader = s.scalar(select(readers.Reader.id).order_by(readers.Reader.id))
        assert ref is not None and reader is not None
        applied = circulation.explain(s, reader, ref, at_unit_id=None, at=factories.NOW)
        assert applied.explanation.rule.name == "Reference books: not lent"
        assert applied.refusal is not None and applied.refusal.code == "library_does_not_lend"
        assert s.execute(
            select(catalog.Item.barcode, catalog.Item.circulates).order_by(catalog.Item.barcode)
        ).all() == [("P-1", False), ("R-1", True)]
    engine.dispose()
