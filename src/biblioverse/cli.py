"""The ``biblioverse`` command: demo, serve, db upgrade, users, readers import, backup and
restore."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from biblioverse.settings import Settings, load_settings

if TYPE_CHECKING:
    from biblioverse.sip2.server import Limits

app = typer.Typer(help="Biblioverse, the smart library platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
readers_app = typer.Typer(help="Reader accounts.", no_args_is_help=True)
catalog_app = typer.Typer(help="Bibliographic records and items.", no_args_is_help=True)
index_app = typer.Typer(help="The search index (derived from the database).", no_args_is_help=True)
circulation_app = typer.Typer(help="Loans, holds and fees.", no_args_is_help=True)
sip2_app = typer.Typer(help="Self-service machines over SIP2.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(readers_app, name="readers")
app.add_typer(catalog_app, name="catalog")
app.add_typer(index_app, name="index")
app.add_typer(circulation_app, name="circulation")
app.add_typer(sip2_app, name="sip2")
rfid_app = typer.Typer(help="Smart shelves, gates and sensors.", no_args_is_help=True)
app.add_typer(rfid_app, name="rfid")
console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where all state lives (BIBLIOVERSE_DATA_DIR, default ./var)."),
]


AsUser = Annotated[str, typer.Option("--as", help="Staff user the import is done as.")]


Node = Annotated[
    str | None,
    typer.Option(
        help="This node's name (BIBLIOVERSE_NODE), when several serve one database: its own "
        "folder for the search index below the data folder, its consumer of the NATS stream.",
    ),
]


def _settings(data_dir: Path | None, node: str | None = None) -> Settings:
    if data_dir is not None:
        os.environ["BIBLIOVERSE_DATA_DIR"] = str(data_dir)
    if node is not None:
        os.environ["BIBLIOVERSE_NODE"] = node  # a server's workers read the settings again
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _factory(settings: Settings):  # type: ignore[no-untyped-def]
    from biblioverse.db import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.effective_database_url))


def _staff_actor(session, username: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from biblioverse import accounts

    staff = session.scalar(
        select(accounts.StaffUser).where(accounts.StaffUser.username == username)
    )
    if staff is None:
        err.print(f"[red]no staff user {username!r}[/red]")
        raise typer.Exit(2)
    return accounts.actor_for_staff(session, staff)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, revision: str = "head") -> None:
    """Create or migrate the database schema (and rebuild an outdated search index)."""
    settings = _settings(data_dir)
    from biblioverse import migrate

    migrate.upgrade(settings.effective_database_url, revision)
    console.print(f"[green]database at {revision}[/green]")
    _upgrade_index(settings)


def _upgrade_index(settings: Settings) -> None:
    """The search index is derived data: one written by another version is rebuilt."""
    from biblioverse import catalog

    index_dir = settings.index_dir
    if index_dir.exists() and catalog.TantivyIndex(index_dir, replace_outdated=True).replaced:
        console.print(f"search index rebuilt for this version: {_rebuild_index(settings)} records")


def _serve(settings: Settings, host: str, port: int, workers: int, *, replace: bool) -> None:
    """``replace``: this process becomes the server (``serve``), shedding the command
    line's modules; the demo keeps its process, which stops its SIP2 server and simulator
    when the web server ends."""
    import sys

    os.environ["BIBLIOVERSE_DATA_DIR"] = str(settings.data_dir)
    if replace:
        sys.stdout.flush()
        sys.stderr.flush()
        # -P: `python -m` would put the working folder first on the path, where a stray
        # uvicorn.py could stand in for the real one
        args = [sys.executable, "-P", "-m", "biblioverse.supervise", host, str(port), str(workers)]
        os.execv(sys.executable, args)  # noqa: S606 (a fixed argument list, no shell)
    from biblioverse import supervise

    supervise.run(host, port, workers)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    data_dir: DataDir = None,
    node: Node = None,
) -> None:
    """Serve the web app and API (run `db upgrade` first)."""
    _serve(_settings(data_dir, node), host, port, workers, replace=True)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Seed only.")] = False,
    sip2_port: Annotated[int, typer.Option(help="SIP2 port for kiosks (0: none).")] = 6001,
    no_simulator: Annotated[
        bool, typer.Option("--no-simulator", help="Keep the smart shelves still.")
    ] = False,
) -> None:
    """Migrate, seed the demo consortium (once) and serve it, with SIP2 for kiosks."""
    from biblioverse import demo as demo_data
    from biblioverse.db import transaction, utcnow

    settings = _settings(data_dir)
    from biblioverse import migrate

    migrate.upgrade(settings.effective_database_url)
    _upgrade_index(settings)
    factory = _factory(settings)
    with transaction(factory) as session:
        seeded_before = demo_data.is_seeded(session)
        if seeded_before:
            console.print("demo consortium already present; keeping it")
        else:
            with console.status("seeding the demo consortium..."):
                demo_data.seed(session, at=utcnow())
            console.print("[green]demo consortium seeded[/green]")
    if not (settings.index_dir / "meta.json").exists() or not seeded_before:
        _relay_events(settings, reindex=False)
        console.print(f"search index: {_rebuild_index(settings)} records")
    table = Table(title="Demo logins", show_lines=False)
    table.add_column("who")
    table.add_column("sign in with")
    table.add_column("password")
    for login in demo_data.DEMO_LOGINS:
        table.add_row(login.who, login.login, login.password)
    console.print(table)
    console.print(f"Open http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs)")
    if no_serve:
        return
    if sip2_port:
        _sip2_in_background(settings, host, sip2_port)
        console.print(f"SIP2 for kiosks on {host}:{sip2_port}")
    mqtt_url = settings.mqtt_url or "mqtt://127.0.0.1:1883"
    if not no_simulator and _broker_answers(mqtt_url):
        os.environ["BIBLIOVERSE_MQTT_URL"] = mqtt_url  # the served app listens there
        _simulate_in_background(settings, mqtt_url)
        console.print(f"smart shelves and sensors simulated over {mqtt_url}")
    else:
        console.print("[yellow]no MQTT broker: the smart shelves stay still[/yellow]")
    _serve(settings, host, port, 1, replace=False)


def _broker_answers(url: str) -> bool:
    import socket

    from biblioverse.devices.mqtt import mqtt_settings

    where = mqtt_settings(url)
    try:
        with socket.create_connection((str(where["hostname"]), int(where["port"])), timeout=1):  # type: ignore[call-overload]
            return True
    except OSError:
        return False


def _simulate_in_background(settings: Settings, url: str) -> None:
    """The demo's shelf reader, gate and sensors, in a thread: they end with the app."""
    import threading

    from biblioverse.shelves.simulate import Simulator

    def run() -> None:
        time.sleep(3)  # the app subscribes first
        try:
            Simulator(_factory(settings), url).run()
        except Exception as exc:
            err.print(f"[yellow]the shelf simulator stopped: {exc}[/yellow]")

    threading.Thread(target=run, name="simulator", daemon=True).start()


@rfid_app.command("simulate")
def rfid_simulate(
    mqtt_url: Annotated[str, typer.Option(help="The broker the app listens on.")] = (
        "mqtt://127.0.0.1:1883"
    ),
    seconds: Annotated[float, typer.Option(help="Stop after this long (0: never).")] = 0,
    speed: Annotated[float, typer.Option(help="Simulated seconds per second.")] = 1.0,
    data_dir: DataDir = None,
) -> None:
    """Publish the demo library's shelf, gate and sensor traffic to the broker."""
    from biblioverse.shelves.simulate import Simulator

    settings = _settings(data_dir)
    sim = Simulator(_factory(settings), mqtt_url, speed=speed)
    console.print(f"publishing to {mqtt_url}; Ctrl-C stops")
    with contextlib.suppress(KeyboardInterrupt):
        sim.run(seconds or None)
    console.print(f"{sim.published} messages published, {sim.walked_out} walk-outs")


def _sip2_limits(settings: Settings, **options: Any) -> Limits:
    """The SIP2 server's limits: the command's options and the settings (BIBLIOVERSE_*)."""
    from biblioverse.accounts import ThrottlePolicy
    from biblioverse.sip2 import server

    return server.Limits(
        login_timeout_s=settings.sip2_login_timeout_s,
        max_per_address=settings.sip2_max_per_address,
        throttle=ThrottlePolicy(
            window_s=settings.throttle_window_s,
            account_failures=settings.throttle_account_failures,
            address_failures=settings.throttle_address_failures,
        ),
        **options,
    )


def _sip2_in_background(settings: Settings, host: str, port: int) -> None:
    """The demo's SIP2 server, in a thread of the web app's process: it ends with it."""
    import threading

    from biblioverse.sip2 import server

    def run() -> None:
        try:
            server.serve(
                settings.effective_database_url,
                settings.index_dir,
                host,
                port,
                limits=_sip2_limits(settings),
                currency=settings.currency,
            )
        except OSError as exc:
            err.print(f"[yellow]SIP2 not started on port {port}: {exc}[/yellow]")

    threading.Thread(target=run, name="sip2", daemon=True).start()


@users_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(prompt=True)],
    full_name: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    consortium_name: Annotated[
        str, typer.Option(help="Creates the consortium if the database has none.")
    ] = "Library Consortium",
    data_dir: DataDir = None,
) -> None:
    """Create a consortium administrator (and the consortium, on a fresh database)."""
    from sqlalchemy import select

    from biblioverse import accounts, libraries
    from biblioverse.access import Role
    from biblioverse.db import transaction, utcnow
    from biblioverse.errors import DomainError

    settings = _settings(data_dir)
    from biblioverse import migrate

    migrate.upgrade(settings.effective_database_url)
    try:
        with transaction(_factory(settings)) as session:
            top = session.scalar(
                select(libraries.OrgUnit).where(libraries.OrgUnit.parent_id.is_(None))
            )
            if top is None:
                top = libraries.create_unit(
                    session,
                    None,
                    libraries.UnitInput(
                        libraries.OrgKind.CONSORTIUM, "consortium", consortium_name, consortium_name
                    ),
                    at=utcnow(),
                )
            accounts.create_staff(
                session,
                None,
                username=username,
                full_name=full_name,
                password=password,
                home_org_unit_id=top.id,
                roles=[(Role.ADMIN, top.id)],
                at=utcnow(),
            )
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/red]")
        for d in exc.details or [] if isinstance(exc.details, list) else []:
            err.print(f"  {d['field']}: {d['message']}")
        raise typer.Exit(1) from None
    console.print(f"[green]admin {username} created[/green]")


def _run_csv_import(file: Path, settings: Settings, as_user: str, label: str, run: Any) -> Any:
    """Decode a CSV (UTF-8 or GB18030), run ``run(session, actor, text, at, progress)`` in
    one transaction with a progress bar; a file-level error exits 2 with its reason."""
    from biblioverse import readers
    from biblioverse.db import transaction, utcnow
    from biblioverse.errors import DomainError

    try:
        text = readers.decode_csv(file.read_bytes())
    except DomainError as exc:
        err.print(f"[red]{file}: {exc.message}[/red]")
        raise typer.Exit(2) from None
    total = readers.count_rows(text)
    with transaction(_factory(settings)) as session:
        actor = _staff_actor(session, as_user)
        with Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(label, total=total)
            try:
                report = run(
                    session,
                    actor,
                    text,
                    utcnow(),
                    lambda done: progress.update(task, completed=done),
                )
            except DomainError as exc:
                err.print(f"[red]{file}: {exc.message}[/red]")
                raise typer.Exit(2) from None
    return report, total


def _reject_table(key: str, rows: list[tuple[int, str, str, str]]) -> None:
    """List rejected rows (line, key, field, problem) and exit 1, or do nothing."""
    if not rows:
        return
    table = Table(title="Rejected rows")
    for col in ("line", key, "field", "problem"):
        table.add_column(col)
    for line, value, field, message in rows:
        table.add_row(str(line), value, field, message)
    console.print(table)
    raise typer.Exit(1)


@readers_app.command("import")
def import_readers(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_user: AsUser = "admin",
    data_dir: DataDir = None,
) -> None:
    """Import readers from CSV (columns: card_number, name, email, phone, birth_date,
    home_library, category, expires_on, pin). Bad rows are reported; good rows are kept."""

    from biblioverse import readers

    settings = _settings(data_dir)
    report, total = _run_csv_import(
        file,
        settings,
        as_user,
        "importing readers",
        lambda session, actor, text, at, progress: readers.import_csv(
            session, actor, text, at=at, progress=progress
        ),
    )
    console.print(f"imported {report.imported} of {total} rows; {report.rejected} rejected")
    _reject_table("card", [(e.line, e.card_number, e.field, e.message) for e in report.errors])


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_user: AsUser = "admin",
    data_dir: DataDir = None,
) -> None:
    """Import MARC21 (ISO 2709, MARC-8 or UTF-8; .gz too) or MARCXML. Bad records are listed
    with their position, 001 and reason; good ones go in; matches update, not duplicate."""
    import gzip

    from biblioverse import catalog
    from biblioverse.db import transaction, utcnow
    from biblioverse.errors import DomainError

    settings = _settings(data_dir)
    data = file.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    index = catalog.TantivyIndex(settings.index_dir)
    # New records are indexed as they are stored; the index commits after the database.
    with index.staged() as staging:
        with transaction(_factory(settings)) as session:
            actor = _staff_actor(session, as_user)
            with Progress(
                TextColumn("importing records"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("import", total=len(data))
                try:
                    report = catalog.import_marc(
                        session,
                        actor,
                        data,
                        at=utcnow(),
                        progress=lambda done: progress.update(task, completed=done),
                        staging=staging,
                    )
                except DomainError as exc:
                    err.print(f"[red]{file}: {exc.message}[/red]")
                    raise typer.Exit(2) from None
        staging.commit()
    _relay_events(settings)  # updated records are indexed again from the database
    console.print(
        f"read {report.read} records: {report.created} new, {report.updated} updated, "
        f"{len(report.bad)} bad, {len(report.warnings)} warnings; "
        f"{report.items_created} copies added"
    )
    if report.file_error:
        err.print(f"[red]{file}: {report.file_error}[/red]")
    for title, rows in (("Bad records", report.bad), ("Warnings", report.warnings)):
        if rows:
            table = Table(title=title)
            for col in ("position", "byte", "001", "reason"):
                table.add_column(col)
            for b in rows[:200]:
                table.add_row(
                    str(b.position),
                    "" if b.offset is None else str(b.offset),
                    b.control_number or "",
                    b.reason,
                )
            console.print(table)
    if report.bad or report.file_error:
        raise typer.Exit(1)


@catalog_app.command("items")
def catalog_items(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_user: AsUser = "admin",
    data_dir: DataDir = None,
) -> None:
    """Add copies from CSV (barcode, control_number or isbn, library, location, call_number,
    item_type, price, rfid_tag). Bad rows are listed; good rows are kept; safe to re-run."""
    from biblioverse import catalog

    settings = _settings(data_dir)
    report, total = _run_csv_import(
        file,
        settings,
        as_user,
        "adding copies",
        lambda session, actor, text, at, progress: catalog.import_items_csv(
            session, actor, text, at=at, progress=progress
        ),
    )
    _relay_events(settings)
    console.print(f"added {report.imported} of {total} copies; {len(report.errors)} rows rejected")
    _reject_table("barcode", [(e.line, e.barcode, e.field, e.message) for e in report.errors])


@catalog_app.command("export")
def catalog_export(
    out: Annotated[Path, typer.Argument(dir_okay=False, writable=True)],
    fmt: Annotated[str, typer.Option("--format", help="marc (ISO 2709) or xml (MARCXML)")] = "marc",
    data_dir: DataDir = None,
) -> None:
    """Export every record: MARC21 as stored (unedited imports byte for byte) or MARCXML."""
    from biblioverse import catalog
    from biblioverse.db import transaction

    if fmt not in ("marc", "xml"):
        err.print("[red]--format is marc or xml[/red]")
        raise typer.Exit(2)
    settings = _settings(data_dir)
    with transaction(_factory(settings)) as session:
        data = catalog.export_marc(session) if fmt == "marc" else catalog.export_marcxml(session)
    out.write_bytes(data)
    console.print(f"wrote {len(data)} bytes to {out}")


@circulation_app.command("daily")
def circulation_daily(
    at: Annotated[
        str | None,
        typer.Option(help="Run as of this moment (ISO 8601 with a UTC offset); default now."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """The daily job: overdue fines brought up to date (capped), copies overdue past their
    rule's limit declared lost, uncollected holds expired, suspensions ended, returned loans
    of readers who keep no history anonymised. Safe to run more than once a day: the amounts
    are computed, not added."""
    import datetime as dt

    from biblioverse import circulation
    from biblioverse.circulation import fees, holds, notices
    from biblioverse.db import transaction, utcnow

    when = utcnow()
    if at is not None:
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            err.print(f"[red]--at: not an ISO 8601 date and time: {at!r}[/red]")
            raise typer.Exit(2) from None
        if when.tzinfo is None:
            err.print("[red]--at: give a UTC offset, for example 2026-11-21T02:00+08:00[/red]")
            raise typer.Exit(2)
    settings = _settings(data_dir)
    with transaction(_factory(settings)) as session:
        accrued = fees.accrue(session, when)
        shelf = holds.expire_and_resume(session, when)
        forgotten = circulation.anonymise(
            session, when, after_days=settings.anonymise_loans_after_days
        )
        noticed = notices.daily(session, when)
    mailed = 0
    if settings.smtp_url:
        with transaction(_factory(settings)) as session:
            send = notices.smtp_sender(settings.smtp_url, settings.mail_from)
            mailed = notices.send_pending(session, send, when)
    _relay_events(settings)
    console.print(
        f"{accrued.overdue_loans} overdue loans, {accrued.fees_changed} fines changed, "
        f"{accrued.lost} declared lost; {shelf.expired} holds expired, {shelf.resumed} resumed; "
        f"{forgotten} returned loans anonymised; {noticed} notices, {mailed} e-mailed"
    )


def _relay_events(settings: Settings, *, reindex: bool = True) -> None:
    """Publish what the command recorded: the search index learns of new records (unless
    the caller rebuilds the whole index anyway). Only the index's events: the others wait
    for the web app's relay, which has their subscribers."""
    from biblioverse import catalog, events
    from biblioverse.db import make_session_factory, transaction

    factory = _factory(settings)
    if settings.nats_url:  # several nodes: to the stream, which every node follows
        _publish_to_stream(settings, factory)
        return
    read_factory = make_session_factory(factory.kw["bind"], read_only=True)
    index = catalog.TantivyIndex(settings.index_dir)
    handlers, merge = catalog.subscribers(read_factory, lambda: index)
    with transaction(factory) as session:
        while events.dispatch_pending(
            session, handlers=handlers if reindex else {}, merge=merge, topics=set(handlers)
        ):
            session.commit()


def _stream_link(settings: Settings):  # type: ignore[no-untyped-def]
    from biblioverse import jetstream

    assert settings.nats_url is not None
    return jetstream.Link(
        settings.nats_url,
        stream=settings.nats_stream,
        subject=settings.nats_subject,
        max_age_s=settings.nats_max_age_s,
    )


def _publish_to_stream(settings: Settings, factory) -> None:  # type: ignore[no-untyped-def]
    """Every event waiting in the outbox, to the NATS stream (ADR 0034). NATS away, they
    wait for the next relay pass of a running node."""
    from biblioverse import events
    from biblioverse.db import transaction

    link = _stream_link(settings)
    link.start()
    try:
        link.wait_connected(10)
        with transaction(factory) as session:
            while events.dispatch_pending(session, deliver=link.publish):
                session.commit()
    except Exception as exc:
        err.print(f"[yellow]events left in the outbox for a running node: {exc}[/yellow]")
    finally:
        link.stop()


def _rebuild_index(settings: Settings) -> int:
    from biblioverse import catalog
    from biblioverse.app import rebuild_node_index

    index = catalog.TantivyIndex(settings.index_dir, replace_outdated=True)
    with Progress(
        TextColumn("indexing records"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("index", total=None)
        return rebuild_node_index(
            settings,
            _factory(settings),
            index,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )


@index_app.command("rebuild")
def index_rebuild(data_dir: DataDir = None, node: Node = None) -> None:
    """Rebuild the catalogue's search index from the database (safe to re-run); a new node
    rebuilds its own, then follows the stream."""
    settings = _settings(data_dir, node)
    n = _rebuild_index(settings)
    console.print(f"[green]indexed {n} records[/green]")


@app.command()
def backup(
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="A .tar file, or a folder to write biblioverse-backup-<UTC time>.tar in "
            "(default: BIBLIOVERSE_BACKUP_DIR, else the current folder).",
        ),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Then delete all but the newest backups in that folder "
            "(BIBLIOVERSE_BACKUP_KEEP of them, 7 unless set).",
        ),
    ] = False,
    keep: Annotated[int | None, typer.Option(min=1, help="How many backups --prune keeps.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write a consistent copy of the database and the data folder's secret key while the
    platform runs. The search index is left out: restore rebuilds it."""
    from biblioverse import backup as backups

    settings = _settings(data_dir)
    url = settings.effective_database_url
    started = time.monotonic()
    try:
        written = backups.take(
            url, settings.data_dir, to=to, backup_dir=settings.backup_dir, say=_say
        )
        gone = backups.prune(written.path.parent, keep or settings.backup_keep) if prune else []
    except backups.BackupError as exc:
        _fail(exc)
    manifest = written.manifest
    console.print(f"backup written: {written.path}", markup=False, style="green")
    database = manifest["database"]
    console.print(
        f"  {database['backend']} database at revision {database['alembic_revision']}; "
        f"{time.monotonic() - started:.1f} s",
        markup=False,
    )
    for f in manifest["files"]:
        console.print(f"  {f['path']}: {f['size']:,} bytes, sha256 {f['sha256']}", markup=False)
    if settings.secret_key:
        console.print(
            "BIBLIOVERSE_SECRET_KEY is set: the key is not in the backup; keep it with the "
            "configuration",
            markup=False,
            style="yellow",
        )
    strays = backups.left_out(settings.data_dir, url)
    if strays:
        console.print(
            f"not in the backup, not kept by Biblioverse: {', '.join(strays)} "
            f"(in {settings.data_dir})",
            markup=False,
            style="yellow",
        )
    for path in gone:
        console.print(f"pruned {path}", markup=False)


@app.command()
def restore(
    backup_file: Annotated[
        Path, typer.Argument(metavar="BACKUP", help="A .tar written by `biblioverse backup`.")
    ],
    data_dir: DataDir = None,
) -> None:
    """Restore a backup into an empty data folder (on PostgreSQL, into the empty database
    BIBLIOVERSE_DATABASE_URL names): every checksum is checked before anything is written,
    an older backup is migrated to this version, and the search index is rebuilt."""
    from biblioverse import backup as backups

    settings = _settings(data_dir)
    started = time.monotonic()
    try:
        done = backups.restore(
            backup_file, settings.effective_database_url, settings.data_dir, say=_say
        )
    except backups.BackupError as exc:
        _fail(exc)
    if done.revision_in_backup != done.revision_now:
        console.print(
            f"database migrated from revision {done.revision_in_backup} to {done.revision_now}"
        )
    else:
        console.print(f"database at revision {done.revision_now}, as in the backup")
    indexed = _rebuild_index(settings)
    files = "".join(f", {Path(f).name}" for f in done.files)
    console.print(
        f"restored {backup_file} into {settings.data_dir}: the {done.backend} database{files}; "
        f"{indexed} records indexed; in {time.monotonic() - started:.1f} s",
        markup=False,
        style="green",
    )


def _say(message: str) -> None:
    console.print(message, markup=False)


def _fail(exc: Exception) -> NoReturn:
    err.print(str(exc), markup=False, style="red")
    raise typer.Exit(2) from None


@sip2_app.command("serve")
def sip2_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6001,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate: serve SIP2 over TLS.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="PEM private key of the certificate.")
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option(help="Seconds a silent or stalled connection is kept.")
    ] = 300.0,
    max_message: Annotated[int, typer.Option(help="Bytes in one message.")] = 4096,
    max_connections: Annotated[int, typer.Option(help="Connections at once (per process).")] = 256,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port. More than one uses more cores on "
            "PostgreSQL; on SQLite writers queue for one lock and it does not help.",
        ),
    ] = 1,
    data_dir: DataDir = None,
) -> None:
    """Serve kiosks, RFID pads and return sorters over SIP2 (run `db upgrade` first)."""
    import logging

    from biblioverse.sip2 import server

    settings = _settings(data_dir)
    if (tls_cert is None) != (tls_key is None):
        err.print("[red]--tls-cert and --tls-key go together[/red]")
        raise typer.Exit(2)
    tls = server.tls_context(str(tls_cert), str(tls_key)) if tls_cert and tls_key else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if processes > 1 and port == 0:
        err.print("[red]--processes above 1 needs a fixed --port to share[/red]")
        raise typer.Exit(2)
    many = f", {processes} processes" if processes > 1 else ""
    console.print(f"SIP2 on {host}:{port}{' (TLS)' if tls else ''}{many}; Ctrl+C stops it")
    server.serve(
        settings.effective_database_url,
        settings.index_dir,
        host,
        port,
        limits=_sip2_limits(
            settings,
            idle_timeout_s=idle_timeout,
            max_message=max_message,
            max_connections=max_connections,
        ),
        currency=settings.currency,
        tls=tls,
        processes=processes,
        stream=(lambda: _stream_link(settings)) if settings.nats_url else None,
    )


if __name__ == "__main__":
    app()
