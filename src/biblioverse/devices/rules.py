"""Pure decisions every device message shares: a JSON object naming (at most) its own
device, a sequence number that grows, and the device's clock. No I/O."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Any

import orjson

MAX_SEQ = 2**63 - 1
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)  # older is no clock: the arithmetic of order
MAX_AHEAD = dt.timedelta(minutes=2)  # a reader's clock may run this far ahead of ours


class ErrorKind(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_ANTENNA = "unknown_antenna"
    CLOCK_SKEW = "clock_skew"
    FLOOD = "flood"
    WRONG_DEVICE = "wrong_device"


class PayloadError(ValueError):
    """A message that cannot be read; `field` names the part that is wrong."""

    def __init__(self, field: str, message: str, kind: ErrorKind = ErrorKind.MALFORMED) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.kind = kind


def whole_number(
    data: dict[str, Any], name: str, *, required: bool = True, most: int = MAX_SEQ
) -> int | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= most:
        raise PayloadError(name, "a whole number, 0 or more")
    return value


def reader_time(value: Any) -> dt.datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value / 1000, dt.UTC)  # milliseconds
        except (OverflowError, OSError, ValueError) as exc:
            raise PayloadError("ts", "milliseconds since 1970 out of range") from exc
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise PayloadError("ts", "an ISO 8601 time such as 2026-11-21T09:30:00Z") from exc
        if when.tzinfo is None:
            raise PayloadError("ts", "the time needs its offset (Z or +08:00)")
        try:
            when = when.astimezone(dt.UTC)
        except OverflowError as exc:  # 0001-01-01T00:00+14:00 is before the calendar's start
            raise PayloadError("ts", "a time after 1900") from exc
        if when < EARLIEST:
            raise PayloadError("ts", "a time after 1900")
        return when
    raise PayloadError("ts", "an ISO 8601 time or milliseconds since 1970")


def as_message(data: Any) -> bytes:
    """What HTTP read, as the JSON bytes a device publishes over MQTT, so both are parsed
    alike."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:
        # beyond 64 bits: orjson reads it back as a float, as from MQTT, and the check refuses it
        return json.dumps(data).encode()


def read_header(
    payload: bytes | str, *, device_id: int, received: dt.datetime
) -> tuple[dict[str, Any], int, dt.datetime, bool]:
    """What every device message starts with: a JSON object, the device (if it names one,
    itself), its sequence number and its time (ours when its clock runs ahead); returns
    (the object, seq, ts, whether the clock was ahead)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError("payload", "not JSON") from exc
    if not isinstance(data, dict):
        raise PayloadError("payload", "a JSON object")
    claimed = data.get("device")
    if claimed is not None and claimed != device_id:
        raise PayloadError("device", "a device publishes only as itself", ErrorKind.WRONG_DEVICE)
    seq = whole_number(data, "seq")
    assert seq is not None
    ts = reader_time(data.get("ts"))
    skewed = ts > received + MAX_AHEAD
    return data, seq, (received if skewed else ts), skewed


class Status(StrEnum):
    """What the devices page says of a device."""

    ONLINE = "online"  # heard from within the offline time
    SILENT = "silent"  # heard from before, not since
    NEVER = "never"  # registered, never heard from
    RETIRED = "retired"  # its key is refused; its history stays


def status(
    *, retired: bool, last_seen: dt.datetime | None, now: dt.datetime, silent_after: dt.timedelta
) -> Status:
    if retired:
        return Status.RETIRED
    if last_seen is None:
        return Status.NEVER
    return Status.ONLINE if now - last_seen <= silent_after else Status.SILENT


def newest(*times: dt.datetime | None) -> dt.datetime | None:
    """The latest of the times known (a key's last use, a message, a heartbeat)."""
    known = [t for t in times if t is not None]
    return max(known) if known else None
