"""MARC import and export against the database, on real and deliberately broken records."""

from __future__ import annotations

import gzip
import io
import threading
from pathlib import Path
from typing import Any, cast

import pymarc
import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from biblioverse import catalog
from biblioverse.catalog import marcio
from biblioverse.events import OutboxEvent
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
PYMARC = ROOT / "tests/data/pymarc"
SAMPLE = gzip.decompress((ROOT / "src/biblioverse/catalog/data/loc-sample.mrc.gz").read_bytes())


def raws(data: bytes) -> list[bytes]:
    return [r.raw for r in marcio.read_iso2709(data) if r.raw]


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(catalog.Record)) or 0)


def test_the_sample_imports_and_exports_byte_for_byte(session: Session) -> None:
    report = catalog.import_marc(session, None, SAMPLE, at=factories.NOW)
    session.commit()
    assert (report.read, report.created, report.updated, report.bad) == (3000, 3000, 0, [])
    assert catalog.export_marc(session) == SAMPLE


def test_importing_again_updates_instead_of_duplicating(session: Session) -> None:
    part = b"".join(raws(SAMPLE)[:50])
    catalog.import_marc(session, None, part, at=factories.NOW)
    again = catalog.import_marc(session, None, part, at=factories.NOW)
    session.commit()
    assert (again.created, again.updated) == (0, 50)
    assert count(session) == 50


def test_pymarc_bad_records_are_named_and_the_good_kept(session: Session) -> None:
    report = catalog.import_marc(
        session, None, (PYMARC / "bad_records.mrc").read_bytes(), at=factories.NOW
    )
    session.commit()
    assert report.read == 9
    assert [b.position for b in report.bad] == [2, 3, 4, 5, 6, 7, 9]
    reasons = {b.position: b.reason for b in report.bad}
    assert reasons[2] == "Base address exceeds size of record"
    assert reasons[9].startswith("truncated: the record needs 127 bytes")
    assert report.created == 2 and count(session) == 2


def test_marc8_records_are_read_as_unicode(session: Session) -> None:
    report = catalog.import_marc(
        session, None, (PYMARC / "marc8.dat").read_bytes(), at=factories.NOW
    )
    session.commit()
    assert report.created == 1 and report.bad == []
    record = session.scalars(select(catalog.Record)).one()
    assert record.marc_utf8 is False
    assert "Ⓐ" not in record.title and record.title.isprintable()
    assert catalog.export_marc(session) == (PYMARC / "marc8.dat").read_bytes()


def test_text_that_is_not_marc8_is_refused_with_the_reason(session: Session) -> None:
    report = catalog.import_marc(
        session, None, (PYMARC / "1251.dat").read_bytes(), at=factories.NOW
    )
    assert report.created == 0 and len(report.bad) == 6
    assert report.bad[0].control_number == "ru03-000001RKP"
    assert report.bad[0].reason.startswith("MARC-8 text that cannot be read")


def test_utf8_without_the_leader_flag_is_read_as_utf8_with_a_warning(session: Session) -> None:
    data = (PYMARC / "utf8_without_leader_flag.dat").read_bytes()
    report = catalog.import_marc(session, None, data, at=factories.NOW)
    assert report.created == 1
    assert "leader/09 says MARC-8 but the record is UTF-8" in report.warnings[0].reason


def test_marcxml_imports_and_exports(session: Session) -> None:
    data = (PYMARC / "batch.xml").read_bytes()
    report = catalog.import_marc(session, None, data, at=factories.NOW)
    session.commit()
    assert report.created == 2 and report.file_error is None
    original = [r.title for r in pymarc.parse_xml_to_array(io.BytesIO(data))]
    exported = pymarc.parse_xml_to_array(io.BytesIO(catalog.export_marcxml(session)))
    assert [r.title for r in exported] == original
    assert all(r.leader[9] == "a" for r in exported)


def test_a_record_without_a_control_number_matches_on_isbn(session: Session) -> None:
    def book(control: str | None, title: str) -> bytes:
        r = pymarc.Record(leader="00000nam a2200000 a 4500")
        if control:
            r.add_field(pymarc.Field(tag="001", data=control))
        r.add_field(
            pymarc.Field(
                "020", pymarc.Indicators(" ", " "), [pymarc.Subfield("a", "0-306-40615-2")]
            )
        )
        r.add_field(pymarc.Field("245", pymarc.Indicators("1", "0"), [pymarc.Subfield("a", title)]))
        return r.as_marc()

    catalog.import_marc(session, None, book("A1", "First"), at=factories.NOW)
    same_isbn_other_volume = catalog.import_marc(
        session, None, book("A2", "Second volume"), at=factories.NOW
    )
    assert same_isbn_other_volume.created == 1
    no_control = catalog.import_marc(session, None, book(None, "First, revised"), at=factories.NOW)
    assert (no_control.created, no_control.updated) == (0, 1)
    assert count(session) == 2


def test_broken_xml_keeps_what_came_before_and_says_where(session: Session) -> None:
    report = catalog.import_marc(
        session, None, (PYMARC / "bad_tag.xml").read_bytes(), at=factories.NOW
    )
    assert report.file_error and report.created == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"   \n", "the file is empty"),
        (b"%PDF-1.4 not a catalogue", "neither MARC21"),
    ],
)
def test_files_that_are_not_marc_are_refused_whole(
    session: Session, data: bytes, message: str
) -> None:
    with pytest.raises(catalog.CatalogFileInvalid, match=message):
        catalog.import_marc(session, None, data, at=factories.NOW)
    assert count(session) == 0


def test_a_truncated_file_keeps_the_whole_records(session: Session) -> None:
    data = b"".join(raws(SAMPLE)[:3])[:-40]
    report = catalog.import_marc(session, None, data, at=factories.NOW)
    assert report.created == 2 and [b.position for b in report.bad] == [3]


def test_items_hang_on_records_and_precious_books_stay_in(session: Session) -> None:
    w = factories.world(session)
    catalog.import_marc(session, None, SAMPLE[: int(SAMPLE[:5])], at=factories.NOW)
    rec = session.scalars(select(catalog.Record)).one()
    items = catalog.add_items(
        session,
        None,
        [
            catalog.NewItem(rec.id, "B0001", w.central.id),
            catalog.NewItem(rec.id, "B0002", w.airport.id, item_type="reference"),
            catalog.NewItem(rec.id, "B0003", w.airport.id, item_type="precious"),
        ],
        at=factories.NOW,
    )
    # Whether a reference book is lent is the rule matrix's to say; a precious one never is.
    assert [i.circulates for i in items] == [True, True, False]
    assert [i.status for i in items] == ["available"] * 3


def test_garbage_between_records_is_skipped_to_the_next_record(session: Session) -> None:
    good = raws(SAMPLE)[:2]
    data = good[0] + b"GARBAGE without a length\x1d" + good[1]
    report = catalog.import_marc(session, None, data, at=factories.NOW)
    assert report.created == 2
    assert [(b.position, b.reason) for b in report.bad] == [
        (2, f"no record length at byte {len(good[0])} (found b'GARBA')")
    ]


TEST_DAT = (PYMARC / "test.dat").read_bytes()  # pymarc's ten good records


@pytest.mark.parametrize(
    ("padding", "shown"),
    [
        (b"\x1d", "1D"),
        (b"\x1d\x1d", "1D 1D"),
        (b"\x00", "00"),
        (b"\x1d\x1d\x00 \n", "1D 1D 00 20 0A"),
        (b"\r\n\x1a", "0D 0A 1A"),
        (b"\x00" * 2000, "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 …"),
    ],
)
def test_padding_after_the_last_record_is_one_warning(
    session: Session, padding: bytes, shown: str
) -> None:
    report = catalog.import_marc(session, None, TEST_DAT + padding, at=factories.NOW)
    session.commit()
    assert (report.read, report.created, report.bad) == (10, 10, [])
    assert count(session) == 10
    [warning] = report.warnings
    assert (warning.position, warning.offset, warning.control_number) == (10, len(TEST_DAT), None)
    assert warning.reason == (
        f"padding after the last record at byte {len(TEST_DAT)}, skipped: "
        f"{len(padding)} bytes ({shown})"
    )
    assert warning.template is not None and warning.template % warning.params == warning.reason


@pytest.mark.parametrize("workers", [1, 2])  # read here, or in parsing processes
def test_padding_between_records_is_skipped_with_a_warning(session: Session, workers: int) -> None:
    r = raws(TEST_DAT)
    data = b"".join(r[:3]) + b"\r\n" + b"".join(r[3:7]) + b"\x00" * 5 + b"\x1d" + b"".join(r[7:])
    report = catalog.import_marc(session, None, data, at=factories.NOW, workers=workers)
    assert (report.read, report.created, report.bad) == (10, 10, [])
    first, second = len(b"".join(r[:3])), len(b"".join(r[:7])) + 2
    assert [(w.position, w.offset, w.reason) for w in report.warnings] == [
        (3, first, f"padding between records at byte {first}, skipped: 2 bytes (0D 0A)"),
        (
            7,
            second,
            f"padding between records at byte {second}, skipped: 6 bytes (00 00 00 00 00 1D)",
        ),
    ]
    assert raws(data) == r  # the reader alone skips it too


def test_a_bad_record_among_padding_is_still_bad(session: Session) -> None:
    r = raws(TEST_DAT)
    garbage = r[0] + b"\x1d" + b"GARBAGE without a length\x1d" + r[1] + b"\x1d\x00"
    report = catalog.import_marc(session, None, garbage, at=factories.NOW)
    assert report.read == 3 and report.created == 2
    start = len(r[0]) + 1
    assert [(b.position, b.offset, b.reason) for b in report.bad] == [
        (2, start, f"no record length at byte {start} (found b'GARBA')")
    ]
    assert [(w.position, w.offset) for w in report.warnings] == [
        (1, len(r[0])),
        (3, len(garbage) - 2),
    ]


def test_852_holdings_become_items_once(session: Session) -> None:
    w = factories.world(session)
    r = pymarc.Record(leader="00000nam a2200000 a 4500")
    r.add_field(pymarc.Field(tag="001", data="H1"))
    r.add_field(
        pymarc.Field("245", pymarc.Indicators("1", "0"), [pymarc.Subfield("a", "Held twice")])
    )
    for lib, barcode in (("central", "H-0001"), ("CN-T0001-A", "H-0002"), ("mars", "H-0003")):
        r.add_field(
            pymarc.Field(
                "852",
                pymarc.Indicators(" ", " "),
                [
                    pymarc.Subfield("b", lib),
                    pymarc.Subfield("h", "PZ3"),
                    pymarc.Subfield("i", ".H4"),
                    pymarc.Subfield("p", barcode),
                ],
            )
        )
    report = catalog.import_marc(session, None, r.as_marc(), at=factories.NOW)
    assert report.items_created == 2
    assert any("852 names no library of ours ('mars')" in x.reason for x in report.warnings)
    items = session.scalars(select(catalog.Item).order_by(catalog.Item.barcode)).all()
    assert [(i.barcode, i.org_unit_id, i.call_number) for i in items] == [
        ("H-0001", w.central.id, "PZ3 .H4"),
        ("H-0002", w.airport.id, "PZ3 .H4"),
    ]
    again = catalog.import_marc(session, None, r.as_marc(), at=factories.NOW)
    assert (again.updated, again.items_created) == (1, 0)


def test_items_from_csv_name_their_record_library_and_shelf(session: Session) -> None:
    from biblioverse import libraries

    w = factories.world(session)
    libraries.add_location(
        session,
        None,
        w.central,
        libraries.LocationInput("2F-SCI", 2, "D", "Sciences", "自然科学", "S01", "S24"),
        at=factories.NOW,
    )
    catalog.import_marc(session, None, b"".join(raws(SAMPLE)[:3]), at=factories.NOW)
    text = (
        "barcode,control_number,isbn,library,location,call_number,item_type,price,rfid_tag\n"
        "X0001,00000002,,central,2F-SCI,RX671 .A92,book,28.00,E200001\n"
        "X0002,nope,,central,,,book,,\n"
        "X0003,00000002,,mars,,,book,,\n"
        "X0004,00000002,,central,9F-NONE,,book,,\n"
        "X0005,00000002,,central,,,toaster,,\n"
        "X0006,00000002,,central,,,book,cheap,\n"
        "X0001,00000002,,central,,,book,,\n"
        "X0008,00000002,,airport,,,reference,,E200001\n"
    )
    admin = w.actor(session, w.admin)
    report = catalog.import_items_csv(session, admin, text, at=factories.NOW)
    assert report.imported == 1
    assert [(e.line, e.field) for e in report.errors] == [
        (3, "control_number"),
        (4, "library"),
        (5, "location"),
        (6, "item_type"),
        (7, "price"),
        (8, "barcode"),
        (9, "rfid_tag"),
    ]
    item = session.scalars(select(catalog.Item)).one()
    assert (item.barcode, item.rfid_tag, str(item.price), item.circulates) == (
        "X0001",
        "E200001",
        "28.00",
        True,
    )


def test_item_csv_without_the_needed_columns_is_refused(session: Session) -> None:
    with pytest.raises(catalog.CatalogFileInvalid, match="control_number or isbn"):
        catalog.import_items_csv(session, None, "barcode,library\nA,central\n", at=factories.NOW)


def test_949_item_data_gives_items_with_their_type(session: Session) -> None:
    w = factories.world(session)
    r = pymarc.Record(leader="00000nam a2200000 a 4500")
    r.add_field(pymarc.Field(tag="001", data="V1"))
    r.add_field(
        pymarc.Field("245", pymarc.Indicators("1", "0"), [pymarc.Subfield("a", "Sent by a vendor")])
    )
    for barcode, kind in (("V-0001", "reference"), ("V-0002", "Book"), ("V-0003", "comic")):
        subfields = [
            pymarc.Subfield("b", "community"),
            pymarc.Subfield("h", "TP311"),
            pymarc.Subfield("p", barcode),
            pymarc.Subfield("t", kind),
        ]
        r.add_field(pymarc.Field("949", pymarc.Indicators(" ", " "), subfields))
    report = catalog.import_marc(session, None, r.as_marc(), at=factories.NOW)
    assert report.items_created == 3
    assert [x.reason for x in report.warnings] == [
        "949 $t 'comic' is no item type of ours; copy V-0003 made a book"
    ]
    items = session.scalars(select(catalog.Item).order_by(catalog.Item.barcode)).all()
    assert [(i.barcode, i.org_unit_id, i.item_type, i.circulates) for i in items] == [
        ("V-0001", w.community.id, "reference", True),
        ("V-0002", w.community.id, "book", True),
        ("V-0003", w.community.id, "book", True),
    ]


def test_new_records_get_fresh_ids_after_the_highest(session: Session) -> None:
    first = catalog.import_marc(session, None, b"".join(raws(SAMPLE)[:3]), at=factories.NOW)
    ids = session.scalars(select(catalog.Record.id).order_by(catalog.Record.id)).all()
    assert first.created == 3 and len(set(ids)) == 3
    records = cast(Table, catalog.Record.__table__)
    session.execute(records.delete().where(catalog.Record.id == ids[0]))
    catalog.import_marc(session, None, b"".join(raws(SAMPLE)[3:5]), at=factories.NOW)
    later = session.scalars(select(catalog.Record.id).order_by(catalog.Record.id)).all()
    assert len(later) == 4 and min(later[2:]) > max(ids)


def test_reindexing_replaces_documents_instead_of_adding_them(
    session: Session, tmp_path: Path
) -> None:
    catalog.import_marc(session, None, b"".join(raws(SAMPLE)[:30]), at=factories.NOW)
    index = catalog.TantivyIndex(tmp_path / "index")
    assert catalog.rebuild_index(session, index, batch=7) == 30
    ids = list(session.scalars(select(catalog.Record.id)))
    catalog.reindex_records(session, index, ids, batch=4)
    catalog.reindex_records(session, index, ids[:3])
    assert index.count() == 30
    catalog.rebuild_index(session, index)
    assert index.count() == 30


def test_a_refresh_waits_for_the_writer_another_worker_holds(
    session: Session, tmp_path: Path
) -> None:
    catalog.import_marc(session, None, b"".join(raws(SAMPLE)[:5]), at=factories.NOW)
    ids = list(session.scalars(select(catalog.Record.id)))
    mine = catalog.TantivyIndex(tmp_path / "index")
    other = catalog.TantivyIndex(tmp_path / "index")  # as the second server worker opens it
    busy = other.index.writer()  # held by "the other worker" for 0.2 s
    threading.Timer(0.2, busy.wait_merging_threads).start()
    catalog.reindex_records(session, mine, ids)
    assert mine.count() == 5


def test_parsing_processes_give_the_same_import_as_one(session: Session) -> None:
    data = b"".join(raws(SAMPLE)[:1200]) + (PYMARC / "bad_records.mrc").read_bytes()
    one = catalog.import_marc(session, None, data, at=factories.NOW, workers=1)
    session.rollback()
    two = catalog.import_marc(session, None, data, at=factories.NOW, workers=2)
    assert (two.read, two.created, len(two.bad)) == (one.read, one.created, len(one.bad))
    assert [(b.position, b.reason) for b in two.bad] == [(b.position, b.reason) for b in one.bad]
    assert count(session) == one.created


def test_new_records_are_searchable_once_both_commits_are_done(
    session: Session, tmp_path: Path
) -> None:
    index = catalog.TantivyIndex(tmp_path / "index")
    with index.staged() as staging:
        report = catalog.import_marc(
            session, None, b"".join(raws(SAMPLE)[:40]), at=factories.NOW, staging=staging
        )
        assert index.count() == 0  # written, not yet visible
        session.commit()
        staging.commit()
    assert index.count() == report.created == 40
    event = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id.desc())).first()
    assert event is not None and len(event.payload["indexed_ids"]) == 40
    # An import that fails leaves the index as it was.
    with pytest.raises(RuntimeError), index.staged() as staging:
        catalog.import_marc(
            session, None, b"".join(raws(SAMPLE)[40:80]), at=factories.NOW, staging=staging
        )
        raise RuntimeError("the database commit failed")
    assert index.count() == 40


def test_an_index_of_another_version_is_refused_or_replaced(tmp_path: Path) -> None:
    import tantivy

    b = tantivy.SchemaBuilder()
    b.add_text_field("title", stored=True)
    old = tantivy.Index(b.build(), path=str(tmp_path))
    writer = old.writer(15_000_000, 1)
    writer.commit()
    writer.wait_merging_threads()
    with pytest.raises(catalog.IndexOutdated, match="biblioverse index rebuild"):
        catalog.TantivyIndex(tmp_path)
    replaced = catalog.TantivyIndex(tmp_path, replace_outdated=True)
    assert replaced.replaced and replaced.count() == 0
    assert not catalog.TantivyIndex(tmp_path).replaced


def test_an_index_written_before_the_issn_field_is_rebuilt_not_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ISBNs and ISSNs are matched as exact terms since the issn field came: an index
    written without it would find no ISSN, so it counts as another version's."""
    import tantivy

    add_text_field = tantivy.SchemaBuilder.add_text_field

    def without_issn(self: tantivy.SchemaBuilder, name: str, **kw: Any) -> object:
        return self if name == "issn" else add_text_field(self, name, **kw)

    with monkeypatch.context() as m:
        m.setattr(tantivy.SchemaBuilder, "add_text_field", without_issn)
        catalog.TantivyIndex(tmp_path).upsert([catalog.SearchDoc(1, "Journal")])
    with pytest.raises(catalog.IndexOutdated):
        catalog.TantivyIndex(tmp_path)
    assert catalog.TantivyIndex(tmp_path, replace_outdated=True).replaced
