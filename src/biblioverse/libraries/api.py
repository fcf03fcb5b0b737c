"""HTTP API of the organisation tree: thin routers over the service."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from biblioverse.access import Actor, Permission
from biblioverse.deps import DbSession, Now, require_permission
from biblioverse.errors import FieldError, ValidationFailed
from biblioverse.fields import DbId, Moment
from biblioverse.libraries import rules, service
from biblioverse.libraries.models import OrgUnit
from biblioverse.libraries.rules import Period
from biblioverse.libraries.schemas import (
    ClosedDayIn,
    ClosedDayOut,
    LocationIn,
    LocationOut,
    OpeningAnswer,
    PeriodOut,
    TodayOut,
    UnitCreate,
    UnitOut,
    UnitWithToday,
    WeeklyHoursIn,
)

router = APIRouter(prefix="/libraries", tags=["libraries"])
OrgManager = Annotated[Actor, Depends(require_permission(Permission.ORG_MANAGE))]


def _today(unit: OrgUnit, at: dt.datetime) -> TodayOut:
    st = service.status_at(unit, at)
    tz = service.schedule_of(unit).tz
    return TodayOut(
        date=at.astimezone(tz).date(),
        periods=[
            PeriodOut(
                opens=s.strftime("%H:%M"),
                closes="24:00" if e.date() > s.date() else e.strftime("%H:%M"),
            )
            for s, e in st.periods
        ],
        open_now=st.open_now,
        open_until=st.open_until,
        next_opening=st.next_opening,
        closed_reason=(st.closed_reason_en or None) if st.closed_today else None,
    )


def _with_today(unit: OrgUnit, at: dt.datetime) -> UnitWithToday:
    base = UnitOut.model_validate(unit).model_dump()
    return UnitWithToday(**base, today=_today(unit, at))


@router.get("", summary="Member libraries and branches, with today's hours (public)")
def list_libraries(session: DbSession, now: Now) -> list[UnitWithToday]:
    return [_with_today(u, now) for u in service.service_points(session)]


@router.get("/{unit_id}", summary="One library or branch, with today's hours (public)")
def get_library(unit_id: DbId, session: DbSession, now: Now) -> UnitWithToday:
    return _with_today(service.get_unit(session, unit_id), now)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a library or branch")
def create_library(body: UnitCreate, session: DbSession, actor: OrgManager, now: Now) -> UnitOut:
    unit = service.create_unit(session, actor, service.UnitInput(**body.model_dump()), at=now)
    return UnitOut.model_validate(unit)


@router.get("/{unit_id}/opening", summary="Is it open at a moment, and when does it open next")
def opening(
    unit_id: DbId,
    session: DbSession,
    now: Now,
    at: Annotated[Moment | None, Query(description="ISO 8601 with a UTC offset")] = None,
) -> OpeningAnswer:
    unit = service.get_unit(session, unit_id)
    moment = at or now
    sched = service.schedule_of(unit)
    return OpeningAnswer(
        at=moment,
        is_open=rules.is_open(sched, moment),
        open_until=rules.open_until(sched, moment),
        next_opening=rules.next_opening(sched, moment),
    )


@router.put("/{unit_id}/hours", summary="Replace the weekly opening hours")
def set_hours(
    unit_id: DbId, body: WeeklyHoursIn, session: DbSession, actor: OrgManager, now: Now
) -> UnitWithToday:
    unit = service.get_unit(session, unit_id)
    hours: dict[int, list[Period]] = {}
    errors: list[FieldError] = []
    for weekday, periods in body.hours.items():
        for i, p in enumerate(periods):
            try:
                hours.setdefault(weekday, []).append(
                    Period(rules.parse_hhmm(p.opens), rules.parse_hhmm(p.closes))
                )
            except ValueError as exc:
                errors.append(FieldError(f"body.hours.{weekday}.{i}", "invalid_time", str(exc)))
    if errors:
        raise ValidationFailed(errors)
    service.set_weekly_hours(session, actor, unit, hours, at=now)
    session.flush()
    session.refresh(unit)
    return _with_today(unit, now)


@router.get("/{unit_id}/closed-days", summary="Holidays and other closed days (public)")
def list_closed_days(unit_id: DbId, session: DbSession) -> list[ClosedDayOut]:
    return [ClosedDayOut.model_validate(c) for c in service.get_unit(session, unit_id).closed_days]


@router.post("/{unit_id}/closed-days", status_code=status.HTTP_201_CREATED)
def add_closed_day(
    unit_id: DbId, body: ClosedDayIn, session: DbSession, actor: OrgManager, now: Now
) -> ClosedDayOut:
    unit = service.get_unit(session, unit_id)
    closed = service.add_closed_day(
        session, actor, unit, body.day, reason_en=body.reason_en, reason_zh=body.reason_zh, at=now
    )
    return ClosedDayOut.model_validate(closed)


@router.get("/{unit_id}/locations", summary="Floors, zones and shelf ranges (public)")
def list_locations(unit_id: DbId, session: DbSession) -> list[LocationOut]:
    service.get_unit(session, unit_id)
    return [LocationOut.model_validate(x) for x in service.locations_of(session, unit_id)]


@router.post("/{unit_id}/locations", status_code=status.HTTP_201_CREATED)
def add_location(
    unit_id: DbId, body: LocationIn, session: DbSession, actor: OrgManager, now: Now
) -> LocationOut:
    unit = service.get_unit(session, unit_id)
    loc = service.add_location(
        session, actor, unit, service.LocationInput(**body.model_dump()), at=now
    )
    return LocationOut.model_validate(loc)
