"""What a MARC record says: ISBNs, titles in two scripts, classification, year, language."""

from __future__ import annotations

import gzip
from pathlib import Path

import pymarc
import pytest

from biblioverse.catalog import marcio
from biblioverse.catalog.rules import RecordUnusable, extract, issn_ok, normalise_isbn
from biblioverse.catalog.search import facet_number, facet_value, title_marker

SAMPLE = Path(__file__).resolve().parents[2] / "src/biblioverse/catalog/data/loc-sample.mrc.gz"


@pytest.mark.parametrize(
    ("written", "isbn13"),
    [
        ("0-306-40615-2 (pbk.)", "9780306406157"),
        ("0-8044-2957-X", "9780804429573"),
        ("080442957x", "9780804429573"),
        ("978-7-02-000220-7", "9787020002207"),
        ("9787020002207 : CNY28.00", "9787020002207"),
        ("0-14-044913-X", None),  # wrong check digit
        ("979-1-234-56789-0", None),
        ("not an isbn", None),
    ],
)
def test_isbns_are_checked_and_normalised_to_13_digits(written: str, isbn13: str | None) -> None:
    assert normalise_isbn(written) == isbn13


def test_issn_check_digit() -> None:
    assert issn_ok("0317-8471") and issn_ok("2434-561X")
    assert not issn_ok("0317-8472")


def record(*fields: pymarc.Field, leader: str = "00000cam a2200000 a 4500") -> pymarc.Record:
    r = pymarc.Record(leader=leader)
    r.add_field(pymarc.Field(tag="001", data="bv-1"), *fields)
    return r


def sf(*pairs: str) -> list[pymarc.Subfield]:
    return [pymarc.Subfield(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]


def test_an_invalid_isbn_is_kept_as_written_and_flagged() -> None:
    e = extract(
        record(
            pymarc.Field("245", pymarc.Indicators("1", "0"), sf("a", "Title /", "c", "Someone.")),
            pymarc.Field("020", pymarc.Indicators(" ", " "), sf("a", "0-306-40615-2")),
            pymarc.Field("020", pymarc.Indicators(" ", " "), sf("a", "123-bad (pbk.)")),
        )
    )
    assert e.isbns == ["9780306406157"]
    assert e.invalid_isbns == ["123-bad (pbk.)"]
    assert e.title == "Title" and e.responsibility == "Someone"


def test_chinese_library_classification_from_084() -> None:
    e = extract(
        record(
            pymarc.Field("245", pymarc.Indicators("1", "0"), sf("a", "Hong lou meng")),
            pymarc.Field("084", pymarc.Indicators(" ", " "), sf("a", "I242.4", "2", "clc")),
        )
    )
    assert e.clc == "I242.4" and e.call_number == "I242.4"


def test_a_record_without_a_title_is_unusable() -> None:
    with pytest.raises(RecordUnusable, match="no title"):
        extract(record(pymarc.Field("100", pymarc.Indicators("1", " "), sf("a", "Nobody"))))


def test_real_records_from_the_sample() -> None:
    data = gzip.decompress(SAMPLE.read_bytes())
    reads = list(marcio.read_iso2709(data))
    assert len(reads) == 3000 and not [r for r in reads if r.error]
    first = extract(reads[0].record)  # type: ignore[arg-type]
    assert first.control_number == "00000002" and first.control_number_source == "DLC"
    assert first.title.startswith("Botanical materia medica and pharmacology")
    assert first.authors == ["Aurand, Samuel Herbert, 1854-"]
    assert first.year == 1899 and first.language == "eng" and first.lcc == "RX671 .A92"
    assert "Homeopathy -- Materia medica and therapeutics" in first.subjects
    chinese = [extract(r.record) for r in reads[2000:]]  # type: ignore[arg-type]
    with_script = [
        e
        for e in chinese
        if e.title_vernacular and any("\u4e00" <= c <= "\u9fff" for c in e.title_vernacular)
    ]
    assert len(with_script) > 500


@pytest.mark.parametrize(
    ("query", "title", "html"),
    [
        ("materia medica", "Materia medica", "<b>Materia</b> <b>medica</b>"),
        ("art", "Martin & art <1900>", "Martin &amp; <b>art</b> &lt;1900&gt;"),
        ("hist*", "History of art", "<b>Hist</b>ory of art"),
        (
            '"united states" -congress',
            "United States Congress",
            "<b>United</b> <b>States</b> Congress",
        ),
        ("author:shakespeare hamlet", "Hamlet, Shakespeare", "<b>Hamlet</b>, Shakespeare"),
        ("cats AND dogs", "Cats and dogs", "<b>Cats</b> and <b>dogs</b>"),
        ("研究", "近代日本研究", "近代日本<b>研究</b>"),
        ("", "A <b> title", "A &lt;b&gt; title"),
    ],
)
def test_titles_show_the_query_words_in_bold(query: str, title: str, html: str) -> None:
    assert title_marker(query)(title) == html


@pytest.mark.parametrize(
    ("name", "value", "number"),
    [
        ("decade", "1990s", 1990),
        ("decade", "850s", 850),
        ("decade", "1995s", None),
        ("decade", "nineties", None),
        ("availability", "available", 1),
        ("availability", "not_available", 0),
        ("availability", "yes", None),
        ("language", "eng", 3048),
        ("language", "aaa", 0),
        ("language", "zzz", 17575),
        ("language", "chi", 1542),
        ("language", "|||", None),
        ("language", "EN", None),
    ],
)
def test_numeric_facets_round_trip(name: str, value: str, number: int | None) -> None:
    assert facet_number(name, value) == number
    if number is not None:
        assert facet_value(name, number) == value
