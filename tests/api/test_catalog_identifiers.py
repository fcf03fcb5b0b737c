"""Catalogue search finds what people type: ISBNs and ISSNs however written, Chinese titles
in their own script first, languages by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pymarc
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog
from tests import factories
from tests.factories import World

ZH = {"Accept-Language": "zh-CN"}


def marc(title: str, language: str, *fields: pymarc.Field) -> bytes:
    r = pymarc.Record(force_utf8=True)
    r.leader = pymarc.Leader("     nam a22     7a 4500")
    r.add_field(pymarc.Field(tag="008", data=f"200101s2001    xx            000 0 {language} d"))
    r.add_field(
        pymarc.Field(
            tag="245",
            indicators=pymarc.Indicators("1", "0"),
            subfields=[pymarc.Subfield("a", title)],
        ),
        *fields,
    )
    return r.as_marc()


def sub(tag: str, code: str, value: str, *more: pymarc.Subfield) -> pymarc.Field:
    return pymarc.Field(
        tag=tag,
        indicators=pymarc.Indicators(" ", " "),
        subfields=[*more, pymarc.Subfield(code, value)],
    )


RECORDS = b"".join(
    [
        # Catalogued with the ISBN-13 written with hyphens.
        marc("Crime and punishment", "eng", sub("020", "a", "978-0-14-044913-6 (pbk.)")),
        # Catalogued with an ISBN-10.
        marc("The loom of destiny", "eng", sub("020", "a", "0836932722")),
        marc("Journal of open research", "eng", sub("022", "a", "2049-3630")),
        marc(
            "Hong lou meng yan jiu",
            "chi",
            sub("880", "a", "红楼梦研究", pymarc.Subfield("6", "245-01/$1")),
        ),
        marc("Dictionnaire des idées reçues", "fre"),
        marc("Ilias", "grc"),
        marc("Codex of nowhere", "xxq"),
    ]
)


@pytest.fixture()
def catalogued(session: Session, world: World, app: FastAPI, tmp_path: Path) -> Iterator[World]:
    catalog.import_marc(session, None, RECORDS, at=factories.NOW)
    ids = list(session.scalars(select(catalog.Record.id).order_by(catalog.Record.id)))
    catalog.add_items(
        session,
        None,
        [catalog.NewItem(rid, f"I{rid:06d}", world.central.id) for rid in ids],
        at=factories.NOW,
    )
    session.commit()
    previous = app.state.search_index
    app.state.search_index = catalog.TantivyIndex.recreate(tmp_path / "index")
    catalog.rebuild_index(session, app.state.search_index)
    session.rollback()
    yield world
    app.state.search_index = previous


def titles(client: TestClient, q: str) -> list[str]:
    body = client.get("/api/v1/catalog/search", params={"q": q}).json()
    return [h["title"] for h in body["hits"]]


@pytest.mark.parametrize(
    "typed",
    [
        "0140449132",
        "0-14-044913-2",
        "0 14 044913 2",
        "9780140449136",
        "978-0-14-044913-6",
        "978 0 14 044913 6",
        "isbn:0-14-044913-2",
        "ISBN 9780140449136",
    ],
)
def test_an_isbn_typed_any_way_finds_the_record_catalogued_with_its_isbn13(
    client: TestClient, catalogued: World, typed: str
) -> None:
    assert titles(client, typed) == ["Crime and punishment"]


@pytest.mark.parametrize("typed", ["0836932722", "0-8369-3272-2", "978-0-8369-3272-0"])
def test_an_isbn13_typed_finds_the_record_catalogued_with_its_isbn10(
    client: TestClient, catalogued: World, typed: str
) -> None:
    assert titles(client, typed) == ["The loom of destiny"]


@pytest.mark.parametrize("typed", ["2049-3630", "20493630", "issn:2049-3630"])
def test_an_issn_with_or_without_its_hyphen_finds_the_record(
    client: TestClient, catalogued: World, typed: str
) -> None:
    assert titles(client, typed) == ["Journal of open research"]


def test_an_identifier_with_a_wrong_check_digit_finds_nothing_by_accident(
    client: TestClient, catalogued: World
) -> None:
    assert titles(client, "0-14-044913-3") == []
    assert titles(client, "2049-3631") == []


def test_a_chinese_record_leads_with_its_title_in_chinese_characters(
    client: TestClient, catalogued: World, session: Session
) -> None:
    hit = client.get("/api/v1/catalog/search", params={"q": "研究"}).json()["hits"][0]
    assert hit["title_html"] == "红楼梦<b>研究</b>"
    assert hit["title_secondary_html"] == "Hong lou meng yan jiu"
    plain = client.get("/api/v1/catalog/search", params={"q": "destiny"}).json()["hits"][0]
    assert plain["title_html"] == "The loom of <b>destiny</b>"
    assert plain["title_secondary_html"] is None
    for headers in ({}, ZH):
        html = client.get("/catalog", params={"q": "hong lou"}, headers=headers).text
        lead = re.search(
            r'<a class="hit-title"[^>]*lang="zh"[^>]*>(.*?)</a>\s*<p class="vernacular">(.*?)</p>',
            html,
        )
        assert lead and lead.group(1) == "红楼梦研究", html
        assert lead.group(2) == "<b>Hong</b> <b>lou</b> meng yan jiu"
    rid = session.scalars(select(catalog.Record.id).where(catalog.Record.language == "chi")).one()
    for headers in ({}, ZH):
        page = client.get(f"/catalog/records/{rid}", headers=headers).text
        assert '<h1 lang="zh">红楼梦研究</h1>' in page
        assert '<p class="vernacular">Hong lou meng yan jiu</p>' in page
    other = client.get("/catalog", params={"q": "destiny"}).text
    assert '<a class="hit-title" href="/catalog/records/' in other
    assert '<p class="vernacular">' not in other


def language_facet(html: str) -> list[str]:
    block = re.search(r"<summary>(?:Language|语种)</summary>\s*<ul>(.*?)</ul>", html, re.S)
    assert block, html
    return [
        " ".join(re.sub(r"<[^>]+>", " ", li).split())
        for li in re.findall(r"<li>(.*?)</li>", block.group(1), re.S)
    ]


def test_the_language_facet_names_languages_in_english_and_chinese(
    client: TestClient, catalogued: World
) -> None:
    english = language_facet(client.get("/catalog").text)
    assert {"English 3", "Chinese 1", "French 1", "Ancient Greek 1", "xxq 1"} <= set(english)
    chinese = language_facet(client.get("/catalog", headers=ZH).text)
    assert {"英文 3", "中文 1", "法文 1", "古希腊文 1", "xxq 1"} <= set(chinese)
    # The filter still goes by code.
    assert (
        titles(client, "")
        and client.get("/api/v1/catalog/search", params={"language": "grc"}).json()["total"] == 1
    )
