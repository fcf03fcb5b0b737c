"""Tables of the devices context: SIP2 accounts of self-service machines and their log;
smart-shelf antennas, where each copy was last read, gates and the health of each device;
building sensors, their zones' thresholds, alarms and the linkage rules that act on them."""

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

from biblioverse.db import Base, JSONType, UTCDateTime

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
    __table_args__ = (CheckConstraint("state IN ('on_shelf', 'off_shelf')", name="state"),)

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


class GateEvent(Base):
    """A tag at a security gate that was not allowed out: the alarm, with the copy."""

    __tablename__ = "gate_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device_keys.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    tag: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    reason: Mapped[str] = mapped_column(String(32))


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
        CheckConstraint("kind IN ('threshold', 'offline', 'gate')", name="kind"),
        CheckConstraint("state IN ('raised', 'acknowledged', 'resolved')", name="state"),
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


# --- inventory ---------------------------------------------------------------------------------


class Inventory(Base):
    """A stocktake of a library, a floor, a zone or a run of shelves: open while shelves and
    handheld readers report what they read, closed with its counts (and, if asked, its
    missing copies marked missing)."""

    __tablename__ = "inventories"
    __table_args__ = (
        CheckConstraint("scope IN ('library', 'floor', 'zone', 'shelves')", name="scope"),
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
