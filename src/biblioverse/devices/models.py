"""Tables every device shares: its health (last message, errors, sequence numbers)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from biblioverse.db import Base, JSONType, UTCDateTime


class DeviceHealth(Base):
    """What ingestion knows of a shelf reader, gate or sensor: its clock, its counts, its
    newest error. Kept apart from the key row so that a flood of reads never contends with
    signing in."""

    __tablename__ = "device_health"

    device_id: Mapped[int] = mapped_column(ForeignKey("device_keys.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_message_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    messages: Mapped[int] = mapped_column(BigInteger, default=0)
    reads: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    error_counts: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    last_error: Mapped[str | None] = mapped_column(String(300))
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
