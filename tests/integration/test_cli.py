"""The `biblioverse` command, run as a user would: in a shell, against a data folder."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import BIN, cli_env, served


def run(*args: str, data_dir: Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        env=cli_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        input=input,
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    r = run("demo", "--no-serve", data_dir=data)
    assert r.returncode == 0, r.stderr
    assert "29000000000015" in r.stdout and "biblioverse-demo" in r.stdout
    return data


def db(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(data / "biblioverse.db")


def test_demo_builds_the_consortium_once(demo_dir: Path) -> None:
    con = db(demo_dir)
    kinds = dict(con.execute("SELECT code, kind FROM org_units").fetchall())
    assert kinds == {
        "consortium": "consortium",
        "central": "library",
        "airport": "branch",
        "community": "branch",
    }
    assert con.execute("SELECT count(*) FROM readers").fetchone() == (500,)
    roles = {r for (r,) in con.execute("SELECT DISTINCT role FROM role_grants")}
    assert roles == {"admin", "librarian", "cataloguer", "circulation"}
    floors = {
        f
        for (f,) in con.execute(
            "SELECT DISTINCT floor FROM locations JOIN org_units u ON u.id = org_unit_id "
            "WHERE u.code = 'central'"
        )
    }
    assert floors == {1, 2}
    chinese = con.execute("SELECT count(*) FROM readers WHERE name GLOB '*[^ -~]*'").fetchone()[0]
    assert 200 < chinese < 500  # both Chinese and English names
    again = run("demo", "--no-serve", data_dir=demo_dir)
    assert again.returncode == 0 and "already present" in again.stdout
    assert db(demo_dir).execute("SELECT count(*) FROM readers").fetchone() == (500,)


def test_readers_import_reports_bad_rows_and_keeps_good_ones(
    demo_dir: Path, tmp_path: Path
) -> None:
    f = tmp_path / "readers.csv"
    f.write_bytes(
        "card_number,name,email,phone,birth_date,home_library,category,expires_on,pin\n"
        "IMP0001,周杰,zj@example.org,,1979-01-18,community,adult,,\n"
        "IMP0002,Bad Row,,,not-a-date,community,adult,,\n".encode("gb18030")
    )
    r = run("readers", "import", str(f), "--as", "community-librarian", data_dir=demo_dir)
    assert r.returncode == 1  # some rows were rejected
    assert "imported 1 of 2 rows; 1 rejected" in r.stdout
    assert "birth_date" in r.stdout and "IMP0002" in r.stdout
    names = (
        db(demo_dir).execute("SELECT name FROM readers WHERE card_number LIKE 'IMP%'").fetchall()
    )
    assert names == [("周杰",)]


def test_readers_import_refuses_a_file_without_the_columns(demo_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("who,when\nx,y\n")
    r = run("readers", "import", str(f), data_dir=demo_dir)
    assert r.returncode == 2 and "missing column(s): card_number" in r.stderr


def test_create_admin_on_a_fresh_database(tmp_path: Path) -> None:
    r = run(
        "users",
        "create-admin",
        "--username",
        "chief",
        "--full-name",
        "Chief Librarian",
        "--password",
        "a strong password",
        "--consortium-name",
        "Valley Libraries",
        data_dir=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    short = run(
        "users",
        "create-admin",
        "--username",
        "second",
        "--full-name",
        "Second",
        "--password",
        "short",
        data_dir=tmp_path,
    )
    assert short.returncode == 1 and "password" in short.stderr
    con = db(tmp_path)
    assert con.execute("SELECT name_en FROM org_units").fetchall() == [("Valley Libraries",)]
    assert con.execute("SELECT username FROM staff_users").fetchall() == [("chief",)]


def test_serve_started_from_a_folder_with_a_stray_module_still_serves(tmp_path: Path) -> None:
    # `serve` becomes `python -m biblioverse.supervise`; the folder it is started from must
    # not be searched first for modules, or this uvicorn.py would stop it
    folder = tmp_path / "cwd"
    folder.mkdir()
    (folder / "uvicorn.py").write_text("raise SystemExit(3)\n")
    assert run("db", "upgrade", data_dir=tmp_path / "data").returncode == 0
    with served(tmp_path / "data", cwd=folder) as url:
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


@pytest.fixture()
def two_servers(tmp_path: Path) -> Iterator[list[str]]:
    for name in ("a", "b"):
        assert run("db", "upgrade", data_dir=tmp_path / name).returncode == 0
    with served(tmp_path / "a") as a, served(tmp_path / "b") as b:
        yield [a, b]


def test_two_instances_run_side_by_side_with_their_own_data(
    two_servers: list[str], tmp_path: Path
) -> None:
    run(
        "users",
        "create-admin",
        "--username",
        "only-in-a",
        "--full-name",
        "A",
        "--password",
        "a strong password",
        data_dir=tmp_path / "a",
    )
    a = httpx.post(
        f"{two_servers[0]}/api/v1/auth/token",
        json={"kind": "staff", "login": "only-in-a", "password": "a strong password"},
    )
    b = httpx.post(
        f"{two_servers[1]}/api/v1/auth/token",
        json={"kind": "staff", "login": "only-in-a", "password": "a strong password"},
    )
    assert a.status_code == 200 and b.status_code == 401
    assert (tmp_path / "a" / "secret_key").exists() and (tmp_path / "b" / "biblioverse.db").exists()


def test_catalog_import_lists_bad_records_and_export_round_trips(
    demo_dir: Path, tmp_path: Path
) -> None:
    bad = Path(__file__).resolve().parents[1] / "data/pymarc/bad_records.mrc"
    r = run("catalog", "import", str(bad), "--as", "cataloguer", data_dir=demo_dir)
    assert r.returncode == 1
    assert "read 9 records: 2 new, 0 updated, 7 bad" in r.stdout
    assert "Base address exceeds size of record" in r.stdout and "truncated" in r.stdout
    out = tmp_path / "all.mrc"
    assert run("catalog", "export", str(out), data_dir=demo_dir).returncode == 0
    again = run("catalog", "import", str(out), "--as", "cataloguer", data_dir=demo_dir)
    # The demo's 3,000 records match on their 001; the two good records of bad_records.mrc
    # carry no 001, 035 or ISBN, so nothing can tell they are already there.
    assert again.returncode == 0 and "3002 records: 2 new, 3000 updated, 0 bad" in again.stdout
    xml = tmp_path / "all.xml"
    assert run("catalog", "export", str(xml), "--format", "xml", data_dir=demo_dir).returncode == 0
    assert xml.read_bytes().count(b"<record>") == 3004


def test_catalog_import_warns_of_padding_after_the_last_record(tmp_path: Path) -> None:
    """Older systems end a file with extra record terminators, a NUL or a line end: every
    record goes in, the padding is one warning, and the command succeeds."""
    data = tmp_path / "data"
    admin = ("--username", "chief", "--full-name", "Chief", "--password", "a strong password")
    assert run("users", "create-admin", *admin, data_dir=data).returncode == 0
    records = (Path(__file__).resolve().parents[1] / "data/pymarc/test.dat").read_bytes()
    padded = tmp_path / "padded.mrc"
    padded.write_bytes(records + b"\x1d\x1d\x00 \n")
    r = run("catalog", "import", str(padded), "--as", "chief", data_dir=data)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "read 10 records: 10 new, 0 updated, 0 bad, 1 warnings" in r.stdout
    table = " ".join(re.sub(r"[│┃|]", " ", r.stdout).split())  # the reason may wrap
    assert f"padding after the last record at byte {len(records)}, skipped: 5 bytes" in table
    assert "(1D 1D 00 20 0A)" in table
    with db(data) as con:
        assert con.execute("SELECT count(*) FROM records").fetchone() == (10,)


def test_catalog_import_refuses_a_circulation_desk(demo_dir: Path) -> None:
    bad = Path(__file__).resolve().parents[1] / "data/pymarc/marc8.dat"
    r = run("catalog", "import", str(bad), "--as", "airport-desk", data_dir=demo_dir)
    assert r.returncode == 2 and "may not import" in r.stderr


def test_catalog_items_csv_through_the_command(demo_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "items.csv"
    f.write_text(
        "barcode,control_number,library,item_type\n"
        "CLI-0001,00000002,community,children\n"
        "CLI-0002,00000002,nowhere,book\n"
    )
    r = run("catalog", "items", str(f), "--as", "cataloguer", data_dir=demo_dir)
    assert r.returncode == 1 and "added 1 of 2 copies; 1 rows rejected" in r.stdout
    assert "no library with code 'nowhere'" in r.stdout


def test_db_upgrade_rebuilds_a_search_index_of_another_version(demo_dir: Path) -> None:
    import shutil

    import tantivy

    folder = demo_dir / "index" / "catalog"
    shutil.rmtree(folder)
    folder.mkdir()
    b = tantivy.SchemaBuilder()
    b.add_text_field("title", stored=True)
    writer = tantivy.Index(b.build(), path=str(folder)).writer(15_000_000, 1)
    writer.commit()
    writer.wait_merging_threads()
    r = run("db", "upgrade", data_dir=demo_dir)
    assert r.returncode == 0, r.stderr
    # 3,000 demo records, and those other tests of this module imported.
    assert re.search(r"search index rebuilt for this version: 30\d\d records", r.stdout)
    again = run("db", "upgrade", data_dir=demo_dir)
    assert "search index rebuilt" not in again.stdout


def test_the_server_believes_no_forwarded_address_unless_told_of_a_proxy(tmp_path: Path) -> None:
    # a client on this machine must not pose as another address to dodge sign-in throttling
    data = tmp_path / "data"
    assert run("db", "upgrade", data_dir=data).returncode == 0
    with served(data) as url:
        r = httpx.post(
            f"{url}/api/v1/auth/token",
            json={"kind": "staff", "login": "nobody", "password": "wrong"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert r.status_code == 401
    keys = {k for (k,) in db(data).execute("SELECT key FROM login_throttles")}
    assert "addr:127.0.0.1" in keys and "addr:203.0.113.9" not in keys
