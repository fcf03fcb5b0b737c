"""Tables of the organisation tree: consortium, member libraries, branches, locations."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biblioverse import reference
from biblioverse.callnumbers import Scheme
from biblioverse.db import Base, SortKey, UTCDateTime, one_of
from biblioverse.libraries.rules import OrgKind


def new_here_code() -> str:
    """A library's "you are here" code, printed on its signs: unguessable, short enough
    for a QR code that reads from across a hall."""
    return secrets.token_urlsafe(12)


class OrgUnit(Base):
    """A node of the consortium tree. ``path`` is the materialised path ('/1/4/')."""

    __tablename__ = "org_units"
    __table_args__ = (one_of("kind", OrgKind),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    path: Mapped[str] = mapped_column(String(255), index=True, default="")
    code: Mapped[str] = mapped_column(String(32), unique=True)
    isil: Mapped[str | None] = mapped_column(String(16), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # On the library's "you are here" signs: a phone that scanned one is in the library.
    here_code: Mapped[str] = mapped_column(String(32), default=new_here_code, server_default="")

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id])
    periods: Mapped[list[OpeningPeriod]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="OpeningPeriod.weekday"
    )
    closed_days: Mapped[list[ClosedDay]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="ClosedDay.day"
    )

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") and self.name_zh else self.name_en


class Location(Base):
    """A place inside a library or branch: floor, zone and a shelf range."""

    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("org_unit_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    floor: Mapped[int] = mapped_column(SmallInteger)
    zone: Mapped[str] = mapped_column(String(64))
    shelf_from: Mapped[str] = mapped_column(String(32), default="")
    shelf_to: Mapped[str] = mapped_column(String(32), default="")
    name_en: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))


class Shelf(Base):
    """A bookcase of a location: its code (the label on its end panel), how many levels and
    sides it has, and the call-number range it holds, kept with the range's shelf-order keys
    so that the database can tell where a copy belongs."""

    __tablename__ = "shelves"
    __table_args__ = (
        UniqueConstraint("org_unit_id", "code"),
        one_of("scheme", Scheme),
        CheckConstraint("levels BETWEEN 1 AND 12", name="levels"),
        CheckConstraint("sides IN (1, 2)", name="sides"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    levels: Mapped[int] = mapped_column(SmallInteger, default=6)
    sides: Mapped[int] = mapped_column(SmallInteger, default=1)
    scheme: Mapped[str] = mapped_column(String(8))
    first_call: Mapped[str] = mapped_column(String(120))
    last_call: Mapped[str] = mapped_column(String(120))
    first_key: Mapped[str] = mapped_column(SortKey)
    last_key: Mapped[str] = mapped_column(SortKey)
    # just past everything the range holds (callnumbers.range_end): a plain column, so that
    # "key >= first_key AND key < end_key" is an index range on the copies' keys
    end_key: Mapped[str] = mapped_column(SortKey)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class OpeningPeriod(Base):
    __tablename__ = "opening_periods"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("opens >= 0 AND opens < closes AND closes <= 1440", name="period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_units.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    opens: Mapped[int] = mapped_column(SmallInteger)
    closes: Mapped[int] = mapped_column(SmallInteger)

    unit: Mapped[OrgUnit] = relationship(back_populates="periods")


class ClosedDay(Base):
    __tablename__ = "closed_days"
    __table_args__ = (UniqueConstraint("org_unit_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_units.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[dt.date] = mapped_column(Date)
    reason_en: Mapped[str] = mapped_column(String(200), default="")
    reason_zh: Mapped[str] = mapped_column(String(200), default="")

    unit: Mapped[OrgUnit] = relationship(back_populates="closed_days")


reference.watch(OrgUnit, OpeningPeriod, ClosedDay)
