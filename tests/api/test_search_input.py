"""Whatever a person types into a search answers 200: the catalogue API and pages, the subject
facet, suggestions, the export and the 3D library's find."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from biblioverse import catalog
from tests import factories
from tests.factories import World

QUOTED_SUBJECT = 'Children\'s "best" books'

# Pieces of query syntax and of ordinary text in several scripts, joined at random: far
# likelier than random characters to reach the corners of the query grammar.
PIECES = [
    *"\"'`<>=()[]{}:^~*?\\/+-!&|.,;#@%$",
    *("AND", "OR", "NOT", "IN", "TO", "&&", "||", "and"),
    *("author:", "title:", "subject:", "isbn:", "callnumber:", "year:", "nofield:", "f_library:"),
    *("O'Reilly", "children's", "tabb", "history", "best", "红楼梦", "研究", "日本の歴史"),
    *("العربي", "تاريخ", "😀", "👩‍👩‍👧", "Ünïcödé", "x", "1990", "978-0-13", "\u200b", "\t"),
]
typed = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(PIECES), max_size=8).map("".join),
    st.lists(st.sampled_from(PIECES), max_size=8).map(" ".join),
)
facet_value = st.one_of(st.text(max_size=20), st.sampled_from([QUOTED_SUBJECT[:20], "'", '"']))


@pytest.fixture()
def small_index(
    session: Session, world: World, app: FastAPI, tmp_path: Path
) -> Iterator[dict[str, int]]:
    """A handful of records in several scripts, one copy each at central, and a fresh index."""
    cataloguer = world.actor(session, world.cataloguer)
    forms = {
        "oreilly": catalog.RecordForm(
            title="Hard-won lessons of O'Reilly", authors=["O'Reilly, Tim"], year=1999
        ),
        "quoted": catalog.RecordForm(
            title="Stories for the young", subjects=[QUOTED_SUBJECT], language="eng"
        ),
        "chinese": catalog.RecordForm(title="红楼梦研究", subjects=["红楼梦 -- 研究"]),
        "japanese": catalog.RecordForm(title="日本の歴史", language="jpn"),
        "arabic": catalog.RecordForm(title="تاريخ الأدب العربي", language="ara"),
        "tabb": catalog.RecordForm(title="History of China", authors=["Tabb, Anne"]),
    }
    ids = {}
    for n, (key, form) in enumerate(forms.items()):
        record = catalog.save_record(session, cataloguer, None, form, at=factories.NOW)
        catalog.add_items(
            session,
            None,
            [catalog.NewItem(record.id, f"S{n:04d}", world.central.id)],
            at=factories.NOW,
        )
        ids[key] = record.id
    # Read before the commit expires it: loading it later would begin a transaction that
    # holds SQLite's write lock until teardown, and the app's relay would wait on it.
    ids["central"] = world.central.id
    session.commit()
    previous = app.state.search_index
    app.state.search_index = catalog.TantivyIndex.recreate(tmp_path / "index")
    catalog.rebuild_index(session, app.state.search_index)
    session.rollback()  # end the read: on SQLite it holds the write lock (ADR 0005)
    yield ids
    app.state.search_index = previous


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(q=typed, subject=facet_value, language=facet_value)
def test_any_typed_query_answers(
    client: TestClient, small_index: dict[str, int], q: str, subject: str, language: str
) -> None:
    filters = {"subject": subject, "language": language}
    api = client.get("/api/v1/catalog/search", params={"q": q, "facets": ["subject"]})
    assert api.status_code == 200, (q, api.text)
    assert isinstance(api.json()["total"], int)
    narrowed = client.get("/api/v1/catalog/search", params={"q": q, **filters})
    assert narrowed.status_code == 200, (q, filters, narrowed.text)
    assert client.get("/catalog", params={"q": q}).status_code == 200
    assert client.get("/catalog", params={"q": q, **filters}).status_code == 200
    assert client.get("/catalog/facet/subject", params={"q": q, **filters}).status_code == 200
    assert client.get("/api/v1/catalog/suggest", params={"q": q}).status_code == 200
    assert client.get("/catalog/suggest", params={"q": q}).status_code == 200
    export = client.get("/api/v1/catalog/export", params={"q": q, **filters})
    assert export.status_code == 200, (q, export.text)
    if q:  # the find needs something to find; "no copy matches" is its 404
        find = client.get(f"/api/v1/libraries/{small_index['central']}/find", params={"q": q})
        assert find.status_code in (200, 404), (q, find.text)
        if find.status_code == 404:
            assert find.json()["error"] == "place_not_found"


@pytest.mark.parametrize("q", ["O'Reilly", "o'reilly", "author:O'Reilly", "O'Reilly lessons"])
def test_an_apostrophe_finds_the_name(
    client: TestClient, small_index: dict[str, int], q: str
) -> None:
    body = client.get("/api/v1/catalog/search", params={"q": q}).json()
    assert [h["record_id"] for h in body["hits"]] == [small_index["oreilly"]]
    assert body["fell_back"] is False


@pytest.mark.parametrize("q", ["AND", "a OR", "NOT", "<b>", "`", "children's", 'tabb "china'])
def test_operators_and_stray_marks_are_words(
    client: TestClient, small_index: dict[str, int], q: str
) -> None:
    r = client.get("/api/v1/catalog/search", params={"q": q})
    assert r.status_code == 200, r.text
    assert client.get("/catalog", params={"q": q}).status_code == 200


def test_fielded_queries_and_phrases_still_work(
    client: TestClient, small_index: dict[str, int]
) -> None:
    def ids(q: str) -> list[int]:
        body = client.get("/api/v1/catalog/search", params={"q": q}).json()
        return [h["record_id"] for h in body["hits"]]

    assert ids("author:tabb") == [small_index["tabb"]]
    assert ids("title:tabb") == []
    assert ids('"history of china"') == [small_index["tabb"]]
    assert ids("history -china") == []
    assert set(ids("history OR lessons")) == {small_index["tabb"], small_index["oreilly"]}
    malformed = client.get("/api/v1/catalog/search", params={"q": "author:(tabb"}).json()
    assert malformed["fell_back"] is True
    assert [h["record_id"] for h in malformed["hits"]] == [small_index["tabb"]]


def test_a_subject_with_both_quotes_has_a_record_page_and_a_working_link(
    client: TestClient, small_index: dict[str, int]
) -> None:
    rid = small_index["quoted"]
    page = client.get(f"/catalog/records/{rid}")
    assert page.status_code == 200
    links = [
        unescape(href)
        for href, text in re.findall(r'<a href="([^"]*)">([^<]*)</a>', page.text)
        if unescape(text) == QUOTED_SUBJECT
    ]
    assert len(links) == 1
    found = client.get(links[0])
    assert found.status_code == 200 and f"/catalog/records/{rid}" in found.text
    # the subject as a facet, on the page, its fragment and the API
    facet = client.get("/catalog", params={"subject": QUOTED_SUBJECT})
    assert facet.status_code == 200 and f"/catalog/records/{rid}" in facet.text
    fragment = client.get("/catalog/facet/subject", params={"q": "stories"})
    assert fragment.status_code == 200 and "Children&#39;s &#34;best&#34; books" in fragment.text
    api = client.get("/api/v1/catalog/search", params={"subject": QUOTED_SUBJECT}).json()
    assert [h["record_id"] for h in api["hits"]] == [rid]
