"""Pure decisions of building sensors: reading a sensor's message, judging a value against
its zone's range, and matching linkage rules. No I/O.

A reading out of range raises an alarm; the alarm resolves itself only once the value is
back inside the range by a margin (the metric's dead band), so that a humidity hovering at
55.0 % does not raise and resolve an alarm with every message.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from biblioverse.devices.rules import PayloadError, read_header
from biblioverse.fields import MAX_ID

MAX_READINGS = 500  # per message: a seat-sensor gateway of a large reading room
_CHANNEL = re.compile(r"^[0-9A-Za-z._:-]{1,32}$")


class Metric(StrEnum):
    TEMPERATURE = "temperature"  # degrees Celsius
    HUMIDITY = "humidity"  # relative humidity, %
    CO2 = "co2"  # parts per million
    NOISE = "noise"  # dB(A)
    PEOPLE = "people"  # people in the zone (a counter at its doors)
    SEAT = "seat"  # 1 taken, 0 free; the channel names the seat


@dataclass(frozen=True)
class MetricInfo:
    low: float  # what a working sensor can report
    high: float
    dead_band: float  # how far back inside the range before an alarm resolves itself
    unit: str


METRICS: dict[Metric, MetricInfo] = {
    Metric.TEMPERATURE: MetricInfo(-40.0, 85.0, 0.3, "°C"),
    Metric.HUMIDITY: MetricInfo(0.0, 100.0, 1.0, "%"),
    Metric.CO2: MetricInfo(0.0, 10_000.0, 50.0, "ppm"),
    Metric.NOISE: MetricInfo(0.0, 140.0, 2.0, "dB"),
    Metric.PEOPLE: MetricInfo(0.0, 100_000.0, 2.0, ""),
    Metric.SEAT: MetricInfo(0.0, 1.0, 0.0, ""),
}


class AlarmKind(StrEnum):
    THRESHOLD = "threshold"
    OFFLINE = "offline"
    GATE = "gate"


class AlarmState(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Reading:
    metric: Metric
    value: float
    channel: str = ""


@dataclass(frozen=True)
class ReadingReport:
    device_id: int
    seq: int
    ts: dt.datetime
    readings: tuple[Reading, ...]
    skewed: bool = False

    @property
    def order(self) -> tuple[dt.datetime, int]:
        return (self.ts, self.seq)


def parse_readings(payload: bytes | str, *, device_id: int, received: dt.datetime) -> ReadingReport:
    """Reads one sensor message, `{"seq": 7, "ts": "...", "readings": [{"metric":
    "humidity", "value": 56.5}, {"metric": "seat", "channel": "R2-14", "value": 1}]}`;
    raises PayloadError naming the bad field."""
    data, seq, ts, skewed = read_header(payload, device_id=device_id, received=received)
    raw = data.get("readings")
    if not isinstance(raw, list) or not raw:
        raise PayloadError("readings", "a list of readings, at least one")
    if len(raw) > MAX_READINGS:
        raise PayloadError("readings", f"{len(raw)} readings; at most {MAX_READINGS}")
    out: dict[tuple[Metric, str], Reading] = {}
    for i, r in enumerate(raw):
        where = f"readings[{i}]"
        if not isinstance(r, dict):
            raise PayloadError(where, "an object with metric and value")
        try:
            metric = Metric(str(r.get("metric")))
        except ValueError as exc:
            raise PayloadError(f"{where}.metric", "one of " + ", ".join(Metric)) from exc
        value = r.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise PayloadError(f"{where}.value", "a number")
        info = METRICS[metric]
        if not info.low <= value <= info.high:
            raise PayloadError(
                f"{where}.value", f"{value} is outside what a {metric} sensor can read"
            )
        channel = r.get("channel", "")
        if channel != "" and (not isinstance(channel, str) or not _CHANNEL.match(channel)):
            raise PayloadError(f"{where}.channel", "1 to 32 letters, digits or . _ : -")
        if metric is Metric.SEAT and not channel:
            raise PayloadError(f"{where}.channel", "a seat sensor names its seat")
        out[(metric, channel)] = Reading(metric, float(value), channel)  # the last one wins
    return ReadingReport(device_id, seq, ts, tuple(out.values()), skewed)


# --- judging ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    low: float | None
    high: float | None

    def outside(self, value: float) -> bool:
        return (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        )

    def well_inside(self, value: float, dead_band: float) -> bool:
        return (self.low is None or value >= self.low + dead_band) and (
            self.high is None or value <= self.high - dead_band
        )

    def excess(self, value: float) -> float:
        """How far out of range (0 inside): the worst of an alarm is the largest."""
        if self.low is not None and value < self.low:
            return self.low - value
        if self.high is not None and value > self.high:
            return value - self.high
        return 0.0


class Verdict(StrEnum):
    RAISE = "raise"
    RESOLVE = "resolve"
    KEEP = "keep"  # an open alarm stays open
    QUIET = "quiet"  # nothing to say


def judge(metric: Metric, value: float, limits: Limits | None, *, open_alarm: bool) -> Verdict:
    if limits is None:
        return Verdict.RESOLVE if open_alarm else Verdict.QUIET  # the range was removed
    if not open_alarm:
        return Verdict.RAISE if limits.outside(value) else Verdict.QUIET
    if limits.well_inside(value, METRICS[metric].dead_band):
        return Verdict.RESOLVE
    return Verdict.KEEP


def threshold_key(location_id: int, metric: str, device_id: int, channel: str) -> str:
    return f"threshold:{location_id}:{metric}:{device_id}:{channel}"


def offline_key(device_id: int) -> str:
    return f"offline:{device_id}"


def gate_key(device_id: int, item_id: int) -> str:
    """One open alarm per gate and copy: the same copy carried through again, or the gate's
    event delivered again, adds nothing while staff have not resolved the first."""
    return f"gate:{device_id}:{item_id}"


# --- linkage -------------------------------------------------------------------------------


class ActionType(StrEnum):
    NOTIFY = "notify"  # the staff console shows it until someone acknowledges the alarm
    MQTT = "mqtt"  # a command to a device: biblioverse/v1/devices/{id}/commands
    WEBHOOK = "webhook"  # an HTTP POST of the alarm as JSON


def check_action(action: Any, index: int) -> dict[str, Any]:
    """One action of a linkage rule, checked; raises ValueError naming the field."""
    where = f"actions[{index}]"
    if not isinstance(action, dict):
        raise ValueError(f"{where}: an object with a type")
    try:
        kind = ActionType(str(action.get("type")))
    except ValueError as exc:
        raise ValueError(f"{where}.type: notify, mqtt or webhook") from exc
    if kind is ActionType.NOTIFY:
        return {"type": kind.value}
    if kind is ActionType.MQTT:
        device = action.get("device_id")
        if not isinstance(device, int) or isinstance(device, bool) or not 0 < device <= MAX_ID:
            raise ValueError(f"{where}.device_id: the registry id of the device to command")
        command = action.get("command")
        if not isinstance(command, str) or not re.match(r"^[a-z][a-z0-9_]{0,39}$", command):
            raise ValueError(f"{where}.command: a word such as dehumidifier_on")
        args = action.get("args", {})
        try:
            written = orjson.dumps(args) if isinstance(args, dict) else None
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, which no device reads
            written = None
        if written is None or len(written) > 1000:
            raise ValueError(f"{where}.args: an object of at most 1000 bytes")
        return {"type": kind.value, "device_id": device, "command": command, "args": args}
    url = action.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/$.?#][^\s]{0,500}$", url):
        raise ValueError(f"{where}.url: an http:// or https:// address")
    secret = action.get("secret", "")
    if not isinstance(secret, str) or len(secret) > 200:
        raise ValueError(f"{where}.secret: at most 200 characters")
    return {"type": kind.value, "url": url, "secret": secret}


@dataclass(frozen=True)
class AlarmFacts:
    kind: str
    metric: str | None
    location_id: int | None
    unit_path: str


@dataclass(frozen=True)
class RuleFacts:
    kind: str | None
    metric: str | None
    location_id: int | None
    unit_path: str
    trigger: str
    enabled: bool


def rule_matches(rule: RuleFacts, alarm: AlarmFacts, trigger: str) -> bool:
    """A rule of a library acts on the alarms of that library and the branches below it."""
    return (
        rule.enabled
        and rule.trigger == trigger
        and alarm.unit_path.startswith(rule.unit_path)  # paths are '/1/4/': a prefix is below
        and (rule.kind is None or rule.kind == alarm.kind)
        and (rule.metric is None or rule.metric == alarm.metric)
        and (rule.location_id is None or rule.location_id == alarm.location_id)
    )
