"""Use cases of the organisation tree and its calendars."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from biblioverse import callnumbers, reference
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.errors import DuplicateValue, FieldError, PermissionDenied, ValidationFailed
from biblioverse.i18n import N_
from biblioverse.libraries import rules
from biblioverse.libraries.errors import OrgUnitNotFound
from biblioverse.libraries.models import (
    ClosedDay,
    Location,
    OpeningPeriod,
    OrgUnit,
    Shelf,
    new_here_code,
)
from biblioverse.libraries.rules import OrgKind, Period, Schedule


def ensure(actor: Actor, permission: Permission, path: str) -> None:
    if not actor.can(permission, path):
        raise PermissionDenied(f"you may not do this here ({permission.value})")


def get_unit(session: Session, unit_id: int) -> OrgUnit:
    unit = session.get(OrgUnit, unit_id)
    if unit is None:
        raise OrgUnitNotFound(unit_id)
    return unit


def get_unit_by_code(session: Session, code: str) -> OrgUnit:
    unit = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise OrgUnitNotFound(code)
    return unit


def list_units(session: Session, *, kinds: Sequence[OrgKind] | None = None) -> list[OrgUnit]:
    q = select(OrgUnit).options(selectinload(OrgUnit.periods), selectinload(OrgUnit.closed_days))
    if kinds:
        q = q.where(OrgUnit.kind.in_([k.value for k in kinds]))
    return list(session.scalars(q.order_by(OrgUnit.path)))


@dataclass(frozen=True)
class UnitName:
    id: int
    code: str
    name_en: str
    name_zh: str
    path: str

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") and self.name_zh else self.name_en


def unit_names(session: Session) -> dict[int, UnitName]:
    """Names and tree paths of every unit, without their calendars, as this process keeps
    them (see :mod:`biblioverse.reference`); the mapping is shared: do not change it."""
    return reference.get(session, "libraries.unit_names", _read_unit_names)


def unit_name(session: Session, unit_id: int) -> UnitName:
    """One unit's name and tree path, as kept; read from the database if this process has
    not seen the unit yet (one just created by another process)."""
    kept = unit_names(session).get(unit_id)
    if kept is not None:
        return kept
    u = get_unit(session, unit_id)
    return UnitName(u.id, u.code, u.name_en, u.name_zh, u.path)


def _read_unit_names(session: Session) -> dict[int, UnitName]:
    rows = session.execute(
        select(OrgUnit.id, OrgUnit.code, OrgUnit.name_en, OrgUnit.name_zh, OrgUnit.path)
    )
    return {r.id: UnitName(r.id, r.code, r.name_en, r.name_zh, r.path) for r in rows}


class UnitNameCache:
    """Unit names for labelling search results without a database round trip per search.
    Read again after ``ttl`` seconds, or at once when asked for a unit it has not seen
    (one just created; at most once a second, so an id that no longer exists cannot make
    every search read the table); a renamed library shows its new name within ``ttl``."""

    def __init__(self, factory: Callable[[], Session], ttl: float = 30.0) -> None:
        self._factory = factory
        self._ttl = ttl
        self._names: dict[int, UnitName] = {}
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def get(self, unit_ids: Iterable[int] = ()) -> dict[int, UnitName]:
        names = self._names
        age = time.monotonic() - self._read_at
        if age > self._ttl or (age > 1.0 and any(u not in names for u in unit_ids)):
            with self._lock, self._factory() as session:
                self._names = names = _read_unit_names(session)
                self._read_at = time.monotonic()
        return names


def service_points(session: Session) -> list[OrgUnit]:
    """Libraries and branches: the places a reader can walk into."""
    return list_units(session, kinds=[OrgKind.LIBRARY, OrgKind.BRANCH])


def places_for(session: Session, actor: Actor, permission: Permission) -> list[OrgUnit]:
    """The libraries (not the consortium) where the actor's roles include ``permission``:
    what a console page lets them choose from."""
    return [
        u
        for u in list_units(session)
        if u.kind != OrgKind.CONSORTIUM.value and actor.can(permission, u.path)
    ]


def units_within(session: Session, scope_paths: Sequence[str]) -> list[int]:
    if not scope_paths:
        return []
    q = select(OrgUnit.id)
    cond = None
    for p in scope_paths:
        c = OrgUnit.path.startswith(p, autoescape=True)
        cond = c if cond is None else cond | c
    return list(session.scalars(q.where(cond)))  # type: ignore[arg-type]


@dataclass
class UnitInput:
    kind: OrgKind
    code: str
    name_en: str
    name_zh: str
    parent_id: int | None = None
    isil: str | None = None
    address: str = ""
    phone: str = ""
    timezone: str = "Asia/Shanghai"


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone_errors(name: str) -> list[FieldError]:
    # Only names from the time zone database: a path such as "Asia" or "../x" is not a zone.
    if name not in _zone_names():
        return [
            FieldError(
                "timezone",
                "invalid_timezone",
                N_("unknown time zone %(name)r"),
                {"name": name[:64]},
            )
        ]
    return []


def create_unit(
    session: Session, actor: Actor | None, data: UnitInput, *, at: dt.datetime
) -> OrgUnit:
    """Add a unit to the tree. ``actor`` None is the system itself (setup, demo)."""
    parent = get_unit(session, data.parent_id) if data.parent_id is not None else None
    errors = [
        *rules.parent_errors(data.kind, OrgKind(parent.kind) if parent else None),
        *rules.isil_errors(data.isil),
        *_timezone_errors(data.timezone),
    ]
    if not data.code.strip():
        errors.append(FieldError("code", "required", N_("a short code is required")))
    if not data.name_en.strip():
        errors.append(FieldError("name_en", "required", N_("an English name is required")))
    if not data.name_zh.strip():
        errors.append(FieldError("name_zh", "required", N_("a Chinese name is required")))
    if errors:
        raise ValidationFailed(errors)
    if actor is not None:
        # A new top-level consortium needs a role at no unit; only the system creates one.
        if parent is None:
            raise PermissionDenied("only the system creates a consortium")
        ensure(actor, Permission.ORG_MANAGE, parent.path)
    if session.scalar(select(OrgUnit.id).where(OrgUnit.code == data.code)):
        raise DuplicateValue("library", "code", data.code)
    if data.isil and session.scalar(select(OrgUnit.id).where(OrgUnit.isil == data.isil)):
        raise DuplicateValue("library", "isil", data.isil)
    unit = OrgUnit(
        kind=data.kind.value,
        parent_id=parent.id if parent else None,
        code=data.code,
        isil=data.isil,
        name_en=data.name_en.strip(),
        name_zh=data.name_zh.strip(),
        address=data.address,
        phone=data.phone,
        timezone=data.timezone,
        created_at=at,
    )
    session.add(unit)
    session.flush()
    unit.path = rules.tree_path(parent.path if parent else None, unit.id)
    if actor is not None:
        log_action(
            session,
            actor,
            "library.create",
            entity="library",
            entity_id=unit.id,
            org_unit_id=unit.id,
            at=at,
            details={"code": unit.code, "kind": unit.kind},
        )
    return unit


def here_code(session: Session, actor: Actor, unit_id: int) -> str:
    """The code printed on the library's "you are here" signs: for staff who make the
    signs (a reader who saw it could borrow from home)."""
    unit = get_unit(session, unit_id)
    ensure(actor, Permission.PLANS_MANAGE, unit.path)
    return unit.here_code


def renew_here_code(session: Session, actor: Actor, unit_id: int, *, at: dt.datetime) -> str:
    """A new code for the signs (a photo of one went round): the signs printed before
    still open the map, but no longer show that a phone is in the library."""
    unit = get_unit(session, unit_id)
    ensure(actor, Permission.PLANS_MANAGE, unit.path)
    unit.here_code = new_here_code()
    log_action(
        session,
        actor,
        "library.here_code",
        entity="library",
        entity_id=unit.id,
        org_unit_id=unit.id,
        at=at,
    )
    return unit.here_code


def is_here_code(session: Session, unit_id: int, code: str) -> bool:
    """Whether ``code`` is the one on the library's signs now."""
    unit = session.get(OrgUnit, unit_id)
    return unit is not None and bool(code) and rules.same_code(code, unit.here_code)


def library_of_address(
    session: Session, address: str | None, networks: Mapping[str, Sequence[rules.Network]]
) -> int | None:
    """The library whose network (its Wi-Fi, from the deployment's settings) a phone's
    address is in."""
    code = rules.library_of_address(address, networks)
    if code is None:
        return None
    unit = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    return unit.id if unit is not None else None


def schedule(session: Session, unit_id: int) -> Schedule:
    """The opening hours and closed days of a unit, as this process keeps them (see
    :mod:`biblioverse.reference`)."""
    return reference.get(
        session, f"libraries.schedule.{unit_id}", lambda s: schedule_of(get_unit(s, unit_id))
    )


def schedule_of(unit: OrgUnit) -> Schedule:
    weekly: dict[int, list[Period]] = {}
    for p in unit.periods:
        weekly.setdefault(p.weekday, []).append(Period(p.opens, p.closes))
    return Schedule(
        timezone=unit.timezone,
        weekly=weekly,
        closed_days=frozenset(c.day for c in unit.closed_days),
    )


def set_weekly_hours(
    session: Session,
    actor: Actor | None,
    unit: OrgUnit,
    hours: dict[int, list[Period]],
    *,
    at: dt.datetime,
) -> None:
    """Replace the weekly hours; a weekday left out is closed."""
    if actor is not None:
        ensure(actor, Permission.ORG_MANAGE, unit.path)
    errors = [e for wd, ps in hours.items() for e in rules.period_errors(wd, ps)]
    if errors:
        raise ValidationFailed(errors)
    unit.periods.clear()
    session.flush()
    for wd, ps in sorted(hours.items()):
        for p in ps:
            unit.periods.append(OpeningPeriod(weekday=wd, opens=p.opens, closes=p.closes))
    if actor is not None:
        log_action(
            session,
            actor,
            "library.hours",
            entity="library",
            entity_id=unit.id,
            org_unit_id=unit.id,
            at=at,
        )


def add_closed_day(
    session: Session,
    actor: Actor | None,
    unit: OrgUnit,
    day: dt.date,
    *,
    reason_en: str = "",
    reason_zh: str = "",
    at: dt.datetime,
) -> ClosedDay:
    if actor is not None:
        ensure(actor, Permission.ORG_MANAGE, unit.path)
    if any(c.day == day for c in unit.closed_days):
        raise DuplicateValue("closed day", "day", day.isoformat())
    closed = ClosedDay(day=day, reason_en=reason_en, reason_zh=reason_zh)
    unit.closed_days.append(closed)
    if actor is not None:
        log_action(
            session,
            actor,
            "library.closed_day",
            entity="library",
            entity_id=unit.id,
            org_unit_id=unit.id,
            at=at,
            details={"day": day.isoformat()},
        )
    return closed


@dataclass
class LocationInput:
    code: str
    floor: int
    zone: str
    name_en: str
    name_zh: str
    shelf_from: str = ""
    shelf_to: str = ""


def add_location(
    session: Session, actor: Actor | None, unit: OrgUnit, data: LocationInput, *, at: dt.datetime
) -> Location:
    if actor is not None:
        ensure(actor, Permission.ORG_MANAGE, unit.path)
    if unit.kind == OrgKind.CONSORTIUM:
        raise ValidationFailed(
            [FieldError("org_unit_id", "not_a_building", N_("a consortium has no shelves"))]
        )
    exists = session.scalar(
        select(Location.id).where(Location.org_unit_id == unit.id, Location.code == data.code)
    )
    if exists:
        raise DuplicateValue("location", "code", data.code)
    loc = Location(org_unit_id=unit.id, **data.__dict__)
    session.add(loc)
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "location.create",
            entity="location",
            entity_id=loc.id,
            org_unit_id=unit.id,
            at=at,
            details={"code": loc.code},
        )
    return loc


def locations_of(session: Session, unit_id: int) -> list[Location]:
    return list(
        session.scalars(
            select(Location)
            .where(Location.org_unit_id == unit_id)
            .order_by(Location.floor, Location.code)
        )
    )


@dataclass(frozen=True)
class DayStatus:
    """What a reader wants to know about a library on a day, at a moment."""

    periods: list[tuple[dt.datetime, dt.datetime]]
    open_now: bool
    open_until: dt.datetime | None
    next_opening: dt.datetime | None
    closed_reason_en: str
    closed_reason_zh: str
    closed_today: bool


def status_at(unit: OrgUnit, at: dt.datetime) -> DayStatus:
    s = schedule_of(unit)
    local = at.astimezone(s.tz)
    reason = next((c for c in unit.closed_days if c.day == local.date()), None)
    until = rules.open_until(s, at)
    return DayStatus(
        periods=rules.periods_on(s, local.date()),
        open_now=until is not None,
        open_until=until,
        next_opening=None if until else rules.next_opening(s, at),
        closed_reason_en=reason.reason_en if reason else "",
        closed_reason_zh=reason.reason_zh if reason else "",
        closed_today=reason is not None,
    )


def is_open(unit: OrgUnit, at: dt.datetime) -> bool:
    return rules.is_open(schedule_of(unit), at)


def next_opening(unit: OrgUnit, after: dt.datetime) -> dt.datetime | None:
    return rules.next_opening(schedule_of(unit), after)


# --- shelves -----------------------------------------------------------------------


@dataclass
class ShelfInput:
    location_id: int
    code: str
    first_call: str
    last_call: str
    scheme: str = "clc"
    levels: int = 6
    sides: int = 1


def add_shelf(
    session: Session, actor: Actor | None, unit: OrgUnit, data: ShelfInput, *, at: dt.datetime
) -> Shelf:
    """A bookcase of one of the unit's locations, holding a call-number range."""
    if actor is not None:
        ensure(actor, Permission.ORG_MANAGE, unit.path)
    problems = []
    location = session.get(Location, data.location_id)
    if location is None or location.org_unit_id != unit.id:
        problems.append(FieldError("location_id", "invalid", N_("a location of this library")))
    code = data.code.strip()
    if not code or len(code) > 32:
        problems.append(FieldError("code", "invalid", N_("1 to 32 characters")))
    if not 1 <= data.levels <= 12:
        problems.append(FieldError("levels", "invalid", N_("1 to 12 levels")))
    if data.sides not in (1, 2):
        problems.append(FieldError("sides", "invalid", N_("1 or 2 sides")))
    try:
        scheme = callnumbers.Scheme(data.scheme)
    except ValueError:
        problems.append(FieldError("scheme", "invalid", N_("lcc, ddc or clc")))
        raise ValidationFailed(problems) from None
    first = callnumbers.shelf_key(data.first_call, scheme)
    last = callnumbers.shelf_key(data.last_call, scheme)
    if first is None:
        problems.append(
            FieldError(
                "first_call", "invalid", N_("not a %(scheme)s call number"), {"scheme": scheme.name}
            )
        )
    if last is None:
        problems.append(
            FieldError(
                "last_call", "invalid", N_("not a %(scheme)s call number"), {"scheme": scheme.name}
            )
        )
    if first and last and last < first:
        problems.append(
            FieldError("last_call", "before_first", N_("the range ends before it starts"))
        )
    if problems:
        raise ValidationFailed(problems)
    assert first is not None and last is not None
    if session.scalar(select(Shelf.id).where(Shelf.org_unit_id == unit.id, Shelf.code == code)):
        raise DuplicateValue("shelf", "code", code)
    shelf = Shelf(
        org_unit_id=unit.id,
        location_id=data.location_id,
        code=code,
        levels=data.levels,
        sides=data.sides,
        scheme=scheme.value,
        first_call=data.first_call.strip(),
        last_call=data.last_call.strip(),
        first_key=first,
        last_key=last,
        end_key=callnumbers.range_end(last),
        created_at=at,
    )
    session.add(shelf)
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "shelf.create",
            entity="shelf",
            entity_id=shelf.id,
            org_unit_id=unit.id,
            at=at,
            details={"code": code, "range": [shelf.first_call, shelf.last_call]},
        )
    return shelf


def shelves_of(session: Session, unit_id: int) -> list[Shelf]:
    return list(
        session.scalars(select(Shelf).where(Shelf.org_unit_id == unit_id).order_by(Shelf.code))
    )


def shelf_for(shelves: Sequence[Shelf], key: str | None) -> Shelf | None:
    """The shelf whose range holds a call number's key (the first, when ranges overlap)."""
    if key is None:
        return None
    for shelf in shelves:
        if shelf.first_key <= key < shelf.end_key:
            return shelf
    return None
