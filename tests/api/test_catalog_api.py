"""The union catalogue through the API: search with facets, holdings, records as MARC."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import catalog
from biblioverse.catalog import marcio
from tests import factories
from tests.factories import World

SAMPLE = gzip.decompress(
    (
        Path(__file__).resolve().parents[2] / "src/biblioverse/catalog/data/loc-sample.mrc.gz"
    ).read_bytes()
)
# 300 English records and 100 with Chinese script: enough to search, quick to load.
RAWS = [r.raw for r in marcio.read_iso2709(SAMPLE) if r.raw]
PART = b"".join(RAWS[:300] + RAWS[2000:2100])


@pytest.fixture()
def shelved(session: Session, world: World, app: FastAPI, tmp_path: Path) -> Iterator[World]:
    """The sample part imported, a copy of each record at central, every fifth at the
    airport too, and a fresh index for this test."""
    catalog.import_marc(session, None, PART, at=factories.NOW)
    ids = list(session.scalars(select(catalog.Record.id).order_by(catalog.Record.id)))
    items = [catalog.NewItem(rid, f"C{rid:06d}", world.central.id) for rid in ids]
    items += [
        catalog.NewItem(
            rid, f"A{rid:06d}", world.airport.id, item_type="reference", status="on_loan"
        )
        for rid in ids[::5]
    ]
    catalog.add_items(session, None, items, at=factories.NOW)
    session.commit()
    previous = app.state.search_index
    app.state.search_index = catalog.TantivyIndex.recreate(tmp_path / "index")
    catalog.rebuild_index(session, app.state.search_index)
    session.rollback()  # end the read: on SQLite it holds the write lock (ADR 0005)
    yield world
    app.state.search_index = previous


def test_search_finds_real_records_with_holdings(client: TestClient, shelved: World) -> None:
    r = client.get("/api/v1/catalog/search", params={"q": "materia medica"})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] >= 1
    top = body["hits"][0]
    assert "materia medica" in top["title"].lower()
    assert "<b>" in top["title_html"]
    assert top["holdings"][0]["library_code"] == "central" and top["holdings"][0]["available"] == 1


def test_chinese_titles_are_found_by_their_words(client: TestClient, shelved: World) -> None:
    # "研究" (research) stands inside longer runs such as "近代日本研究": only segmentation
    # makes it a word of its own.
    body = client.get("/api/v1/catalog/search", params={"q": "研究"}).json()
    assert body["total"] >= 5
    assert all("研究" in (h["title_vernacular"] or "") for h in body["hits"])
    assert "<b>" in body["hits"][0]["title_html"]


def test_facets_count_and_filter(client: TestClient, shelved: World) -> None:
    body = client.get("/api/v1/catalog/search").json()
    assert body["total"] == 400
    libraries = {f["value"]: f["count"] for f in body["facets"]["library"]}
    assert libraries == {"central": 400, "airport": 80}
    langs = {f["value"]: f["count"] for f in body["facets"]["language"]}
    assert langs["eng"] == 292 and langs["jpn"] == 55 and langs["chi"] == 45
    airport = client.get("/api/v1/catalog/search", params={"library": "airport"}).json()
    assert airport["total"] == 80
    chinese_at_airport = client.get(
        "/api/v1/catalog/search", params={"library": "airport", "language": "chi"}
    ).json()
    assert 0 < chinese_at_airport["total"] < 80


def test_fielded_queries_sorting_and_paging(client: TestClient, shelved: World) -> None:
    by_author = client.get("/api/v1/catalog/search", params={"q": "author:aurand"}).json()
    assert [h["authors"][0] for h in by_author["hits"]] == ["Aurand, Samuel Herbert, 1854-"]
    newest = client.get("/api/v1/catalog/search", params={"sort": "year_desc", "limit": 5}).json()
    years = [h["year"] for h in newest["hits"]]
    assert years == sorted(years, reverse=True)
    page2 = client.get(
        "/api/v1/catalog/search", params={"offset": 5, "limit": 5, "sort": "year_desc"}
    ).json()
    assert {h["record_id"] for h in page2["hits"]}.isdisjoint(
        {h["record_id"] for h in newest["hits"]}
    )


def test_bad_syntax_falls_back_and_typos_get_a_suggestion(
    client: TestClient, shelved: World
) -> None:
    r = client.get("/api/v1/catalog/search", params={"q": 'materia "medica ((('})
    assert r.status_code == 200 and r.json()["fell_back"] is True and r.json()["total"] >= 1
    typo = client.get("/api/v1/catalog/search", params={"q": "botanicel"}).json()
    assert typo["total"] == 0 and typo["did_you_mean"] == "botanical"
    assert "botanical" in client.get("/api/v1/catalog/suggest", params={"q": "bota"}).json()


def test_a_record_in_json_marcxml_and_marc(
    client: TestClient, shelved: World, session: Session
) -> None:
    rid = session.scalars(select(catalog.Record.id).order_by(catalog.Record.id)).first()
    session.rollback()
    j = client.get(f"/api/v1/catalog/records/{rid}").json()
    assert j["title"].startswith("Botanical materia medica")
    assert [h["library_code"] for h in j["holdings"]] == ["central", "airport"]
    assert {i["item_type"]: i["circulates"] for i in j["items"]} == {
        "book": True,
        "reference": True,  # the rule matrix, not the copy, says whether it is lent
    }
    marc = client.get(f"/api/v1/catalog/records/{rid}", params={"format": "marc"})
    assert marc.headers["content-type"] == "application/marc" and marc.content == RAWS[0]
    xml = client.get(f"/api/v1/catalog/records/{rid}", params={"format": "marcxml"})
    assert b"<datafield" in xml.content and b"Botanical materia medica" in xml.content
    assert client.get("/api/v1/catalog/records/999999").status_code == 404


def test_catalogue_pages_show_results_facets_and_the_record(
    client: TestClient, shelved: World, session: Session
) -> None:
    html = client.get("/catalog", params={"q": "materia medica"}).text
    assert "Botanical" in html and 'class="facets"' in html and "Central Library" in html
    fragment = client.get(
        "/catalog",
        params={"q": "materia medica", "library": "airport"},
        headers={"HX-Request": "true"},
    ).text
    assert "<html" not in fragment and 'aria-current="true"' in fragment
    rid = session.scalars(select(catalog.Record.id).order_by(catalog.Record.id)).first()
    assert rid is not None
    page = client.get(f"/catalog/records/{rid}").text
    assert '<script type="application/ld+json">' in page and '"@type": "Book"' in page
    assert "Where to find it" in page and "for use in the library" not in page
    # The library keeps its central copy in (on exhibition, say): the page says so.
    central = session.scalars(
        select(catalog.Item).where(
            catalog.Item.record_id == rid, catalog.Item.org_unit_id == shelved.central.id
        )
    ).one()
    central.circulates = False
    session.commit()
    assert "for use in the library" in client.get(f"/catalog/records/{rid}").text
    assert client.get("/catalog/suggest", params={"q": "bota"}).text.count("<option") >= 1
    zh = client.get("/catalog", params={"q": "研究"}, headers={"Accept-Language": "zh-CN"}).text
    assert "种" in zh and "馆藏目录" in zh


def test_a_result_set_exports_as_marc_and_marcxml(client: TestClient, shelved: World) -> None:
    r = client.get("/api/v1/catalog/export", params={"q": "materia medica", "format": "marc"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/marc"
    count = int(r.headers["x-record-count"])
    assert count >= 1
    exported = [x.raw for x in marcio.read_iso2709(r.content)]
    assert len(exported) == count and all(raw in RAWS for raw in exported)
    xml = client.get("/api/v1/catalog/export", params={"library": "airport"})
    assert xml.headers["x-record-count"] == "80" and xml.content.count(b"<record>") == 80


def test_subjects_are_counted_when_asked_for(client: TestClient, shelved: World) -> None:
    plain = client.get("/api/v1/catalog/search", params={"q": "china"}).json()
    assert "subject" not in plain["facets"] and "language" in plain["facets"]
    asked = client.get(
        "/api/v1/catalog/search", params={"q": "china", "facets": ["subject", "language"]}
    ).json()
    assert set(asked["facets"]) == {"subject", "language"}
    assert asked["facets"]["subject"][0]["count"] >= 1
    page = client.get("/catalog", params={"q": "china"}).text
    assert 'hx-get="/catalog/facet/subject?q=china"' in page
    fragment = client.get("/catalog/facet/subject", params={"q": "china"}).text
    assert "<li>" in fragment and 'class="count"' in fragment and "<html" not in fragment
    chosen = asked["facets"]["subject"][0]["value"]
    narrowed = client.get("/catalog", params={"q": "china", "subject": chosen}).text
    assert 'class="facet-on"' in narrowed


def test_a_catalogued_record_and_copy_are_found_at_once(
    client: TestClient,
    session: Session,
    shelved: World,
    as_staff: Callable[[str], dict[str, str]],
) -> None:
    airport_id = shelved.airport.id
    session.rollback()  # end the read: on SQLite it holds the write lock (ADR 0005)
    staff = as_staff("cataloguer")
    body = {
        "title": "Smart shelves and the reader",
        "authors": ["Wang, Fang"],
        "subjects": ["Libraries -- Automation"],
        "isbns": ["978-7-02-000220-7"],
        "year": 2026,
        "language": "chi",
    }
    r = client.post("/api/v1/catalog/records", json=body, headers=staff)
    assert r.status_code == 201, r.text
    record = r.json()
    assert (record["isbns"], record["year"], record["holdings"]) == (["9787020002207"], 2026, [])
    marc = client.get(f"/api/v1/catalog/records/{record['id']}?format=marcxml").text
    assert "Smart shelves and the reader" in marc and 'tag="650"' in marc
    item = {"record_id": record["id"], "barcode": "NEW-0001", "library_id": airport_id}
    airport = as_staff("airport-lib")
    assert client.post("/api/v1/catalog/items", json=item, headers=airport).status_code == 201
    again = client.post("/api/v1/catalog/items", json=item, headers=airport)
    assert again.status_code == 409 and again.json()["details"]["field"] == "barcode"
    hits = client.get("/api/v1/catalog/search", params={"q": "smart shelves"}).json()["hits"]
    assert hits[0]["record_id"] == record["id"]
    assert [(h["library_code"], h["available"]) for h in hits[0]["holdings"]] == [("airport", 1)]
    # A change to the copy reaches the search results: availability comes from the index.
    item_id = client.get(f"/api/v1/catalog/records/{record['id']}").json()["items"][0]["id"]
    r = client.patch(
        f"/api/v1/catalog/items/{item_id}", json={"status": "missing"}, headers=airport
    )
    assert r.status_code == 200 and r.json()["status"] == "missing"
    hits = client.get("/api/v1/catalog/search", params={"q": "smart shelves"}).json()["hits"]
    (hit,) = [h for h in hits if h["record_id"] == record["id"]]
    assert hit["holdings"][0]["available"] == 0
    # Another library's staff may not touch the copy.
    other = client.patch(
        f"/api/v1/catalog/items/{item_id}",
        json={"status": "available"},
        headers=as_staff("community-lib"),
    )
    assert other.status_code == 403
    bad = client.put(
        f"/api/v1/catalog/records/{record['id']}",
        json={**body, "year": 20260, "language": "Chinese"},
        headers=staff,
    )
    assert bad.status_code == 422
