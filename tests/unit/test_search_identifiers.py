"""A query that is an ISBN or an ISSN, however written, becomes one exact term."""

from __future__ import annotations

from pathlib import Path

import pytest

from biblioverse.catalog.search import (
    SearchDoc,
    SearchQuery,
    TantivyIndex,
    identifier_term,
    issn_term,
)


@pytest.mark.parametrize(
    ("typed", "term"),
    [
        ("0140449132", ("isbn", "9780140449136")),
        ("0-14-044913-2", ("isbn", "9780140449136")),
        (" 0 14 044913 2 ", ("isbn", "9780140449136")),
        ("978-0-14-044913-6", ("isbn", "9780140449136")),
        ("isbn:0-14-044913-2", ("isbn", "9780140449136")),
        ("ISBN 9780140449136", ("isbn", "9780140449136")),
        ("0-8044-2957-x", ("isbn", "9780804429573")),
        ("2049-3630", ("issn", "20493630")),
        ("20493630", ("issn", "20493630")),
        ("issn: 0317-847x", None),  # wrong check digit
        ("0317-8471", ("issn", "03178471")),
        ("ISSN 0317-8471", ("issn", "03178471")),
    ],
)
def test_identifiers_are_normalised(typed: str, term: tuple[str, str] | None) -> None:
    assert identifier_term(typed) == term


@pytest.mark.parametrize(
    "typed",
    [
        "0-14-044913-3",
        "2049-3631",
        "1990",
        "history 0140449132",
        "isbn:2049-3630",
        "issn:0140449132",
        "",
        "title:0140449132",
        "12345678901234",
    ],
)
def test_other_queries_are_not_identifiers(typed: str) -> None:
    assert identifier_term(typed) is None


def test_an_issn_is_indexed_without_its_hyphen() -> None:
    assert issn_term("2049-363x") == "2049363X"
    assert issn_term(" 2049 3630") == "20493630"


def test_identifiers_match_exactly_in_the_index(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path)
    # An ISBN-10 handed to the index is held as its ISBN-13 (records hold ISBN-13 already).
    index.upsert(
        [
            SearchDoc(1, "Crime and punishment", isbns=["0140449132"]),
            SearchDoc(2, "Journal", issns=["2049-3630"]),
            SearchDoc(3, "9780140449136 in a title", notes=["20493630"]),
        ]
    )
    for typed in ("978-0-14-044913-6", "0 14 044913 2"):
        assert [h.record_id for h in index.search(SearchQuery(typed)).hits] == [1]
    for typed in ("2049-3630", "20493630"):
        assert [h.record_id for h in index.search(SearchQuery(typed)).hits] == [2]
    assert index.matching_ids(SearchQuery("0140449132"), 10) == [1]
