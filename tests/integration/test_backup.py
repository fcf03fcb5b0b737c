"""`biblioverse backup` and `restore`, run as an operator would, on SQLite and PostgreSQL.

A backup is taken by the command while threads of this process lend and take back copies;
restored into an empty data folder (and, on PostgreSQL, an empty database made here), it
holds every loan acknowledged before the backup began and none begun after it ended, and
the restored platform serves and finds records. A damaged backup or a target that is not
empty is refused with nothing written."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from biblioverse import backup as backups
from biblioverse import circulation, migrate
from biblioverse.db import make_engine, make_session_factory
from biblioverse.settings import Settings
from tests import factories
from tests.conftest import BACKENDS, PG_URL
from tests.serving import BIN, cli_env, served

NOW = factories.NOW
THREADS = 4
COPIES = 30  # per thread, lent one after the other and then all taken back

# the newest migration: a backup is written at it, and an older one is brought up to it
HEAD = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


@dataclass(frozen=True)
class Place:
    """A data folder and its database: the folder's SQLite file, or a scratch PostgreSQL
    database of this test."""

    data: Path
    pg_url: str | None

    @property
    def url(self) -> str:
        return self.pg_url or f"sqlite:///{self.data / 'biblioverse.db'}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args],
            env=cli_env(self.data, self.pg_url),
            capture_output=True,
            text=True,
            timeout=180,
        )


@pytest.fixture(params=BACKENDS)
def places(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Place]]:
    """``places(name)``: a new empty data folder, with a new empty database on PostgreSQL
    (created here and dropped after the test, never the suite's shared database)."""
    made: list[str] = []
    admin = (
        create_engine(PG_URL, isolation_level="AUTOCOMMIT") if request.param != "sqlite" else None
    )

    def place(name: str) -> Place:
        if admin is None:
            return Place(tmp_path / name, None)
        db = f"bv_backup_{uuid.uuid4().hex[:8]}_{name}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        made.append(db)
        url = make_url(PG_URL).set(database=db).render_as_string(hide_password=False)
        return Place(tmp_path / name, url)

    yield place
    if admin is not None:
        with admin.connect() as conn:
            for db in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def seeded(place: Place) -> tuple[list[int], list[list[str]], int]:
    """A migrated library with a secret key, readers and copies: one reader and ``COPIES``
    copies (of one title) per lending thread. Returns the readers, their copies and the
    central library's id."""
    place.data.mkdir()
    migrate.upgrade(place.url)
    Settings(data_dir=place.data).effective_secret_key  # noqa: B018 (writes the key file)
    engine = make_engine(place.url)
    session = make_session_factory(engine)()
    try:
        w = factories.world(session)
        factories.rule(session, w, max_loans=COPIES)
        shelves = []
        for n in range(THREADS):
            items = factories.copies(
                session, w, f"Walden volume {n}", [f"BK{n}-{c:03d}" for c in range(COPIES)]
            )
            shelves.append([i.barcode for i in items])
        reader_ids = [factories.reader(session, w.central, 100 + n).id for n in range(THREADS)]
        central = w.central.id
        session.commit()
    finally:
        session.close()
        engine.dispose()
    return reader_ids, shelves, central


def manifest_of(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        member = tar.extractfile(backups.MANIFEST)
        assert member is not None
        manifest: dict[str, Any] = json.loads(member.read())
        return manifest


def moment(manifest: dict[str, Any], key: str) -> float:
    return dt.datetime.fromisoformat(str(manifest[key])).timestamp()


def wait_until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the load did not get going"
        time.sleep(0.02)


def test_a_backup_taken_while_copies_are_lent_restores_every_acknowledged_loan(
    places: Callable[[str], Place], tmp_path: Path
) -> None:
    source, target = places("source"), places("target")
    reader_ids, shelves, central = seeded(source)
    engine = make_engine(source.url)
    factory = make_session_factory(engine)
    acknowledged: list[tuple[int, float, float]] = []  # loan id, commit asked, commit returned
    failures: list[BaseException] = []
    stop = threading.Event()

    def lend_and_take_back(reader_id: int, barcodes: list[str]) -> None:
        minute = 0
        try:
            while not stop.is_set():
                for barcode in barcodes:
                    minute += 1
                    with factory() as s:
                        loan = circulation.checkout(
                            s,
                            None,
                            reader_id=reader_id,
                            barcode=barcode,
                            at_unit_id=central,
                            at=NOW + dt.timedelta(minutes=minute),
                        )
                        loan_id, asked = loan.id, time.time()
                        s.commit()
                        acknowledged.append((loan_id, asked, time.time()))
                for barcode in barcodes:
                    minute += 1
                    with factory() as s:
                        at = NOW + dt.timedelta(minutes=minute)
                        circulation.checkin(s, None, barcode=barcode, at_unit_id=central, at=at)
                        s.commit()
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=lend_and_take_back, args=args)
        for args in zip(reader_ids, shelves, strict=True)
    ]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20 or bool(failures))
        taken = source.run("backup", "--to", str(tmp_path / "backups"))
        seen = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= seen + 20 or bool(failures))
    finally:
        stop.set()
        for t in threads:
            t.join()
        engine.dispose()
    assert failures == [], failures[:3]
    assert taken.returncode == 0, taken.stderr
    (path,) = (tmp_path / "backups").iterdir()
    assert backups.NAME.match(path.name) and str(path) in taken.stdout
    manifest = manifest_of(path)
    started, finished = moment(manifest, "started_at"), moment(manifest, "finished_at")
    before = {i for i, _asked, done in acknowledged if done < started}
    after = {i for i, asked, _done in acknowledged if asked > finished}
    assert len(before) >= 20 and len(after) >= 20  # the load ran before and after it
    assert manifest["database"]["alembic_revision"] == HEAD
    assert [f["path"] for f in manifest["files"]][1:] == ["files/secret_key"]

    restored = target.run("restore", str(path))
    assert restored.returncode == 0, restored.stderr
    assert "checking the checksums" in restored.stdout
    assert f"{THREADS} records indexed" in restored.stdout
    assert (target.data / "secret_key").read_text() == (source.data / "secret_key").read_text()
    check = make_engine(target.url)
    try:
        with check.connect() as conn:
            there = set(conn.scalars(select(circulation.Loan.id)))
    finally:
        check.dispose()
    assert before <= there, f"{len(before - there)} acknowledged loans lost"
    assert not (after & there), "loans begun after the backup ended are in it"

    with served(target.data, database_url=target.pg_url) as url:
        found = httpx.get(f"{url}/api/v1/catalog/search", params={"q": "walden"}).json()
    assert found["total"] == THREADS
    assert found["hits"][0]["holdings"][0]["library_code"] == "central"
    # a started platform keeps nothing in its data folder that backups leave out
    assert backups.left_out(target.data, target.url) == ["server.log"]


def tampered(path: Path, member: str) -> None:
    """One byte of ``member`` changed inside the tar, where it lies."""
    with tarfile.open(path) as tar:
        info = tar.getmember(member)
    with path.open("r+b") as f:
        f.seek(info.offset_data + info.size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


def tables(place: Place) -> list[str]:
    engine = create_engine(place.url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def backup_and_target(places: Callable[[str], Place], tmp_path: Path) -> tuple[Path, Place]:
    """A backup of a seeded library (taken in this process) and a new place to restore to."""
    source, target = places("source"), places("target")
    seeded(source)
    return backups.take(source.url, source.data, to=tmp_path).path, target


def refused(place: Place, backup: Path) -> str:
    """What ``restore`` says when it refuses ``backup``."""
    r = place.run("restore", str(backup))
    assert r.returncode == 2, r.stdout
    return r.stderr


def test_a_damaged_backup_is_refused_naming_the_file_and_nothing_is_written(
    places: Callable[[str], Place], tmp_path: Path
) -> None:
    path, target = backup_and_target(places, tmp_path)
    db = backups.SQLITE_MEMBER if target.pg_url is None else backups.POSTGRES_MEMBER
    tampered(path, db)
    assert f"{db} does not match its checksum in manifest.json" in refused(target, path)
    assert list(target.data.iterdir()) == []
    if target.pg_url:
        assert tables(target) == []


def test_restore_refuses_a_data_folder_or_a_database_that_is_not_empty(
    places: Callable[[str], Place], tmp_path: Path
) -> None:
    path, target = backup_and_target(places, tmp_path)
    target.data.mkdir()
    (target.data / "notes.txt").write_text("kept")
    said = refused(target, path)
    assert f"data folder {target.data} is not empty (notes.txt)" in said
    assert [p.name for p in target.data.iterdir()] == ["notes.txt"]
    if target.pg_url:
        assert tables(target) == []
        busy = places("busy")
        migrate.upgrade(busy.url)
        name = make_url(busy.url).database
        said = refused(busy, path)
        assert f"PostgreSQL database {name!r} is not empty (it has public." in said
        assert list(busy.data.iterdir()) == []


def test_an_older_backup_is_migrated_to_this_version_on_restore(
    places: Callable[[str], Place], tmp_path: Path
) -> None:
    source, target = places("source"), places("target")
    source.data.mkdir()
    migrate.upgrade(source.url, "0016")
    written = backups.take(source.url, source.data, to=tmp_path)
    assert written.manifest["database"]["alembic_revision"] == "0016"
    r = target.run("restore", str(written.path))
    assert r.returncode == 0, r.stderr
    assert f"database migrated from revision 0016 to {HEAD}" in r.stdout
    assert backups.current_revision(target.url) == HEAD


def test_backup_prune_keeps_the_newest_of_its_own_backups(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "backups"
    data.mkdir()
    migrate.upgrade(f"sqlite:///{data / 'biblioverse.db'}")
    folder.mkdir()
    old = [backups.backup_name(NOW + dt.timedelta(days=d)) for d in range(3)]
    for name in [*old, "before-the-upgrade.tar", f".{old[0]}.partial"]:
        (folder / name).write_bytes(b"")
    env = {**cli_env(data), "BIBLIOVERSE_BACKUP_DIR": str(folder), "BIBLIOVERSE_BACKUP_KEEP": "2"}
    r = subprocess.run(
        [str(BIN), "backup", "--prune"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    new = [p.name for p in folder.iterdir() if p.name not in old and backups.NAME.match(p.name)]
    assert len(new) == 1
    left = {p.name for p in folder.iterdir()}
    assert left == {new[0], old[2], "before-the-upgrade.tar", f".{old[0]}.partial"}
    assert r.stdout.count("pruned ") == 2


def test_a_backup_that_fails_leaves_nothing_that_looks_like_one(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "backups"
    r = subprocess.run(
        [str(BIN), "backup", "--to", str(folder)],
        env=cli_env(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"no SQLite database at {data.resolve() / 'biblioverse.db'}" in r.stderr
    assert list(folder.iterdir()) == []


def test_a_missing_pg_dump_is_named_with_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(
        backups.BackupError, match=r"pg_dump not found on PATH .* postgresql-client"
    ):
        backups.find_pg_tool("pg_dump", path="", roots=(str(tmp_path),))
