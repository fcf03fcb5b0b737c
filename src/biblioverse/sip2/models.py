"""Tables of self-service machines over SIP2: their accounts, their log, and per-copy
properties the kiosk shows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from biblioverse.db import Base, UTCDateTime

CHARSETS = ("utf-8", "latin-1", "cp850")


class Sip2Account(Base):
    """How a kiosk, an RFID pad or a return sorter logs in over SIP2. The device itself (its
    name, kind, library and last-seen time) is a row of the device registry."""

    __tablename__ = "sip2_accounts"
    __table_args__ = (
        CheckConstraint("charset IN ('utf-8', 'latin-1', 'cp850')", name="charset"),
        CheckConstraint("locale IN ('en', 'zh_Hans')", name="locale"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device_keys.id"), unique=True)
    login: Mapped[str] = mapped_column(String(60), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(120), default="")
    charset: Mapped[str] = mapped_column(String(16), default="utf-8")
    error_detection: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str] = mapped_column(String(16), default="en")  # screen messages
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    last_address: Mapped[str | None] = mapped_column(String(64))


class Sip2LogLine(Base):
    """One message in or out, secrets masked; the newest few hundred per account are kept."""

    __tablename__ = "sip2_log"
    __table_args__ = (CheckConstraint("direction IN ('in', 'out', 'note')", name="direction"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("sip2_accounts.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    direction: Mapped[str] = mapped_column(String(4))
    text: Mapped[str] = mapped_column(String(600))


class Sip2ItemProperties(Base):
    """What an RFID pad or a kiosk stored about a copy (SIP2 item status update, 19): read
    back by item information (17). The library system does not interpret it."""

    __tablename__ = "sip2_item_properties"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    properties: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("sip2_accounts.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
