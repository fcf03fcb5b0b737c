"""Response models of the catalogue API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from biblioverse.catalog.rules import ItemStatus, ItemType
from biblioverse.fields import DbId, Line


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
    title_html: str = Field(
        description="The leading title, escaped, matched words in <b>: the title in its own "
        "script (880) when the record has one"
    )
    title_secondary_html: str | None = Field(
        None, description="The romanised title under one in its own script, marked the same way"
    )
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
    record_id: int
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


Lines = Annotated[list[Annotated[Line, Field(max_length=2000)]], Field(max_length=200)]


class RecordIn(BaseModel):
    """A record as a cataloguer describes it; written into MARC21 (only changed fields)."""

    model_config = ConfigDict(extra="forbid")

    title: Line = Field(min_length=1, max_length=2000)
    responsibility: Line = Field(default="", max_length=2000)
    authors: Lines = []
    subjects: Lines = Field(default=[], description='headings, subdivisions after " -- "')
    isbns: Lines = Field(default=[], description="kept as written; invalid ones are flagged")
    publisher: Line = Field(default="", max_length=2000)
    year: Annotated[int, Strict()] | None = Field(default=None, ge=1000, le=2999)
    language: str = Field(default="", pattern=r"^([a-z]{3})?$", description="MARC code: chi")
    edition: Line = Field(default="", max_length=2000)
    physical_description: Line = Field(default="", max_length=2000)
    series: Lines = []
    notes: Lines = []
    lcc: Line = Field(default="", max_length=120)
    ddc: Line = Field(default="", max_length=120)
    clc: Line = Field(default="", max_length=120)


Price = Annotated[str, Field(pattern=r"^\d{1,8}(\.\d{1,2})?$")]
RfidTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_id: DbId
    barcode: str = Field(pattern=r"^[A-Za-z0-9-]{1,32}$")
    library_id: DbId
    location_id: DbId | None = None
    call_number: Line | None = Field(default=None, max_length=120)
    item_type: ItemType = ItemType.BOOK
    price: Price | None = None
    rfid_tag: RfidTag | None = None
    # the statuses a new copy may start in
    status: Literal[ItemStatus.AVAILABLE, ItemStatus.IN_PROCESSING] = ItemStatus.AVAILABLE


class ItemPatch(BaseModel):
    """Only the fields given change; location_id null takes the copy off its location."""

    model_config = ConfigDict(extra="forbid")

    item_type: ItemType | None = None
    status: ItemStatus | None = None
    location_id: DbId | None = None
    call_number: Line | None = Field(default=None, max_length=120)
    price: Price | None = None
    rfid_tag: RfidTag | None = None
    circulates: Annotated[bool, Strict()] | None = None
