"""What a reader types becomes a tantivy query, never an error (no database: a small index)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biblioverse.catalog.search import (
    BOOSTS,
    SearchDoc,
    SearchQuery,
    TantivyIndex,
    fielded_phrase,
    literal_words,
    readable,
)

SUBJECT = 'Children\'s "best" books'
PIECES = [
    *"\"'`<>=()[]{}:^~*?\\/+-!&|",
    *("AND", "OR", "NOT", "IN", "TO", "&&", "||", "author:", "title:", "year:", "nope:"),
    *("O'Reilly", "history", "红楼梦", "日本の歴史", "العربي", "😀", "x", "1990", "\x00", "\n"),
]
typed = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=10).map("".join),
    st.lists(st.sampled_from(PIECES), max_size=10).map(" ".join),
)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> TantivyIndex:
    idx = TantivyIndex(tmp_path_factory.mktemp("index"))
    idx.upsert(
        [
            SearchDoc(1, "Hard-won lessons", authors=["O'Reilly, Tim"], year=1999),
            SearchDoc(2, "History of China", authors=["Tabb, Anne"], subjects=[SUBJECT]),
            SearchDoc(3, "红楼梦研究", language="chi"),
        ]
    )
    return idx


def ids(index: TantivyIndex, text: str) -> list[int]:
    return sorted(h.record_id for h in index.search(SearchQuery(text)).hits)


@settings(max_examples=400, deadline=None)
@given(text=typed)
def test_any_text_is_a_query(index: TantivyIndex, text: str) -> None:
    page = index.search(SearchQuery(text, {"subject": [text[:20]]}, facets=("subject",)))
    assert page.total >= 0
    index.matching_ids(SearchQuery(text), 10)
    index.suggest(text)
    # the fallback is quoted words, which the grammar always takes
    words = literal_words(text)
    if words:
        index.index.parse_query(words, list(BOOSTS))


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["title", "author", "subject"]), text=st.text(max_size=40))
def test_a_fielded_phrase_parses_whatever_it_holds(
    index: TantivyIndex, name: str, text: str
) -> None:
    index.index.parse_query(readable(fielded_phrase(name, text)), list(BOOSTS))


def test_names_with_apostrophes_are_words_not_syntax(index: TantivyIndex) -> None:
    assert readable("O'Reilly `x` <b> year:>1990") == "O\\'Reilly \\`x\\` \\<b\\> year:>1990"
    assert ids(index, "O'Reilly") == ids(index, "author:o'reilly") == [1]
    assert not index.search(SearchQuery("O'Reilly")).fell_back
    assert ids(index, fielded_phrase("subject", SUBJECT)) == [2]


def test_what_does_not_parse_is_searched_as_words(index: TantivyIndex) -> None:
    assert literal_words('author:(tabb "china AND !!! nope:x') == (
        'author:"(tabb" "\\"china" "AND" "nope:x"'
    )
    page = index.search(SearchQuery("author:(tabb"))
    assert page.fell_back and [h.record_id for h in page.hits] == [2]
    assert ids(index, 'history "china') == [2]
    assert index.search(SearchQuery("AND")).fell_back
    assert ids(index, "!!!") == []


def test_exclusions_alone_mean_everything_else(index: TantivyIndex) -> None:
    assert ids(index, "-history") == ids(index, "NOT history") == [1, 3]
    assert ids(index, "OR history") == []  # the word "or" with history, not everything
