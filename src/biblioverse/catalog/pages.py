"""Union catalogue pages: search with facets and suggestions, and the record page."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from biblioverse import libraries
from biblioverse.catalog import service
from biblioverse.catalog.api import Filters, Index, holdings_of
from biblioverse.catalog.models import Item, Record
from biblioverse.catalog.search import DEFAULT_FACETS, FACETS, SearchQuery, fielded_phrase
from biblioverse.deps import ReadSession
from biblioverse.fields import DbId
from biblioverse.web.pages import PageActor, render

router = APIRouter(include_in_schema=False)
PAGE = 20


def _facet_links(
    counts: dict[str, list[tuple[str, int]]],
    filters: dict[str, list[str]],
    state: dict[str, Any],
) -> dict[str, list[tuple[str, int, bool, str]]]:
    """Each facet value with its count, whether it is chosen, and the link that toggles it."""
    return {
        name: [
            (
                value,
                count,
                value in filters[name],
                _link(
                    state,
                    **{
                        name: [v for v in filters[name] if v != value]
                        if value in filters[name]
                        else [*filters[name], value]
                    },
                ),
            )
            for value, count in counts.get(name, [])
        ]
        for name in FACETS
    }


def _link(base: dict[str, Any], **change: Any) -> str:
    params = {**base, **change}
    flat = [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs]) if v]
    return "/catalog?" + urlencode(flat)


@router.get("/catalog", response_class=HTMLResponse)
def catalogue(
    request: Request,
    session: ReadSession,
    index: Index,
    actor: PageActor,
    filters: Filters,
    q: Annotated[str, Query(max_length=500)] = "",
    sort: str = "relevance",
    page: Annotated[int, Query(ge=1, le=500)] = 1,
    all_facets: bool = False,
) -> Response:
    active = {k: v for k, v in filters.items() if v}
    sort = sort if sort in ("relevance", "year_desc", "year_asc", "title") else "relevance"
    # Subjects are counted when asked for (the page fetches them when a reader opens them,
    # or shows them at once when one is chosen or JavaScript is off and they were asked for).
    wanted = (*DEFAULT_FACETS, "subject") if (filters["subject"] or all_facets) else DEFAULT_FACETS
    result = index.search(SearchQuery(q, active, sort, (page - 1) * PAGE, PAGE, wanted))
    ids = [h.record_id for h in result.hits]
    records = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(ids)))}
    holdings = holdings_of(session, ids)
    units = {u.code: u for u in libraries.service_points(session)}
    state: dict[str, Any] = {"q": q, **filters, "sort": sort if sort != "relevance" else ""}
    facet_links = _facet_links(result.facets, filters, state)
    template = (
        "catalog/_results.html" if request.headers.get("hx-request") else "catalog/search.html"
    )
    return render(
        request,
        template,
        actor,
        q=q,
        result=result,
        records=records,
        holdings=holdings,
        units=units,
        facet_links=facet_links,
        sort=sort,
        page=page,
        pages=max(1, -(-result.total // PAGE)),
        state=state,
        link=_link,
        active=active,
        section="catalog",
    )


@router.get("/catalog/facet/subject", response_class=HTMLResponse)
def subject_facet(
    request: Request,
    index: Index,
    filters: Filters,
    q: Annotated[str, Query(max_length=500)] = "",
    sort: str = "",
) -> Response:
    """The subject facet alone, fetched when a reader opens it."""
    active = {k: v for k, v in filters.items() if v}
    result = index.search(SearchQuery(q, active, limit=1, facets=("subject",)))
    state: dict[str, Any] = {"q": q, **filters, "sort": sort}
    links = _facet_links(result.facets, filters, state)["subject"]
    return render(request, "catalog/_facet_values.html", None, values=links, name="subject")


@router.get("/catalog/suggest", response_class=HTMLResponse)
def suggest(
    request: Request, index: Index, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    return render(request, "catalog/_suggestions.html", None, suggestions=index.suggest(q))


def _json_ld(record: Record, isbn: str | None) -> str:
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Book",
        "name": record.title,
        "author": [{"@type": "Person", "name": a} for a in record.authors[:5]],
    }
    if record.title_vernacular:
        data["alternateName"] = record.title_vernacular
    if record.year:
        data["datePublished"] = str(record.year)
    if record.publisher:
        data["publisher"] = {"@type": "Organization", "name": record.publisher}
    if isbn:
        data["isbn"] = isbn
    if record.language:
        data["inLanguage"] = record.language
    if record.subjects:
        data["about"] = record.subjects[:10]
    # "</" can never close the script element early.
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


@router.get("/catalog/records/{record_id}", response_class=HTMLResponse)
def record_page(
    request: Request, record_id: DbId, session: ReadSession, index: Index, actor: PageActor
) -> Response:
    record = service.get_record(session, record_id)
    items = list(session.scalars(select(Item).where(Item.record_id == record.id).order_by(Item.id)))
    units = libraries.unit_names(session)
    locations = {
        loc.id: loc
        for uid in {i.org_unit_id for i in items}
        for loc in libraries.locations_of(session, uid)
    }
    like = None
    if record.subjects:
        heading = record.subjects[0].split(" -- ")[0]
        similar = index.search(SearchQuery(fielded_phrase("subject", heading), limit=6))
        like_ids = [h.record_id for h in similar.hits if h.record_id != record.id][:5]
        like = list(session.scalars(select(Record).where(Record.id.in_(like_ids))))
    return render(
        request,
        "catalog/record.html",
        actor,
        record=record,
        items=items,
        units=units,
        locations=locations,
        more_like_this=like or [],
        json_ld=_json_ld(record, record.isbns[0] if record.isbns else None),
        fielded_phrase=fielded_phrase,
        section="catalog",
    )
