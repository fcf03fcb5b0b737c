"""Tables of smart shelves: antennas, where each copy was last read, unknown tags, shelf
use, gate events and inventories."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from biblioverse.db import Base, JSONType, UTCDateTime, one_of
from biblioverse.shelves.rules import Scope, State

# --- RFID: smart shelves, positions, gates -----------------------------------------


class Antenna(Base):
    """One antenna of a smart-shelf reader, covering one level of one side of a shelf."""

    __tablename__ = "shelf_antennas"
    __table_args__ = (
        UniqueConstraint("device_id", "antenna"),
        CheckConstraint("side IN ('A', 'B')", name="side"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device_keys.id"), index=True)
    antenna: Mapped[int] = mapped_column(Integer)  # the number the reader reports
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)  # 1 is the bottom
    side: Mapped[str] = mapped_column(String(1), default="A")
    # the reader's time of the newest full snapshot: every copy on this antenna was there
    snapshot_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    snapshot_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class ItemPosition(Base):
    """Where a copy was last read, and whether it is still there. The reader's clock and
    sequence number of the read that set it order late and repeated messages: a read older
    than what set the row changes nothing."""

    __tablename__ = "item_positions"
    __table_args__ = (one_of("state", State),)

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    antenna_id: Mapped[int] = mapped_column(ForeignKey("shelf_antennas.id"), index=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    side: Mapped[str] = mapped_column(String(1))
    state: Mapped[str] = mapped_column(String(10))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    seen_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # when a copy left its shelf: with no loan before it is back, that was use in the library
    taken_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class UnknownTag(Base):
    """A tag a shelf read that no copy carries: a foreign library's book, a new copy not yet
    tagged in the catalogue, or a damaged tag."""

    __tablename__ = "unknown_tags"

    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    antenna_id: Mapped[int] = mapped_column(ForeignKey("shelf_antennas.id"), index=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reads: Mapped[int] = mapped_column(Integer, default=1)


class ShelfUse(Base):
    """A copy taken from its shelf and put back with no loan between: use in the library."""

    __tablename__ = "shelf_uses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"), index=True)
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    back_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class GateEvent(Base):
    """A tag at a security gate that was not allowed out: the alarm, with the copy."""

    __tablename__ = "gate_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device_keys.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    tag: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    reason: Mapped[str] = mapped_column(String(32))


# --- inventory ---------------------------------------------------------------------------------


class Inventory(Base):
    """A stocktake of a library, a floor, a zone or a run of shelves: open while shelves and
    handheld readers report what they read, closed with its counts (and, if asked, its
    missing copies marked missing)."""

    __tablename__ = "inventories"
    __table_args__ = (
        one_of("scope", Scope),
        CheckConstraint("state IN ('open', 'closed')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    scope: Mapped[str] = mapped_column(String(8))
    floor: Mapped[int | None] = mapped_column(SmallInteger)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    first_shelf: Mapped[str | None] = mapped_column(String(32))
    last_shelf: Mapped[str | None] = mapped_column(String(32))
    shelf_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)  # fixed at the start
    state: Mapped[str] = mapped_column(String(8), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    summary: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    marked_missing: Mapped[int] = mapped_column(Integer, default=0)


class InventoryRead(Base):
    """A copy read during an inventory: where (the shelf, when a shelf or a handheld at a
    shelf said so) and when. The newest read of a copy is kept."""

    __tablename__ = "inventory_reads"
    __table_args__ = (CheckConstraint("source IN ('shelf', 'handheld')", name="source"),)

    inventory_id: Mapped[int] = mapped_column(ForeignKey("inventories.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    shelf_id: Mapped[int | None] = mapped_column(ForeignKey("shelves.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(8))


class InventoryUnknown(Base):
    """A tag or barcode read during an inventory that is no copy of ours."""

    __tablename__ = "inventory_unknown"

    inventory_id: Mapped[int] = mapped_column(ForeignKey("inventories.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    shelf_id: Mapped[int | None] = mapped_column(ForeignKey("shelves.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
