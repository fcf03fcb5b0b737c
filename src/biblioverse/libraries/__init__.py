"""The consortium tree: member libraries, branches, locations, opening hours."""

from biblioverse.libraries.errors import LocationNotFound, OrgUnitNotFound
from biblioverse.libraries.models import ClosedDay, Location, OpeningPeriod, OrgUnit
from biblioverse.libraries.rules import OrgKind, Period, Schedule
from biblioverse.libraries.service import (
    DayStatus,
    LocationInput,
    UnitInput,
    add_closed_day,
    add_location,
    create_unit,
    get_unit,
    get_unit_by_code,
    is_open,
    list_units,
    locations_of,
    next_opening,
    schedule_of,
    service_points,
    set_weekly_hours,
    status_at,
    units_within,
)

__all__ = [
    "ClosedDay",
    "DayStatus",
    "Location",
    "LocationInput",
    "LocationNotFound",
    "OpeningPeriod",
    "OrgKind",
    "OrgUnit",
    "OrgUnitNotFound",
    "Period",
    "Schedule",
    "UnitInput",
    "add_closed_day",
    "add_location",
    "create_unit",
    "get_unit",
    "get_unit_by_code",
    "is_open",
    "list_units",
    "locations_of",
    "next_opening",
    "schedule_of",
    "service_points",
    "set_weekly_hours",
    "status_at",
    "units_within",
]
