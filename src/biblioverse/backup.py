"""Backups taken while the platform runs, and their restore into an empty data folder.

A backup is one tar file, ``biblioverse-backup-<UTC time>.tar``: ``manifest.json`` first,
then the database (an online copy of the SQLite file through SQLite's backup API, or
``pg_dump --format=custom``) and the files the platform keeps in its data folder that are
not derived (``secret_key``). The search index is derived from the database: it is left out
and rebuilt on restore. The manifest gives each file's size and SHA-256, and a restore checks
them all before it writes anything (ADR 0033).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from biblioverse import __version__, migrate

FORMAT = "biblioverse-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/biblioverse.db"
POSTGRES_MEMBER = "database/biblioverse.dump"
# Files of the data folder that are state and not derived: a file the platform starts
# keeping there goes in this list, or backups leave it out.
STORED_FILES = ("secret_key",)
# What else a data folder holds, left out on purpose: derived (rebuilt on restore) or
# held only while a process runs.
DERIVED = ("index",)
RUNTIME_SUFFIXES = ("-wal", "-shm", "-journal", "-relay.lock")
NAME = re.compile(r"^biblioverse-backup-\d{8}T\d{6}\.\d{3}Z\.tar$")
CHUNK = 1 << 20

Say = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message names the file or setting."""


@dataclass(frozen=True)
class Written:
    path: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Restored:
    backend: str
    revision_in_backup: str | None
    revision_now: str | None
    files: list[str]


def backup_name(started: dt.datetime) -> str:
    """``biblioverse-backup-20261207T101500.123Z.tar``: the names sort as the times do."""
    at = started.astimezone(dt.UTC)
    return f"biblioverse-backup-{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}Z.tar"


def backend_of(database_url: str) -> str:
    name = make_url(database_url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(
            f"BIBLIOVERSE_DATABASE_URL: backups know SQLite and PostgreSQL, not {name}"
        )
    return name


def sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"BIBLIOVERSE_DATABASE_URL: {database_url!r} names no SQLite file")
    return Path(database)


def left_out(data_dir: Path, database_url: str) -> list[str]:
    """Entries of the data folder a backup does not hold and the platform did not put there
    (anything derived or held only while running is expected, and not listed)."""
    if not data_dir.is_dir():
        return []
    db_name = sqlite_path(database_url).name if backend_of(database_url) == "sqlite" else None
    known = set(STORED_FILES) | set(DERIVED)
    if db_name:
        known |= {db_name, *(db_name + s for s in RUNTIME_SUFFIXES)}
    return sorted(p.name for p in data_dir.iterdir() if p.name not in known)


# --- taking a backup ------------------------------------------------------------------------


def target_for(to: Path | None, backup_dir: Path | None, started: dt.datetime) -> Path:
    """``--to`` ending in ``.tar`` is the file; any other ``--to`` is a folder (created),
    as is BIBLIOVERSE_BACKUP_DIR; with neither, the current folder."""
    if to is not None and to.suffix == ".tar":
        return to
    folder = to if to is not None else (backup_dir or Path.cwd())
    return folder / backup_name(started)


def take(
    database_url: str,
    data_dir: Path,
    *,
    to: Path | None = None,
    backup_dir: Path | None = None,
    say: Say = lambda _: None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Written:
    """Write a backup while the platform runs, where :func:`target_for` says. Every
    transaction committed before ``started_at`` (in the manifest) is in it. It is written
    under a hidden name and renamed when complete, so a backup that stopped half-way never
    looks like one."""
    started = now()
    target = target_for(to, backup_dir, started)
    backend = backend_of(database_url)
    if target.exists():
        raise BackupError(f"{target} already exists: choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with tempfile.TemporaryDirectory(prefix=".biblioverse-backup-", dir=target.parent) as tmp:
        staged: list[tuple[str, Path]] = []
        if backend == "sqlite":
            db_copy = Path(tmp) / "biblioverse.db"
            say("copying the SQLite database (online backup API)")
            _copy_sqlite(sqlite_path(database_url), db_copy)
            database: dict[str, Any] = {
                "backend": "sqlite",
                "member": SQLITE_MEMBER,
                "alembic_revision": current_revision(f"sqlite:///{db_copy}"),
            }
            staged.append((SQLITE_MEMBER, db_copy))
        else:
            dump = Path(tmp) / "biblioverse.dump"
            revision = current_revision(database_url)
            say("dumping the PostgreSQL database (pg_dump --format=custom)")
            database = {
                "backend": "postgresql",
                "member": POSTGRES_MEMBER,
                "alembic_revision": revision,
                "database": make_url(database_url).database,
                "pg_dump": _pg_dump(database_url, dump),
            }
            staged.append((POSTGRES_MEMBER, dump))
        left = {"index/": "derived from the database: rebuilt on restore"}
        for name in STORED_FILES:
            if (data_dir / name).is_file():
                # a copy, so that the checksum is of the very bytes written
                shutil.copyfile(data_dir / name, Path(tmp) / name)
                staged.append((f"files/{name}", Path(tmp) / name))
            else:
                left[name] = "not in the data folder"
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "started_at": started.isoformat(),
            "finished_at": now().isoformat(),
            "biblioverse_version": __version__,
            "database": database,
            "files": [{"path": member, **_digest(path)} for member, path in staged],
            "left_out": left,
        }
        try:
            _write_tar(partial, manifest, staged, started)
            partial.rename(target)
        finally:
            partial.unlink(missing_ok=True)
    _sync_folder(target.parent)
    return Written(target, manifest)


def _copy_sqlite(source: Path, dest: Path) -> None:
    """SQLite's online backup in one step: one read transaction, so one snapshot of the
    database however many writers commit meanwhile (in WAL mode they are not held up). In
    several steps the copy would start again after every commit of another connection."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    try:
        # mode=rw: a missing file is an error, not a new empty database
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
                ok = dst.execute("PRAGMA quick_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: {exc}") from None
    if ok != ("ok",):
        raise BackupError(f"{source}: the copy fails SQLite's quick_check: {ok}")


def current_revision(database_url: str) -> str | None:
    """The database's Alembic revision; None if it was never migrated."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None
    finally:
        engine.dispose()
    return None if revision is None else str(revision)


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The libpq URI for pg_dump and pg_restore, and their environment: the password goes
    in PGPASSWORD, not on the command line where `ps` shows it."""
    url: URL = make_url(database_url)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def find_pg_tool(name: str, *, path: str | None = None, roots: tuple[str, ...] = ()) -> str:
    """``name`` on PATH, else the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name, path=path)
    if found:
        return found
    candidates = []
    for root in roots or ("/usr/lib/postgresql",):
        for binary in Path(root).glob(f"*/bin/{name}"):
            with contextlib.suppress(ValueError):
                candidates.append((float(binary.parts[-3]), str(binary)))
    if candidates:
        return max(candidates)[1]
    raise BackupError(
        f"{name} not found on PATH or in /usr/lib/postgresql/*/bin: install the PostgreSQL "
        f"client tools of the server's major version or newer (Debian: postgresql-client)"
    )


def _run_pg(args: list[str], env: dict[str, str]) -> str:
    """Run pg_dump or pg_restore; its error, if it fails, is the message. Returns stdout."""
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (a fixed argument list, no shell)
    if done.returncode != 0:
        tool = Path(args[0]).name
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def _pg_dump(database_url: str, dump: Path) -> str:
    """pg_dump reads one snapshot in one transaction: consistent while others write.
    Returns its version, for the manifest."""
    tool = find_pg_tool("pg_dump")
    uri, env = _libpq(database_url)
    _run_pg([tool, "--format=custom", "--no-password", f"--file={dump}", f"--dbname={uri}"], env)
    return _run_pg([tool, "--version"], env)


def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": sha.hexdigest()}


def _write_tar(
    partial: Path, manifest: dict[str, Any], staged: list[tuple[str, Path]], at: dt.datetime
) -> None:
    # Readable by its owner only: a backup holds readers' personal data and the session key.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            body = json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"
            tar.addfile(_member(MANIFEST, len(body), at), io.BytesIO(body))
            for member, path in staged:
                with path.open("rb") as f:
                    tar.addfile(_member(member, path.stat().st_size, at), f)
        out.flush()
        os.fsync(out.fileno())


def _member(name: str, size: int, at: dt.datetime) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(at.timestamp())
    return info


def _sync_folder(folder: Path) -> None:
    """The rename survives a power cut once the folder's entry is on disk too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``folder`` (by the time in their name).
    Only names ``backup`` gives are looked at: a file named with ``--to`` is never deleted,
    nor one being written."""
    if keep < 1:
        raise BackupError("BIBLIOVERSE_BACKUP_KEEP: keep at least 1 backup")
    ours = sorted(p for p in folder.iterdir() if NAME.match(p.name) and p.is_file())
    gone = ours[:-keep]
    for path in gone:
        path.unlink()
    return gone


# --- restoring ------------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[tarfile.TarFile, dict[str, Any]]]:
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed below)
    except tarfile.TarError as exc:
        raise BackupError(f"{path}: not a readable tar file ({exc})") from None
    with tar:
        try:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member else None
        except (KeyError, ValueError, tarfile.TarError):
            manifest = None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BackupError(f"{path}: no {MANIFEST} of a Biblioverse backup in it")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise BackupError(
                f"{path}: {MANIFEST} has format_version {manifest.get('format_version')!r}; "
                f"this version of Biblioverse reads {FORMAT_VERSION}"
            )
        yield tar, manifest


def _checked_member(name: object) -> str:
    """A member the manifest lists: a relative path under database/ or files/, no '..'."""
    pure = PurePosixPath(str(name))
    if (
        not isinstance(name, str)
        or pure.is_absolute()
        or ".." in pure.parts
        or len(pure.parts) < 2
        or pure.parts[0] not in ("database", "files")
    ):
        raise BackupError(f"{MANIFEST}: {name!r} is not a path a backup holds")
    return name


def verify(tar: tarfile.TarFile, manifest: dict[str, Any], where: Path) -> list[str]:
    """Every file the manifest lists is there with its size and SHA-256; else the file is
    named. Returns the members."""
    members = []
    for entry in manifest.get("files", []):
        name = _checked_member(entry.get("path"))
        try:
            stream = tar.extractfile(name)
        except KeyError:
            stream = None
        if stream is None:
            raise BackupError(f"{where}: {name} is listed in {MANIFEST} but not in the backup")
        sha = hashlib.sha256()
        size = 0
        try:
            while chunk := stream.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"{where}: {name} cannot be read ({exc})") from None
        if size != entry.get("size") or sha.hexdigest() != entry.get("sha256"):
            raise BackupError(
                f"{where}: {name} does not match its checksum in {MANIFEST} "
                f"(size {size}, expected {entry.get('size')}): the backup is damaged"
            )
        members.append(name)
    return members


def _refuse_unless_empty(data_dir: Path, database_url: str, backend: str) -> None:
    if data_dir.exists():
        if not data_dir.is_dir():
            raise BackupError(f"data folder {data_dir} is a file, not a folder")
        inside = sorted(p.name for p in data_dir.iterdir())
        if inside:
            shown = ", ".join(inside[:5]) + (", ..." if len(inside) > 5 else "")
            raise BackupError(
                f"data folder {data_dir} is not empty ({shown}): restore into an empty folder"
            )
    if backend == "sqlite":
        db = sqlite_path(database_url)
        if db.exists():
            raise BackupError(f"SQLite database {db} already exists: restore into a new file")
        return
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY c.relkind <> 'r', 1 LIMIT 1"
                )
            ).scalar()
    except Exception as exc:
        raise BackupError(f"BIBLIOVERSE_DATABASE_URL: cannot connect ({exc})") from None
    finally:
        engine.dispose()
    if found:
        name = make_url(database_url).database
        raise BackupError(
            f"PostgreSQL database {name!r} is not empty (it has {found}): restore into an "
            f"empty database (createdb)"
        )


def _known_revision(revision: str | None, database_url: str, where: Path) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    if revision is None:
        return
    try:
        ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_revision(revision)
    except CommandError:
        raise BackupError(
            f"{where}: its database is at revision {revision}, which this version of "
            f"Biblioverse does not know: restore it with a version at least as new"
        ) from None


def _extract(tar: tarfile.TarFile, member: str, dest: Path) -> None:
    stream = tar.extractfile(member)
    assert stream is not None  # verified
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(stream, out, CHUNK)
        out.flush()
        os.fsync(out.fileno())


def restore(
    path: Path, database_url: str, data_dir: Path, *, say: Say = lambda _: None
) -> Restored:
    """Bring a backup back into an empty data folder (and an empty database): check every
    checksum first, then the database, the migrations up to head, and the files. The
    caller rebuilds the search index. Nothing is written unless every check passes; a
    SQLite database appears under its name only once restored and migrated."""
    backend = backend_of(database_url)
    with _opened(path) as (tar, manifest):
        database = manifest.get("database") or {}
        held = database.get("backend")
        if held != backend:
            raise BackupError(
                f"{path} holds a {held} database and BIBLIOVERSE_DATABASE_URL names "
                f"{backend}: restore it into {held}"
            )
        expected = SQLITE_MEMBER if backend == "sqlite" else POSTGRES_MEMBER
        _refuse_unless_empty(data_dir, database_url, backend)
        say("checking the checksums")
        members = verify(tar, manifest, path)
        if expected not in members:
            raise BackupError(f"{path}: {MANIFEST} lists no {expected}")
        revision = database.get("alembic_revision")
        _known_revision(revision, database_url, path)
        data_dir.mkdir(parents=True, exist_ok=True)
        files = [m for m in members if m.startswith("files/")]
        written: list[Path] = []
        try:
            for member in files:
                dest = data_dir.joinpath(*PurePosixPath(member).parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(f".{dest.name}.restoring")
                written.append(dest)
                _extract(tar, member, tmp)
                tmp.replace(dest)
            if backend == "sqlite":
                _restore_sqlite(tar, sqlite_path(database_url), say)
            else:
                _restore_postgres(tar, database_url, say)
                say("migrating the database to this version's schema")
                migrate.upgrade(database_url)
        except BaseException:
            # The folder empty again, so that the restore can be run again once the cause
            # is put right (pg_restore's single transaction left the database empty too,
            # unless the migrations failed after it).
            for dest in written:
                dest.unlink(missing_ok=True)
                dest.with_name(f".{dest.name}.restoring").unlink(missing_ok=True)
            raise
    return Restored(backend, revision, current_revision(database_url), files)


def _restore_sqlite(tar: tarfile.TarFile, db: Path, say: Say) -> None:
    """Written and migrated under a hidden name, renamed when done: the database appears
    under its name complete or not at all."""
    say(f"restoring the SQLite database to {db}")
    db.parent.mkdir(parents=True, exist_ok=True)
    staged = db.with_name(f".{db.name}.restoring")
    try:
        _extract(tar, SQLITE_MEMBER, staged)
        say("migrating the database to this version's schema")
        migrate.upgrade(f"sqlite:///{staged.resolve()}")
        # Out of WAL mode, so that all of it is in the one file renamed (the app's engine
        # turns WAL on again when it connects).
        con = sqlite3.connect(staged)
        try:
            con.execute("PRAGMA journal_mode=DELETE")
        finally:
            con.close()
        staged.rename(db)
    finally:
        for leftover in (staged, Path(f"{staged}-wal"), Path(f"{staged}-shm")):
            leftover.unlink(missing_ok=True)


def _restore_postgres(tar: tarfile.TarFile, database_url: str, say: Say) -> None:
    """pg_restore in one transaction: all of it or nothing. Objects belong to the user of
    BIBLIOVERSE_DATABASE_URL, whoever owned them where the backup was taken."""
    tool = find_pg_tool("pg_restore")
    uri, env = _libpq(database_url)
    say(f"restoring the PostgreSQL database {make_url(database_url).database!r} (pg_restore)")
    with tempfile.TemporaryDirectory(prefix="biblioverse-restore-") as tmp:
        dump = Path(tmp) / "biblioverse.dump"
        _extract(tar, POSTGRES_MEMBER, dump)
        _run_pg(
            [
                tool,
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                "--no-password",
                f"--dbname={uri}",
                str(dump),
            ],
            env,
        )
