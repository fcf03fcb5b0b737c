"""Reader CSV import: bad rows are reported by line and field, good rows are kept."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biblioverse import readers
from tests import factories

HEADER = "card_number,name,email,phone,birth_date,home_library,category,expires_on,pin\n"


def test_good_rows_are_kept_and_bad_rows_named(session: Session) -> None:
    w = factories.world(session)
    text = HEADER + (
        "B0001,赵六,zhao@example.org,,1980-02-03,central,adult,,1357\n"
        "B0002,Bad Date,,,03/02/1980,central,adult,,\n"
        "B0003,Unknown Home,,,1980-02-03,mars,adult,,\n"
        "CARD000001,Duplicate Card,,,1980-02-03,central,adult,,\n"
        "B0005,Kid Without Guardian,,,2019-01-01,community,child,,\n"
        "B0006,Lisa Wong,lisa@example.org,+86 139 1234 5678,1975-12-24,airport,staff,2027-06-30,\n"
        "B0007,Too,Many,Fields,1980-01-01,central,adult,,,extra\n"
    )
    actor = w.actor(session, w.central_librarian)
    report = readers.import_csv(session, actor, text, at=factories.NOW)
    session.commit()
    assert report.imported == 2
    assert [(e.line, e.card_number, e.field) for e in report.errors] == [
        (3, "B0002", "birth_date"),
        (4, "B0003", "home_library"),
        (5, "CARD000001", "card_number"),
        (6, "B0005", "guardian_name"),
        (8, "B0007", "row"),
    ]
    lisa = readers.by_card(session, "B0006")
    assert lisa is not None and lisa.status == "active" and str(lisa.expires_on) == "2027-06-30"
    assert lisa.registered_via == "import" and lisa.pin_hash is None


def test_scope_applies_to_each_row(session: Session) -> None:
    w = factories.world(session)
    text = HEADER + "C0001,A,,,1980-01-01,airport,adult,,\nC0002,B,,,1980-01-01,community,adult,,\n"
    report = readers.import_csv(
        session, w.actor(session, w.airport_librarian), text, at=factories.NOW
    )
    assert report.imported == 1
    assert [(e.line, e.field) for e in report.errors] == [(3, "home_library")]


def test_rerunning_an_import_adds_nothing_twice(session: Session) -> None:
    w = factories.world(session)
    text = HEADER + "D0001,A,,,1980-01-01,central,adult,,\nD0002,B,,,1980-01-01,central,adult,,\n"
    actor = w.actor(session, w.central_librarian)
    assert readers.import_csv(session, actor, text, at=factories.NOW).imported == 2
    session.commit()
    again = readers.import_csv(session, actor, text, at=factories.NOW)
    assert again.imported == 0 and {e.field for e in again.errors} == {"card_number"}
    count = session.scalar(
        select(func.count())
        .select_from(readers.Reader)
        .where(readers.Reader.card_number.in_(["D0001", "D0002"]))
    )
    assert count == 2


def test_missing_columns_reject_the_whole_file(session: Session) -> None:
    w = factories.world(session)
    with pytest.raises(readers.ImportFileInvalid, match="missing column"):
        readers.import_csv(
            session, w.actor(session, w.admin), "name,email\nA,a@b.cn\n", at=factories.NOW
        )


def test_encodings() -> None:
    text = HEADER + "E1,王小明,,,1980-01-01,central,adult,,\n"
    assert readers.decode_csv(text.encode("gb18030")) == text
    assert readers.decode_csv(b"\xef\xbb\xbf" + text.encode()) == text
    with pytest.raises(readers.ImportFileInvalid, match="neither UTF-8 nor GB18030"):
        readers.decode_csv(b"\x81\x20\xff\xfe garbage")


def test_search_ignores_case_and_treats_wildcards_as_text(session: Session) -> None:
    w = factories.world(session)
    actor = w.actor(session, w.central_librarian)
    text = HEADER + "AbC0001,Zoë 100% Real,,,1980-01-01,central,adult,,\n"
    assert readers.import_csv(session, actor, text, at=factories.NOW).imported == 1
    session.commit()
    for q in ("abc0001", "ABC", "zoë", "100%"):
        rows, _ = readers.search(session, actor, q=q)
        assert [r.card_number for r in rows] == ["AbC0001"], q
    rows, _ = readers.search(session, actor, q="%")
    assert [r.card_number for r in rows] == ["AbC0001"]
    assert readers.search(session, actor, q="_")[1] == 0
