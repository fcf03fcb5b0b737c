"""Tables of the building: sensors' zones and readings, zones' ranges, alarms and the
linkage rules that act on them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from biblioverse.building.rules import AlarmKind, AlarmState
from biblioverse.db import Base, JSONType, UTCDateTime, one_of

# --- building: sensors, thresholds, alarms, linkage -------------------------------------


class SensorPlacement(Base):
    """Where a sensor stands: the zone (a location of its library) its readings describe."""

    __tablename__ = "sensor_placements"

    device_id: Mapped[int] = mapped_column(ForeignKey("device_keys.id"), primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)


class SensorReading(Base):
    """A sensor's newest value of one metric (one channel: a seat, a door of a people
    counter). The reader's clock and sequence order late messages, as on the shelves."""

    __tablename__ = "sensor_readings"

    device_id: Mapped[int] = mapped_column(ForeignKey("device_keys.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class ZoneThreshold(Base):
    """The range a metric must stay in, in one zone (the ancient books room: 18-22 C)."""

    __tablename__ = "zone_thresholds"
    __table_args__ = (UniqueConstraint("location_id", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    metric: Mapped[str] = mapped_column(String(16))
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Alarm(Base):
    """Something the building said that staff must see: a reading out of its zone's range,
    a device gone silent, a copy at a gate. Raised, acknowledged by someone, resolved (by
    someone, or by the reading coming back). While open, `open_key` names what it is about,
    so that one condition never has two open alarms."""

    __tablename__ = "alarms"
    __table_args__ = (
        one_of("kind", AlarmKind),
        one_of("state", AlarmState),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device_keys.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    kind: Mapped[str] = mapped_column(String(12))
    metric: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32), default="")
    value: Mapped[float | None] = mapped_column(Float)  # what raised it
    last_value: Mapped[float | None] = mapped_column(Float)
    worst_value: Mapped[float | None] = mapped_column(Float)
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(12), index=True)
    open_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str] = mapped_column(String(300), default="")


class LinkageRule(Base):
    """When an alarm of this kind (metric, zone) is raised or resolved in this library (or a
    branch below it), do these actions: tell the staff console, publish an MQTT command to a
    device, call a webhook."""

    __tablename__ = "linkage_rules"
    __table_args__ = (CheckConstraint("trigger IN ('raised', 'resolved')", name="trigger"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str | None] = mapped_column(String(12))  # any kind when empty
    metric: Mapped[str | None] = mapped_column(String(16))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    trigger: Mapped[str] = mapped_column(String(10), default="raised")
    actions: Mapped[list[dict[str, object]]] = mapped_column(JSONType, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AlarmAction(Base):
    """One action a linkage rule took for an alarm, and how it went. Unique per alarm, rule,
    action and trigger: a second delivery of the same event does nothing twice. A failure
    that may pass (a broker or a receiver down) is tried again later (`Linkage.retry_due`)."""

    __tablename__ = "alarm_actions"
    __table_args__ = (
        UniqueConstraint("alarm_id", "rule_id", "position", "trigger"),
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("linkage_rules.id"), index=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    trigger: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(12))  # notify, mqtt, webhook
    status: Mapped[str] = mapped_column(String(8))
    detail: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    # When it is tried again: a failure worth retrying, or a pending action whose process
    # ended before it was done. None: done, or given up.
    next_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
