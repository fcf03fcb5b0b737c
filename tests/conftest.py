"""Shared fixtures: a migrated database per backend, a clean slate per test, the app.

Every test that touches the database runs on SQLite and, when
BIBLIOVERSE_TEST_DATABASE_URL names a PostgreSQL server, again on PostgreSQL: the
``backend`` fixture is parametrised over both, so one pytest run covers both legs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from biblioverse import migrate, reference, security
from biblioverse.app import create_app
from biblioverse.db import make_engine, make_session_factory
from biblioverse.schema import metadata
from biblioverse.settings import Settings

PG_URL = os.environ.get("BIBLIOVERSE_TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session", autouse=True)
def cheap_hashes() -> Iterator[None]:
    """Real argon2, with test-sized cost: a suite creates hundreds of accounts."""
    real = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    security._hasher = real


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        yield url
        return
    with scratch_postgres("bv_test") as url:
        yield url


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A migrated database of its own on the PostgreSQL server of PG_URL, dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def _wipe(engine: Engine) -> None:
    tables = [t.name for t in metadata.sorted_tables if t.name != "reference_state"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (our own table names)
    # Raw SQL bypasses the sessions that tell the reference caches: every engine of this
    # process (the tests' and the app's) forgets what it kept.
    reference.forget()


@pytest.fixture()
def session(engine: Engine) -> Iterator[Session]:
    s = make_session_factory(engine)()
    try:
        yield s
    finally:
        s.rollback()
        s.close()
        _wipe(engine)


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key="test-secret-key-not-for-production",
        offline_check_s=0,  # the tests' clock is not the wall clock: they call the check
    )
    return create_app(settings)


@pytest.fixture()
def client(app: FastAPI, session: Session) -> Iterator[TestClient]:
    """An HTTP client on the app; depends on ``session`` so the data is wiped after."""
    app.dependency_overrides.clear()
    with TestClient(app, base_url="http://testserver") as c:
        yield c
    app.dependency_overrides.clear()


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
