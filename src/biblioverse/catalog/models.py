"""Bibliographic records (full MARC21 kept for lossless export) and their items."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biblioverse.callnumbers import shelf_key
from biblioverse.catalog.rules import ItemStatus, ItemType
from biblioverse.db import Base, JSONType, SortKey, UTCDateTime, one_of


class Record(Base):
    __tablename__ = "records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The record as ISO 2709 bytes, exactly as imported (MARC-8 or UTF-8) or as last saved:
    # an unedited record exports byte for byte.
    marc: Mapped[bytes] = mapped_column(LargeBinary)
    marc_utf8: Mapped[bool] = mapped_column(Boolean)
    control_number: Mapped[str | None] = mapped_column(String(64), index=True)
    control_number_source: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    title_vernacular: Mapped[str | None] = mapped_column(Text)
    responsibility: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(JSONType, default=list)
    subjects: Mapped[list[str]] = mapped_column(JSONType, default=list)
    isbns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    invalid_isbns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    issns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    publisher: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(SmallInteger, index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    edition: Mapped[str | None] = mapped_column(Text)
    physical_description: Mapped[str | None] = mapped_column(Text)
    series: Mapped[list[str]] = mapped_column(JSONType, default=list)
    notes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    lcc: Mapped[str | None] = mapped_column(String(120))
    ddc: Mapped[str | None] = mapped_column(String(120))
    clc: Mapped[str | None] = mapped_column(String(120))
    call_number: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    items: Mapped[list[Item]] = relationship(back_populates="record", order_by="Item.id")

    def flags(self) -> dict[str, Any]:
        return {"invalid_isbns": self.invalid_isbns} if self.invalid_isbns else {}


class RecordKey(Base):
    """Identifiers a new import is matched on: 001+003, 035 system numbers, ISBN-13."""

    __tablename__ = "record_keys"
    __table_args__ = (
        CheckConstraint("kind IN ('control', 'system', 'isbn')", name="kind"),
        Index("ix_record_keys_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(200))


class Item(Base):
    """A copy of a record, owned by one library, standing at one location."""

    __tablename__ = "items"
    __table_args__ = (
        one_of("item_type", ItemType),
        one_of("status", ItemStatus),
        CheckConstraint("item_type <> 'precious' OR NOT circulates", name="precious_stays_in"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    barcode: Mapped[str] = mapped_column(String(32), unique=True)
    rfid_tag: Mapped[str | None] = mapped_column(String(64), unique=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    # Where the copy stands when that is not its owning library: a floating collection's
    # copy kept where it was returned, or one on another library's hold shelf.
    at_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    call_number: Mapped[str | None] = mapped_column(String(120))
    # the call number in shelf order (biblioverse.callnumbers), kept in step by a mapper event
    shelf_key: Mapped[str | None] = mapped_column(SortKey, index=True)
    item_type: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(16), index=True)
    circulates: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    record: Mapped[Record] = relationship(back_populates="items")


@event.listens_for(Item, "before_insert")
@event.listens_for(Item, "before_update")
def _keep_shelf_key(_mapper: Any, _connection: Any, item: Item) -> None:
    item.shelf_key = shelf_key(item.call_number)
