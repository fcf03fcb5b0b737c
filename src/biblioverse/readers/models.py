"""Reader accounts: one card number valid across the consortium."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from biblioverse.db import Base, UTCDateTime, one_of
from biblioverse.readers.rules import Category, Status


class Reader(Base):
    __tablename__ = "readers"
    __table_args__ = (
        one_of("category", Category),
        one_of("status", Status),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_number: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(24))
    # indexed for the duplicate-person check at registration (same name, same birth date)
    birth_date: Mapped[dt.date] = mapped_column(Date, index=True)
    guardian_name: Mapped[str | None] = mapped_column(String(120))
    home_library_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    expires_on: Mapped[dt.date] = mapped_column(Date)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    registered_via: Mapped[str] = mapped_column(String(16))
    # Privacy by default: no loan history unless the reader asks for it.
    keep_history: Mapped[bool] = mapped_column(Boolean, default=False)
    preferred_locale: Mapped[str | None] = mapped_column(String(16))
    blocked_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReaderNote(Base):
    """A note staff leave on a reader's record for the next desk (never shown to the
    reader). Kept apart from the card so that a note's history is its own."""

    __tablename__ = "reader_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    staff_id: Mapped[int] = mapped_column(Integer)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))  # the writer's desk
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
