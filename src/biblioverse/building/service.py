"""Use cases of building sensors: placing sensors in zones, zones' ranges, applying
readings, alarms (raised, acknowledged, resolved), devices gone silent, and the board of
zones the live page shows.

A zone is a location of a library (the ancient books room, the children's area). Readings
are applied in the same batches as shelf reports; an alarm is raised in the transaction
that applied the reading, with an urgent `alarm.raised` event that the linkage rules act on
after the commit.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import catalog, events, libraries
from biblioverse.access import Actor, Permission
from biblioverse.accounts import DeviceKey
from biblioverse.audit import log_action
from biblioverse.building.errors import AlarmNotFound, LinkageRuleNotFound
from biblioverse.building.models import (
    Alarm,
    AlarmAction,
    LinkageRule,
    SensorPlacement,
    SensorReading,
    ZoneThreshold,
)
from biblioverse.building.rules import (
    METRICS,
    AlarmKind,
    AlarmState,
    Limits,
    Metric,
    ReadingReport,
    Verdict,
    check_action,
    gate_key,
    judge,
    offline_key,
    threshold_key,
)
from biblioverse.db import upsert_insert
from biblioverse.devices.models import DeviceHealth
from biblioverse.devices.rules import ErrorKind
from biblioverse.devices.service import Health
from biblioverse.errors import FieldError, ValidationFailed
from biblioverse.i18n import N_

OPEN = (AlarmState.RAISED.value, AlarmState.ACKNOWLEDGED.value)
WATCHED_KINDS = ("shelf", "gate", "sensor", "pad")  # devices whose silence is an alarm
OFFLINE_AFTER = dt.timedelta(minutes=5)
STALE_AFTER = dt.timedelta(minutes=10)  # a zone's reading older than this is shown as old


def _location(session: Session, location_id: int, field_name: str) -> libraries.Location:
    loc = session.get(libraries.Location, location_id)
    if loc is None:
        raise ValidationFailed([FieldError(field_name, "invalid", N_("a location of the library"))])
    return loc


def _unit_path(session: Session, unit_id: int) -> str:
    return libraries.get_unit(session, unit_id).path


# --- placing sensors, zones' ranges ------------------------------------------------------------


def place_sensor(
    session: Session, actor: Actor, *, device_id: int, location_id: int, at: dt.datetime
) -> SensorPlacement:
    """Puts a sensor in a zone of its library (moving it if it stood elsewhere)."""
    device = session.get(DeviceKey, device_id)
    if device is None or device.revoked_at is not None or device.kind != "sensor":
        raise ValidationFailed([FieldError("device_id", "invalid", N_("a registered sensor"))])
    loc = _location(session, location_id, "location_id")
    if loc.org_unit_id != device.org_unit_id:
        raise ValidationFailed(
            [FieldError("location_id", "other_library", N_("a location of the sensor's library"))]
        )
    libraries.ensure(actor, Permission.DEVICES_MANAGE, _unit_path(session, device.org_unit_id))
    row = session.get(SensorPlacement, device_id)
    if row is None:
        row = SensorPlacement(device_id=device_id, location_id=location_id)
        session.add(row)
    elif row.location_id != location_id:
        # what it read in its old zone says nothing of the new one
        session.execute(delete(SensorReading).where(SensorReading.device_id == device_id))
        row.location_id = location_id
    session.flush()
    log_action(
        session,
        actor,
        "device.place",
        entity="device",
        entity_id=device_id,
        org_unit_id=device.org_unit_id,
        at=at,
        details={"location": loc.code},
    )
    return row


def set_threshold(
    session: Session,
    actor: Actor,
    *,
    location_id: int,
    metric: str,
    low: float | None,
    high: float | None,
    at: dt.datetime,
) -> ZoneThreshold | None:
    """Sets the range a metric must stay in in a zone (both bounds empty: no range). The
    zone's current readings are judged against it at once."""
    problems = []
    try:
        m = Metric(metric)
    except ValueError:
        raise ValidationFailed(
            [FieldError("metric", "invalid", N_("one of %(kinds)s"), {"kinds": ", ".join(Metric)})]
        ) from None
    info = METRICS[m]
    for name, value in (("low", low), ("high", high)):
        if value is not None and not info.low <= value <= info.high:
            problems.append(
                FieldError(
                    name,
                    "invalid",
                    N_("%(low)s to %(high)s"),
                    {"low": f"{info.low:g}", "high": f"{info.high:g}"},
                )
            )
    if low is not None and high is not None and low >= high:
        problems.append(FieldError("high", "invalid", N_("above the low bound")))
    if problems:
        raise ValidationFailed(problems)
    loc = _location(session, location_id, "location_id")
    libraries.ensure(actor, Permission.BUILDING_MANAGE, _unit_path(session, loc.org_unit_id))
    row = session.scalar(
        select(ZoneThreshold).where(
            ZoneThreshold.location_id == location_id, ZoneThreshold.metric == m.value
        )
    )
    if low is None and high is None:
        if row is not None:
            session.delete(row)
        row = None
    else:
        if row is None:
            row = ZoneThreshold(location_id=location_id, metric=m.value)
            session.add(row)
        row.low, row.high, row.updated_at = low, high, at
    session.flush()
    log_action(
        session,
        actor,
        "zone.threshold",
        entity="location",
        entity_id=location_id,
        org_unit_id=loc.org_unit_id,
        at=at,
        details={"metric": m.value, "low": low, "high": high},
    )
    current = session.scalars(
        select(SensorReading).where(
            SensorReading.location_id == location_id, SensorReading.metric == m.value
        )
    ).all()
    _judge_all(
        session,
        [(r.device_id, r.location_id, m, r.channel, r.value) for r in current],
        at=at,
    )
    return row


def thresholds_of(session: Session, location_ids: Iterable[int]) -> dict[tuple[int, str], Limits]:
    ids = sorted(set(location_ids))
    if not ids:
        return {}
    return {
        (t.location_id, t.metric): Limits(t.low, t.high)
        for t in session.scalars(select(ZoneThreshold).where(ZoneThreshold.location_id.in_(ids)))
    }


# --- alarms ------------------------------------------------------------------------------------


def _raise(session: Session, alarm: Alarm, at: dt.datetime) -> Alarm | None:
    """Adds an alarm; None when another transaction raised the same one first."""
    try:
        with session.begin_nested():
            session.add(alarm)
            session.flush()
    except IntegrityError:
        return None
    events.record(
        session, "alarm.raised", {"alarm_id": alarm.id, "kind": alarm.kind}, at=at, urgent=True
    )
    return alarm


def _close(session: Session, alarm: Alarm, at: dt.datetime, by: int | None, note: str) -> None:
    alarm.state = AlarmState.RESOLVED.value
    alarm.open_key = None
    alarm.resolved_at = at
    alarm.resolved_by = by
    if note:
        alarm.note = note[:300]
    events.record(
        session, "alarm.resolved", {"alarm_id": alarm.id, "kind": alarm.kind}, at=at, urgent=True
    )


@dataclass
class Judged:
    raised: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)


def _judge_all(
    session: Session,
    values: Sequence[tuple[int, int, Metric, str, float]],
    *,
    at: dt.datetime,
) -> Judged:
    """(device, location, metric, channel, value) against the zones' ranges."""
    out = Judged()
    if not values:
        return out
    limits = thresholds_of(session, (v[1] for v in values))
    keys = [threshold_key(loc, m.value, dev, ch) for dev, loc, m, ch, _ in values]
    open_alarms = {
        a.open_key: a
        for start in range(0, len(keys), 900)
        for a in session.scalars(select(Alarm).where(Alarm.open_key.in_(keys[start : start + 900])))
    }
    units: dict[int, int] = {}
    for (device_id, location_id, metric, channel, value), key in zip(values, keys, strict=True):
        limit = limits.get((location_id, metric.value))
        alarm = open_alarms.get(key)
        verdict = judge(metric, value, limit, open_alarm=alarm is not None)
        if verdict is Verdict.RAISE:
            assert limit is not None
            if location_id not in units:
                units[location_id] = _location(session, location_id, "location_id").org_unit_id
            new = _raise(
                session,
                Alarm(
                    org_unit_id=units[location_id],
                    location_id=location_id,
                    device_id=device_id,
                    kind=AlarmKind.THRESHOLD.value,
                    metric=metric.value,
                    channel=channel,
                    value=value,
                    last_value=value,
                    worst_value=value,
                    low=limit.low,
                    high=limit.high,
                    state=AlarmState.RAISED.value,
                    open_key=key,
                    raised_at=at,
                    note="",
                ),
                at,
            )
            if new is not None:
                open_alarms[key] = new
                out.raised.append(new.id)
        elif alarm is not None:
            alarm.last_value = value
            worst = alarm.worst_value
            if (
                limit is not None
                and worst is not None
                and limit.excess(value) > limit.excess(worst)
            ):
                alarm.worst_value = value
            if verdict is Verdict.RESOLVE:
                _close(session, alarm, at, None, "back in range")
                del open_alarms[key]
                out.resolved.append(alarm.id)
    return out


@dataclass
class ReadingsApplied:
    messages: int = 0
    readings: int = 0
    rejected: int = 0
    raised: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)


def apply_readings(
    session: Session,
    reports: Sequence[ReadingReport],
    *,
    at: dt.datetime,
    devices: dict[int, str],
    health: dict[int, Health],
) -> ReadingsApplied:
    """Keeps each sensor's newest values and judges them against their zone's range. A
    reading older than the one kept changes nothing (late or repeated messages); a sensor
    placed in no zone is counted as an error on its health."""
    out = ReadingsApplied()
    if not reports:
        return out
    ids = sorted({r.device_id for r in reports})
    placed = dict(
        session.execute(
            select(SensorPlacement.device_id, SensorPlacement.location_id).where(
                SensorPlacement.device_id.in_(ids)
            )
        ).all()
    )
    kept: dict[tuple[int, str, str], tuple[dt.datetime, int]] = {}
    for device_id, metric, channel, when, seq in session.execute(
        select(
            SensorReading.device_id,
            SensorReading.metric,
            SensorReading.channel,
            SensorReading.at,
            SensorReading.seq,
        ).where(SensorReading.device_id.in_(ids))
    ):
        kept[(device_id, metric, channel)] = (when, seq)
    newest: dict[tuple[int, str, str], tuple[ReadingReport, float, Metric]] = {}
    for r in sorted(reports, key=lambda r: (r.order, r.device_id)):
        h = health.setdefault(r.device_id, Health())
        if r.device_id not in devices:
            out.rejected += 1
            continue
        h.messages += 1
        h.reads += len(r.readings)
        h.last_seq = max(h.last_seq, r.seq)
        if h.last_message_at is None or r.ts > h.last_message_at:
            h.last_message_at = r.ts
        if r.skewed:
            h.error(ErrorKind.CLOCK_SKEW, "the sensor's clock is ahead; our time was used", at)
        if r.device_id not in placed:
            h.error("unplaced", "the sensor stands in no zone; place it first", at)
            out.rejected += 1
            continue
        out.messages += 1
        for reading in r.readings:
            key = (r.device_id, reading.metric.value, reading.channel)
            if key in kept and kept[key] >= r.order:
                continue
            kept[key] = r.order
            newest[key] = (r, reading.value, reading.metric)
            out.readings += 1
    if not newest:
        return out
    rows = [
        {
            "device_id": dev,
            "metric": metric,
            "channel": channel,
            "location_id": placed[dev],
            "value": value,
            "at": r.ts,
            "seq": r.seq,
        }
        for (dev, metric, channel), (r, value, _) in sorted(newest.items())
    ]
    stmt = upsert_insert(session)(SensorReading)
    stmt = stmt.on_conflict_do_update(
        index_elements=[SensorReading.device_id, SensorReading.metric, SensorReading.channel],
        set_={c: stmt.excluded[c] for c in ("location_id", "value", "at", "seq")},
    )
    session.execute(stmt, rows)
    judged = _judge_all(
        session,
        [
            (dev, placed[dev], m, channel, value)
            for (dev, _metric, channel), (_r, value, m) in sorted(newest.items())
        ],
        at=at,
    )
    out.raised, out.resolved = judged.raised, judged.resolved
    return out


def check_offline(
    session: Session, *, at: dt.datetime, after: dt.timedelta = OFFLINE_AFTER
) -> Judged:
    """Raises an alarm for each shelf reader, gate or sensor that has said nothing (no
    heartbeat, no message) for `after`, and resolves those that speak again."""
    out = Judged()
    rows = session.execute(
        select(
            DeviceKey.id,
            DeviceKey.org_unit_id,
            DeviceHealth.heartbeat_at,
            DeviceHealth.last_message_at,
            SensorPlacement.location_id,
        )
        .join(DeviceHealth, DeviceHealth.device_id == DeviceKey.id)
        .outerjoin(SensorPlacement, SensorPlacement.device_id == DeviceKey.id)
        .where(DeviceKey.revoked_at.is_(None), DeviceKey.kind.in_(WATCHED_KINDS))
    ).all()
    open_alarms = {
        a.device_id: a
        for a in session.scalars(
            select(Alarm).where(Alarm.kind == AlarmKind.OFFLINE.value, Alarm.state.in_(OPEN))
        )
    }
    for device_id, unit_id, heartbeat, message, location_id in rows:
        last = max((t for t in (heartbeat, message) if t is not None), default=None)
        if last is None:
            continue
        silent = last < at - after
        alarm = open_alarms.get(device_id)
        if silent and alarm is None:
            new = _raise(
                session,
                Alarm(
                    org_unit_id=unit_id,
                    location_id=location_id,
                    device_id=device_id,
                    kind=AlarmKind.OFFLINE.value,
                    channel="",
                    state=AlarmState.RAISED.value,
                    open_key=offline_key(device_id),
                    raised_at=at,
                    note=f"silent since {last.isoformat(timespec='seconds')}",
                ),
                at,
            )
            if new is not None:
                out.raised.append(new.id)
        elif not silent and alarm is not None:
            _close(session, alarm, at, None, "heard from again")
            out.resolved.append(alarm.id)
    # a device revoked while silent has nothing more to say
    watched = {r[0] for r in rows}
    for silent_id, alarm in open_alarms.items():
        if silent_id not in watched:
            _close(session, alarm, at, None, "device removed")
            out.resolved.append(alarm.id)
    return out


def raise_gate_alarm(
    session: Session, *, device: DeviceKey, item_id: int, tag: str, at: dt.datetime
) -> Alarm | None:
    return _raise(
        session,
        Alarm(
            org_unit_id=device.org_unit_id,
            device_id=device.id,
            item_id=item_id,
            kind=AlarmKind.GATE.value,
            channel="",
            state=AlarmState.RAISED.value,
            open_key=gate_key(device.id, item_id),
            raised_at=at,
            note=f"tag {tag} not checked out",
        ),
        at,
    )


def get_alarm(session: Session, actor: Actor, alarm_id: int, *, lock: bool = False) -> Alarm:
    alarm = session.get(Alarm, alarm_id, with_for_update=lock)
    if alarm is None or not actor.can(
        Permission.BUILDING_WATCH, _unit_path(session, alarm.org_unit_id)
    ):
        raise AlarmNotFound(alarm_id)  # another library's alarm is not there for this actor
    return alarm


def acknowledge(session: Session, actor: Actor, alarm_id: int, *, at: dt.datetime) -> Alarm:
    """Someone has seen it and is on it; repeating it changes nothing."""
    alarm = get_alarm(session, actor, alarm_id, lock=True)
    if alarm.state == AlarmState.RAISED.value:
        alarm.state = AlarmState.ACKNOWLEDGED.value
        alarm.acknowledged_at = at
        alarm.acknowledged_by = actor.id
        log_action(
            session,
            actor,
            "alarm.acknowledge",
            entity="alarm",
            entity_id=alarm.id,
            org_unit_id=alarm.org_unit_id,
            at=at,
        )
    return alarm


def resolve(
    session: Session, actor: Actor, alarm_id: int, *, note: str = "", at: dt.datetime
) -> Alarm:
    """Closes an alarm (the window is shut, the book was brought back to the desk)."""
    alarm = get_alarm(session, actor, alarm_id, lock=True)
    if alarm.state != AlarmState.RESOLVED.value:
        if alarm.acknowledged_at is None:
            alarm.acknowledged_at, alarm.acknowledged_by = at, actor.id
        _close(session, alarm, at, actor.id, note)
        log_action(
            session,
            actor,
            "alarm.resolve",
            entity="alarm",
            entity_id=alarm.id,
            org_unit_id=alarm.org_unit_id,
            at=at,
            details={"note": note[:300]} if note else None,
        )
    return alarm


def alarms_of(
    session: Session, actor: Actor, unit_id: int, *, open_only: bool = True, limit: int = 200
) -> list[Alarm]:
    """A library's alarms (and its branches'), newest first."""
    unit = libraries.get_unit(session, unit_id)
    libraries.ensure(actor, Permission.BUILDING_WATCH, unit.path)
    units = libraries.units_within(session, [unit.path])
    query = select(Alarm).where(Alarm.org_unit_id.in_(units))
    if open_only:
        query = query.where(Alarm.state.in_(OPEN))
    return list(
        session.scalars(query.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit))
    )


def to_notify(session: Session, actor: Actor) -> int:
    """Alarms a linkage rule asked the console to show, not yet acknowledged, in the
    actor's libraries."""
    scopes = actor.scopes_for(Permission.BUILDING_WATCH)
    if not scopes:
        return 0
    units = libraries.units_within(session, scopes)
    return (
        session.scalar(
            select(func.count(func.distinct(Alarm.id)))
            .join(AlarmAction, AlarmAction.alarm_id == Alarm.id)
            .where(
                Alarm.state == AlarmState.RAISED.value,
                Alarm.org_unit_id.in_(units),
                AlarmAction.type == "notify",
            )
        )
        or 0
    )


# --- the board of zones ------------------------------------------------------------------------


@dataclass
class MetricView:
    metric: str
    value: float  # the mean of the zone's sensors; people summed; seats taken
    low: float | None  # the zone's range
    high: float | None
    sensors: int
    at: dt.datetime
    stale: bool
    total: int | None = None  # seats in the zone
    out_of_range: bool = False


@dataclass
class ZoneView:
    location: libraries.Location
    metrics: list[MetricView]
    alarms: list[Alarm]


def zones_of(session: Session, actor: Actor, unit_id: int, *, at: dt.datetime) -> list[ZoneView]:
    """Every zone of a library with its newest readings, its ranges and its open alarms."""
    unit = libraries.get_unit(session, unit_id)
    libraries.ensure(actor, Permission.BUILDING_WATCH, unit.path)
    locations = libraries.locations_of(session, unit_id)
    ids = [loc.id for loc in locations]
    by_zone: dict[int, dict[str, list[SensorReading]]] = defaultdict(lambda: defaultdict(list))
    if ids:
        for r in session.scalars(select(SensorReading).where(SensorReading.location_id.in_(ids))):
            by_zone[r.location_id][r.metric].append(r)
    limits = thresholds_of(session, ids)
    open_alarms: dict[int | None, list[Alarm]] = defaultdict(list)
    for a in session.scalars(
        select(Alarm)
        .where(Alarm.org_unit_id == unit_id, Alarm.state.in_(OPEN))
        .order_by(Alarm.raised_at.desc())
    ):
        open_alarms[a.location_id].append(a)
    out = []
    for loc in locations:
        metrics = []
        for m in Metric:
            rows = by_zone[loc.id].get(m.value, [])
            limit = limits.get((loc.id, m.value))
            if not rows and limit is None:
                continue
            newest = max((r.at for r in rows), default=None)
            if m is Metric.SEAT:
                value, total = float(sum(1 for r in rows if r.value >= 0.5)), len(rows)
            elif m is Metric.PEOPLE:
                value, total = float(sum(r.value for r in rows)), None
            else:
                value, total = (statistics.fmean(r.value for r in rows) if rows else 0.0), None
            metrics.append(
                MetricView(
                    metric=m.value,
                    value=round(value, 1),
                    low=limit.low if limit else None,
                    high=limit.high if limit else None,
                    sensors=len({r.device_id for r in rows}),
                    at=newest or at,
                    stale=newest is None or newest < at - STALE_AFTER,
                    total=total,
                    out_of_range=bool(rows and limit and any(limit.outside(r.value) for r in rows)),
                )
            )
        out.append(ZoneView(loc, metrics, open_alarms.get(loc.id, [])))
    return out


def unzoned_alarms(session: Session, actor: Actor, unit_id: int) -> list[Alarm]:
    """Open alarms of a library that belong to no zone (gates, silent shelf readers)."""
    unit = libraries.get_unit(session, unit_id)
    libraries.ensure(actor, Permission.BUILDING_WATCH, unit.path)
    return list(
        session.scalars(
            select(Alarm)
            .where(Alarm.org_unit_id == unit_id, Alarm.state.in_(OPEN), Alarm.location_id.is_(None))
            .order_by(Alarm.raised_at.desc())
        )
    )


def alarm_copies(session: Session, alarms: Iterable[Alarm]) -> dict[int, catalog.CopyLabel]:
    """The copies gate alarms are about, by item id: the desk looks for a title and a
    barcode, not a tag (catalog's public names, never its tables)."""
    return catalog.copy_labels(session, (a.item_id for a in alarms if a.item_id is not None))


# --- linkage rules -------------------------------------------------------------------------------


@dataclass
class RuleInput:
    name: str
    actions: list[dict[str, object]]
    kind: str | None = None
    metric: str | None = None
    location_id: int | None = None
    trigger: str = "raised"
    enabled: bool = True


def add_rule(
    session: Session, actor: Actor, unit_id: int, data: RuleInput, *, at: dt.datetime
) -> LinkageRule:
    unit = libraries.get_unit(session, unit_id)
    libraries.ensure(actor, Permission.DEVICES_MANAGE, unit.path)
    problems = []
    name = data.name.strip()
    if not 1 <= len(name) <= 120:
        problems.append(FieldError("name", "invalid", N_("1 to 120 characters")))
    if data.kind is not None and data.kind not in set(AlarmKind):
        problems.append(FieldError("kind", "invalid", N_("threshold, offline or gate")))
    if data.metric is not None and data.metric not in set(Metric):
        problems.append(
            FieldError("metric", "invalid", N_("one of %(kinds)s"), {"kinds": ", ".join(Metric)})
        )
    if data.trigger not in ("raised", "resolved"):
        problems.append(FieldError("trigger", "invalid", N_("raised or resolved")))
    if data.location_id is not None:
        loc = session.get(libraries.Location, data.location_id)
        if loc is None or not libraries.get_unit(session, loc.org_unit_id).path.startswith(
            unit.path
        ):
            problems.append(FieldError("location_id", "invalid", N_("a location of this library")))
    actions: list[dict[str, object]] = []
    if not data.actions or len(data.actions) > 10:
        problems.append(FieldError("actions", "invalid", N_("1 to 10 actions")))
    for i, action in enumerate(data.actions[:10]):
        try:
            checked = check_action(action, i)
        except ValueError as exc:
            where, _, message = str(exc).partition(": ")
            problems.append(FieldError(where, "invalid", message))
            continue
        if checked["type"] == "mqtt":
            target = session.get(DeviceKey, checked["device_id"])
            if target is None or not libraries.get_unit(
                session, target.org_unit_id
            ).path.startswith(unit.path):
                problems.append(
                    FieldError(f"actions[{i}].device_id", "invalid", N_("a device of this library"))
                )
        actions.append(checked)
    if problems:
        raise ValidationFailed(problems)
    rule = LinkageRule(
        org_unit_id=unit_id,
        name=name,
        kind=data.kind,
        metric=data.metric,
        location_id=data.location_id,
        trigger=data.trigger,
        actions=actions,
        enabled=data.enabled,
        created_at=at,
    )
    session.add(rule)
    session.flush()
    log_action(
        session,
        actor,
        "linkage.add",
        entity="linkage_rule",
        entity_id=rule.id,
        org_unit_id=unit_id,
        at=at,
        # a webhook's secret stays out of the audit trail
        details={"name": name, "actions": [a["type"] for a in actions]},
    )
    return rule


def rules_of(session: Session, actor: Actor, unit_id: int) -> list[LinkageRule]:
    unit = libraries.get_unit(session, unit_id)
    libraries.ensure(actor, Permission.DEVICES_MANAGE, unit.path)
    return list(
        session.scalars(
            select(LinkageRule).where(LinkageRule.org_unit_id == unit_id).order_by(LinkageRule.id)
        )
    )


def disable_rule(session: Session, actor: Actor, rule_id: int, *, at: dt.datetime) -> None:
    rule = session.get(LinkageRule, rule_id)
    if rule is None or not actor.can(
        Permission.DEVICES_MANAGE, _unit_path(session, rule.org_unit_id)
    ):
        raise LinkageRuleNotFound(rule_id)
    rule.enabled = False  # its past actions keep pointing at it
    log_action(
        session,
        actor,
        "linkage.disable",
        entity="linkage_rule",
        entity_id=rule.id,
        org_unit_id=rule.org_unit_id,
        at=at,
    )


__all__ = [
    "OPEN",
    "Judged",
    "MetricView",
    "ReadingsApplied",
    "RuleInput",
    "ZoneView",
    "acknowledge",
    "add_rule",
    "alarm_copies",
    "alarms_of",
    "apply_readings",
    "check_offline",
    "disable_rule",
    "get_alarm",
    "place_sensor",
    "raise_gate_alarm",
    "resolve",
    "rules_of",
    "set_threshold",
    "thresholds_of",
    "to_notify",
    "unzoned_alarms",
    "zones_of",
]
