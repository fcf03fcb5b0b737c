"""Records and copies made and changed by staff: the form goes into MARC21 and back."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import audit, catalog
from biblioverse.catalog import marcio
from biblioverse.errors import DuplicateValue, PermissionDenied, ValidationFailed
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = gzip.decompress((ROOT / "src/biblioverse/catalog/data/loc-sample.mrc.gz").read_bytes())


def new_form() -> catalog.RecordForm:
    return catalog.RecordForm(
        title="The smart library handbook",
        responsibility="edited by Li Wei",
        authors=["Li, Wei", "  Zhang, San  ", ""],
        subjects=["Libraries -- Automation", "Radio frequency identification systems"],
        isbns=["978-7-02-000220-7", "0-14-044913-X"],
        publisher="Biblioverse Press",
        year=2026,
        language="ENG",
        edition="First edition",
        physical_description="xii, 300 pages",
        series=["Library futures"],
        notes=["Includes an index."],
        lcc="Z678.9",
        ddc="025.00285",
        clc="G250.7",
    )


def test_a_new_record_is_marc_that_reads_back_as_the_form(session: Session) -> None:
    w = factories.world(session)
    cataloguer = w.actor(session, w.cataloguer)
    record = catalog.save_record(session, cataloguer, None, new_form(), at=factories.NOW)
    assert record.title == "The smart library handbook"
    assert record.authors == ["Li, Wei", "Zhang, San"]
    assert record.isbns == ["9787020002207"]
    assert record.invalid_isbns == ["0-14-044913-X"]  # kept as written, flagged
    assert (record.year, record.language, record.clc) == (2026, "eng", "G250.7")
    assert record.call_number == "Z678.9"
    marc = marcio.to_record(record.marc, record.marc_utf8)
    assert marc["001"].data == str(record.id)
    assert marc["245"]["c"] == "edited by Li Wei"
    assert marc["650"].get_subfields("a", "x") == ["Libraries", "Automation"]
    form = catalog.record_form(session, record.id)
    assert form.isbns == ["9787020002207", "0-14-044913-X"]
    assert form.notes == ["Includes an index"]  # ISBD's closing full stop is not the note's
    assert (form.subjects, form.series, form.publisher) == (
        ["Libraries -- Automation", "Radio frequency identification systems"],
        ["Library futures"],
        "Biblioverse Press",
    )
    actions = [e.action for e in audit.entries(session, unit_ids=None, limit=5)]
    assert "catalog.record.create" in actions


def test_an_edit_rewrites_only_what_changed(session: Session) -> None:
    w = factories.world(session)
    cataloguer = w.actor(session, w.cataloguer)
    catalog.import_marc(session, None, SAMPLE, at=factories.NOW)
    record = session.scalars(
        select(catalog.Record).where(catalog.Record.title_vernacular.is_not(None))
    ).first()
    assert record is not None
    original, was_utf8 = record.marc, record.marc_utf8
    form = catalog.record_form(session, record.id)
    # Saving the form unchanged keeps the record's bytes.
    catalog.save_record(session, cataloguer, record.id, form, at=factories.NOW)
    assert record.marc == original
    form.notes = [*form.notes, "Copy signed by the author."]
    catalog.save_record(session, cataloguer, record.id, form, at=factories.NOW)
    before = marcio.to_record(original, was_utf8)
    after = marcio.to_record(record.marc, True)
    untouched = ("245", "880", "100", "700", "650", "260", "264", "020")
    for tag in untouched:
        assert [str(f) for f in before.get_fields(tag)] == [str(f) for f in after.get_fields(tag)]
    assert record.notes[-1] == "Copy signed by the author"
    assert record.title_vernacular  # the 880 script title is still there
    assert after["005"] is not None


def test_bad_forms_name_their_fields_and_readers_cannot_catalogue(session: Session) -> None:
    w = factories.world(session)
    form = catalog.RecordForm(title="  ", year=20260, language="english")
    with pytest.raises(ValidationFailed) as exc:
        catalog.save_record(session, w.actor(session, w.cataloguer), None, form, at=factories.NOW)
    assert {d["field"] for d in exc.value.details} == {"title", "year", "language"}
    with pytest.raises(PermissionDenied):
        catalog.save_record(
            session, w.actor(session, w.airport_desk), None, new_form(), at=factories.NOW
        )


def test_copies_change_in_their_own_library_only(session: Session) -> None:
    w = factories.world(session)
    record = catalog.save_record(
        session, w.actor(session, w.cataloguer), None, new_form(), at=factories.NOW
    )
    (item,) = catalog.add_items(
        session, None, [catalog.NewItem(record.id, "BV-0001", w.airport.id)], at=factories.NOW
    )
    airport = w.actor(session, w.airport_librarian)
    change = catalog.ItemChange(status="missing", call_number="Z678.9 .S6", price="58.5")
    catalog.update_item(session, airport, item.id, change, at=factories.NOW)
    assert (item.status, item.call_number, str(item.price)) == ("missing", "Z678.9 .S6", "58.50")
    with pytest.raises(PermissionDenied):
        catalog.update_item(
            session,
            w.actor(session, w.community_librarian),
            item.id,
            catalog.ItemChange(status="available"),
            at=factories.NOW,
        )
    with pytest.raises(ValidationFailed) as exc:
        catalog.update_item(
            session,
            airport,
            item.id,
            catalog.ItemChange(status="stolen", price="cheap", item_type="scroll"),
            at=factories.NOW,
        )
    assert {d["field"] for d in exc.value.details} == {"status", "price", "item_type"}
    (other,) = catalog.add_items(
        session, None, [catalog.NewItem(record.id, "BV-0002", w.airport.id)], at=factories.NOW
    )
    catalog.update_item(
        session, airport, item.id, catalog.ItemChange(rfid_tag="E004"), at=factories.NOW
    )
    with pytest.raises(DuplicateValue):
        catalog.update_item(
            session, airport, other.id, catalog.ItemChange(rfid_tag="E004"), at=factories.NOW
        )
