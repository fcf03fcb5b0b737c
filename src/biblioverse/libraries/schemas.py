"""Request and response models of the organisation tree."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from biblioverse.db import DbId
from biblioverse.libraries.rules import OrgKind


class UnitCreate(BaseModel):
    kind: OrgKind
    parent_id: DbId
    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name_en: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(min_length=1, max_length=200)
    isil: str | None = Field(default=None, max_length=16)
    address: str = Field(default="", max_length=400)
    phone: str = Field(default="", max_length=40)
    timezone: str = "Asia/Shanghai"


class PeriodOut(BaseModel):
    opens: str
    closes: str


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: OrgKind
    parent_id: int | None
    code: str
    isil: str | None
    name_en: str
    name_zh: str
    address: str
    phone: str
    timezone: str


class TodayOut(BaseModel):
    date: dt.date
    periods: list[PeriodOut]
    open_now: bool
    open_until: dt.datetime | None
    next_opening: dt.datetime | None
    closed_reason: str | None


class UnitWithToday(UnitOut):
    today: TodayOut


class WeeklyHoursIn(BaseModel):
    """Weekday (0 = Monday) to periods 'HH:MM'-'HH:MM'; a weekday left out is closed."""

    hours: dict[int, list[PeriodOut]]


class ClosedDayIn(BaseModel):
    day: dt.date
    reason_en: str = Field(default="", max_length=200)
    reason_zh: str = Field(default="", max_length=200)


class ClosedDayOut(ClosedDayIn):
    model_config = ConfigDict(from_attributes=True)


class OpeningAnswer(BaseModel):
    at: dt.datetime
    is_open: bool
    open_until: dt.datetime | None
    next_opening: dt.datetime | None


class LocationIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    floor: int = Field(ge=-5, le=100)
    zone: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(min_length=1, max_length=200)
    shelf_from: str = Field(default="", max_length=32)
    shelf_to: str = Field(default="", max_length=32)


class LocationOut(LocationIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_unit_id: int
