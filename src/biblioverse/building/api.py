"""HTTP API of building sensors: what sensors post, zones and their ranges, alarms and the
linkage rules that act on them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from biblioverse.access import Actor, DeviceCapability, Permission
from biblioverse.building import service
from biblioverse.building.models import Alarm, AlarmAction
from biblioverse.building.rules import AlarmKind, AlarmState, Metric, parse_readings
from biblioverse.deps import DbSession, Now, require_device, require_permission
from biblioverse.devices.api import json_only
from biblioverse.devices.rules import PayloadError, as_message
from biblioverse.devices.schemas import Rejected
from biblioverse.devices.service import Health, save_health
from biblioverse.errors import FieldError, ValidationFailed
from biblioverse.fields import DbId, Line

router = APIRouter(tags=["building"])
Sensor = Annotated[Actor, Depends(require_device(DeviceCapability.SENSOR_READINGS))]
DeviceManager = Annotated[Actor, Depends(require_permission(Permission.DEVICES_MANAGE))]
Watcher = Annotated[Actor, Depends(require_permission(Permission.BUILDING_WATCH))]
ZoneKeeper = Annotated[Actor, Depends(require_permission(Permission.BUILDING_MANAGE))]


class ReadingsOut(BaseModel):
    accepted: int
    readings: int
    alarms_raised: list[int]
    alarms_resolved: list[int]
    rejected: list[Rejected]


@router.post(
    "/devices/me/readings",
    summary='A sensor\'s values (one message, or {"reports": [...]})',
    response_model=ReadingsOut,
)
def post_readings(actor: Sensor, session: DbSession, now: Now, body: Any = Body(...)) -> Response:
    json_only(body)
    items = body.get("reports") if isinstance(body, dict) and "reports" in body else [body]
    if not isinstance(items, list) or len(items) > 100:
        raise ValidationFailed([FieldError("reports", "invalid", "a list of at most 100 messages")])
    health: dict[int, Health] = {actor.id: Health()}
    parsed, rejected = [], []
    for i, item in enumerate(items):
        try:
            parsed.append(parse_readings(as_message(item), device_id=actor.id, received=now))
        except PayloadError as exc:
            health[actor.id].error(exc.kind, str(exc), now)
            rejected.append(Rejected(index=i, field=exc.field, message=exc.message))
    devices = {actor.id: "sensor"}
    applied = service.apply_readings(session, parsed, at=now, devices=devices, health=health)
    save_health(session, health, devices)
    if parsed and not applied.messages:
        rejected.append(
            Rejected(index=0, field="device", message="the sensor stands in no zone; place it")
        )
    out = ReadingsOut(
        accepted=applied.messages,
        readings=applied.readings,
        alarms_raised=applied.raised,
        alarms_resolved=applied.resolved,
        rejected=rejected,
    )
    code = status.HTTP_422_UNPROCESSABLE_CONTENT if not applied.messages else status.HTTP_200_OK
    return JSONResponse(out.model_dump(), status_code=code)


# --- zones ---------------------------------------------------------------------------------


class PlacementIn(BaseModel):
    location_id: DbId


@router.put("/devices/{device_id}/zone", summary="Put a sensor in a zone (a location)")
def place(
    device_id: DbId, body: PlacementIn, actor: DeviceManager, session: DbSession, now: Now
) -> dict[str, int]:
    row = service.place_sensor(
        session, actor, device_id=device_id, location_id=body.location_id, at=now
    )
    return {"device_id": row.device_id, "location_id": row.location_id}


class ThresholdIn(BaseModel):
    low: float | None = None
    high: float | None = None


class ThresholdOut(BaseModel):
    location_id: int
    metric: Metric
    low: float | None
    high: float | None


@router.put(
    "/locations/{location_id}/thresholds/{metric}",
    summary="The range a metric must stay in, in a zone (both empty: none)",
)
def put_threshold(
    location_id: DbId,
    metric: Metric,
    body: ThresholdIn,
    actor: ZoneKeeper,
    session: DbSession,
    now: Now,
) -> ThresholdOut:
    service.set_threshold(
        session,
        actor,
        location_id=location_id,
        metric=metric.value,
        low=body.low,
        high=body.high,
        at=now,
    )
    return ThresholdOut(location_id=location_id, metric=metric, low=body.low, high=body.high)


class MetricOut(BaseModel):
    metric: Metric
    value: float
    total: int | None
    low: float | None
    high: float | None
    sensors: int
    at: dt.datetime
    stale: bool
    out_of_range: bool


class ActionOut(BaseModel):
    rule_id: int
    type: str
    trigger: str
    status: str
    detail: str
    at: dt.datetime
    attempts: int = Field(description="How many times it was tried")
    next_attempt_at: dt.datetime | None = Field(
        description="When a failure that may pass is tried again; null when done or given up"
    )


class AlarmOut(BaseModel):
    id: int
    library_id: int
    location_id: int | None
    device_id: int | None
    item_id: int | None
    kind: str
    metric: str | None
    channel: str | None
    value: float | None
    last_value: float | None
    worst_value: float | None
    low: float | None
    high: float | None
    state: AlarmState
    raised_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    note: str
    actions: list[ActionOut] = []


def alarm_out(a: Alarm, actions: list[AlarmAction] | None = None) -> AlarmOut:
    return AlarmOut(
        id=a.id,
        library_id=a.org_unit_id,
        location_id=a.location_id,
        device_id=a.device_id,
        item_id=a.item_id,
        kind=a.kind,
        metric=a.metric,
        channel=a.channel or None,
        value=a.value,
        last_value=a.last_value,
        worst_value=a.worst_value,
        low=a.low,
        high=a.high,
        state=a.state,
        raised_at=a.raised_at,
        acknowledged_at=a.acknowledged_at,
        resolved_at=a.resolved_at,
        note=a.note,
        actions=[
            ActionOut(
                rule_id=x.rule_id,
                type=x.type,
                trigger=x.trigger,
                status=x.status,
                detail=x.detail,
                at=x.at,
                attempts=x.attempts,
                next_attempt_at=x.next_at if x.status == "failed" else None,
            )
            for x in actions or []
        ],
    )


class ZoneOut(BaseModel):
    location_id: int
    code: str
    name_en: str
    name_zh: str
    floor: int
    metrics: list[MetricOut]
    alarms: list[AlarmOut]


@router.get("/libraries/{unit_id}/zones", summary="Zones, their newest readings and open alarms")
def zones(unit_id: DbId, actor: Watcher, session: DbSession, now: Now) -> list[ZoneOut]:
    return [
        ZoneOut(
            location_id=z.location.id,
            code=z.location.code,
            name_en=z.location.name_en,
            name_zh=z.location.name_zh,
            floor=z.location.floor,
            metrics=[MetricOut.model_validate(m.__dict__) for m in z.metrics],
            alarms=[alarm_out(a) for a in z.alarms],
        )
        for z in service.zones_of(session, actor, unit_id, at=now)
    ]


# --- alarms --------------------------------------------------------------------------------


@router.get("/libraries/{unit_id}/alarms", summary="A library's alarms, newest first")
def list_alarms(
    unit_id: DbId,
    actor: Watcher,
    session: DbSession,
    state: Annotated[Literal["open", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlarmOut]:
    rows = service.alarms_of(session, actor, unit_id, open_only=state == "open", limit=limit)
    return [alarm_out(a) for a in rows]


def _with_actions(session: DbSession, alarm: Alarm) -> AlarmOut:
    actions = list(
        session.scalars(
            select(AlarmAction).where(AlarmAction.alarm_id == alarm.id).order_by(AlarmAction.id)
        )
    )
    return alarm_out(alarm, actions)


@router.get("/alarms/{alarm_id}", summary="One alarm, with what the linkage rules did")
def get_alarm(alarm_id: DbId, actor: Watcher, session: DbSession) -> AlarmOut:
    alarm = service.get_alarm(session, actor, alarm_id)
    return _with_actions(session, alarm)


@router.post("/alarms/{alarm_id}/acknowledge", summary="Someone is on it")
def acknowledge(alarm_id: DbId, actor: Watcher, session: DbSession, now: Now) -> AlarmOut:
    return _with_actions(session, service.acknowledge(session, actor, alarm_id, at=now))


class ResolveIn(BaseModel):
    note: str = Field(default="", max_length=300)


@router.post("/alarms/{alarm_id}/resolve", summary="Close an alarm, with a note")
def resolve(
    alarm_id: DbId, actor: Watcher, session: DbSession, now: Now, body: ResolveIn | None = None
) -> AlarmOut:
    note = body.note if body else ""
    return _with_actions(session, service.resolve(session, actor, alarm_id, note=note, at=now))


# --- linkage rules ------------------------------------------------------------------------


class RuleIn(BaseModel):
    name: Line = Field(min_length=1, max_length=120)
    kind: AlarmKind | None = None
    metric: Metric | None = None
    location_id: DbId | None = None
    trigger: Literal["raised", "resolved"] = "raised"
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=10)
    enabled: bool = True


class RuleOut(BaseModel):
    id: int
    library_id: int
    name: str
    kind: str | None
    metric: str | None
    location_id: int | None
    trigger: str
    actions: list[dict[str, Any]]
    enabled: bool


def _rule_out(rule: Any) -> RuleOut:
    return RuleOut(
        id=rule.id,
        library_id=rule.org_unit_id,
        name=rule.name,
        kind=rule.kind,
        metric=rule.metric,
        location_id=rule.location_id,
        trigger=rule.trigger,
        # a webhook's secret is written, never read back
        actions=[
            {k: ("***" if k == "secret" and v else v) for k, v in a.items()} for a in rule.actions
        ],
        enabled=rule.enabled,
    )


@router.post(
    "/libraries/{unit_id}/linkage-rules",
    status_code=status.HTTP_201_CREATED,
    summary="When an alarm is raised or resolved: notify, command a device, call a webhook",
)
def create_rule(
    unit_id: DbId, body: RuleIn, actor: DeviceManager, session: DbSession, now: Now
) -> RuleOut:
    data = service.RuleInput(
        name=body.name,
        actions=body.actions,
        kind=body.kind,
        metric=body.metric.value if body.metric else None,
        location_id=body.location_id,
        trigger=body.trigger,
        enabled=body.enabled,
    )
    return _rule_out(service.add_rule(session, actor, unit_id, data, at=now))


@router.get("/libraries/{unit_id}/linkage-rules", summary="A library's linkage rules")
def list_rules(unit_id: DbId, actor: DeviceManager, session: DbSession) -> list[RuleOut]:
    return [_rule_out(r) for r in service.rules_of(session, actor, unit_id)]


@router.delete(
    "/linkage-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Switch a rule off (what it did stays on record)",
)
def delete_rule(rule_id: DbId, actor: DeviceManager, session: DbSession, now: Now) -> Response:
    service.disable_rule(session, actor, rule_id, at=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
