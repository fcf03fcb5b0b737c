"""Request and response models of the organisation tree."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from biblioverse.fields import DbId, IsoDate, Line, WholeNumber
from biblioverse.libraries.rules import OrgKind


class UnitCreate(BaseModel):
    kind: OrgKind
    parent_id: DbId
    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name_en: Line = Field(min_length=1, max_length=200)
    name_zh: Line = Field(min_length=1, max_length=200)
    isil: str | None = Field(default=None, max_length=16)
    address: Line = Field(default="", max_length=400)
    phone: Line = Field(default="", max_length=40)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


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


class PeriodIn(BaseModel):
    opens: str = Field(max_length=5, examples=["09:00"])
    closes: str = Field(max_length=5, examples=["21:00"])


Weekday = Annotated[int, Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")]


class WeeklyHoursIn(BaseModel):
    """Weekday (0 = Monday) to periods 'HH:MM'-'HH:MM'; a weekday left out is closed."""

    hours: dict[Weekday, Annotated[list[PeriodIn], Field(max_length=8)]]


class ClosedDayIn(BaseModel):
    day: IsoDate
    reason_en: Line = Field(default="", max_length=200)
    reason_zh: Line = Field(default="", max_length=200)


class ClosedDayOut(ClosedDayIn):
    model_config = ConfigDict(from_attributes=True)


class OpeningAnswer(BaseModel):
    at: dt.datetime
    is_open: bool
    open_until: dt.datetime | None
    next_opening: dt.datetime | None


class LocationIn(BaseModel):
    code: Line = Field(min_length=1, max_length=32)
    floor: WholeNumber = Field(ge=-5, le=100)
    zone: Line = Field(min_length=1, max_length=64)
    name_en: Line = Field(min_length=1, max_length=200)
    name_zh: Line = Field(min_length=1, max_length=200)
    shelf_from: Line = Field(default="", max_length=32)
    shelf_to: Line = Field(default="", max_length=32)


class LocationOut(LocationIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_unit_id: int
