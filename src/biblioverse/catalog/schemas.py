"""Response models of the catalogue API."""

from __future__ import annotations

from pydantic import BaseModel


class HoldingOut(BaseModel):
    library_id: int
    library_code: str
    name_en: str
    name_zh: str
    total: int
    available: int


class HitOut(BaseModel):
    record_id: int
    title: str
    title_html: str
    title_vernacular: str | None
    authors: list[str]
    year: int | None
    language: str | None
    call_number: str | None
    holdings: list[HoldingOut]


class FacetValueOut(BaseModel):
    value: str
    count: int


class SearchOut(BaseModel):
    query: str
    total: int
    offset: int
    limit: int
    hits: list[HitOut]
    facets: dict[str, list[FacetValueOut]]
    fell_back: bool
    did_you_mean: str | None


class ItemOut(BaseModel):
    id: int
    barcode: str
    library_id: int
    location_id: int | None
    call_number: str | None
    item_type: str
    status: str
    circulates: bool


class RecordOut(BaseModel):
    id: int
    title: str
    title_vernacular: str | None
    responsibility: str | None
    authors: list[str]
    subjects: list[str]
    isbns: list[str]
    invalid_isbns: list[str]
    publisher: str | None
    year: int | None
    language: str | None
    edition: str | None
    physical_description: str | None
    series: list[str]
    notes: list[str]
    lcc: str | None
    ddc: str | None
    clc: str | None
    call_number: str | None
    holdings: list[HoldingOut]
    items: list[ItemOut]
