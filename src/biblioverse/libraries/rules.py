"""Pure decisions about the organisation tree and opening hours. No I/O, no frameworks."""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

from biblioverse.errors import FieldError
from biblioverse.i18n import N_


class OrgKind(StrEnum):
    CONSORTIUM = "consortium"
    LIBRARY = "library"
    BRANCH = "branch"


# Which kind of unit may hang below which.
ALLOWED_PARENT: Mapping[OrgKind, OrgKind | None] = {
    OrgKind.CONSORTIUM: None,
    OrgKind.LIBRARY: OrgKind.CONSORTIUM,
    OrgKind.BRANCH: OrgKind.LIBRARY,
}

# ISO 15511: a prefix (country code or other agency) and a local part, 16 characters at most.
_ISIL = re.compile(r"^[A-Za-z0-9]{1,4}-[A-Za-z0-9:/\-]{1,11}$")


def isil_errors(isil: str | None, field_name: str = "isil") -> list[FieldError]:
    if isil is None:
        return []
    if len(isil) > 16 or not _ISIL.match(isil):
        return [
            FieldError(
                field_name,
                "invalid_isil",
                N_(
                    "an ISIL is a prefix, a hyphen and a local code, 16 characters at most "
                    "(e.g. CN-110000-1)"
                ),
            )
        ]
    return []


# Where each kind belongs, said whole so that a translation need not put English kind names
# in its sentence.
_PARENT_MESSAGES: Mapping[OrgKind, str] = {
    OrgKind.CONSORTIUM: N_("a consortium belongs at the top of the tree"),
    OrgKind.LIBRARY: N_("a library belongs below a consortium"),
    OrgKind.BRANCH: N_("a branch belongs below a library"),
}


def parent_errors(kind: OrgKind, parent_kind: OrgKind | None) -> list[FieldError]:
    if ALLOWED_PARENT[kind] != parent_kind:
        return [FieldError("parent_id", "invalid_parent", _PARENT_MESSAGES[kind])]
    return []


def tree_path(parent_path: str | None, unit_id: int) -> str:
    """Materialised path: '/1/', '/1/4/', ... so 'is X below Y' is a prefix test."""
    return f"{parent_path or '/'}{unit_id}/"


def is_within(path: str, scope_path: str) -> bool:
    return path.startswith(scope_path)


# --- opening hours ---------------------------------------------------------------

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Period:
    """One opening period of a weekday, in minutes after local midnight (end <= 1440)."""

    opens: int
    closes: int


@dataclass(frozen=True)
class Schedule:
    timezone: str
    weekly: Mapping[int, Sequence[Period]]  # 0 = Monday
    closed_days: frozenset[dt.date] = field(default_factory=frozenset)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def period_errors(weekday: int, periods: Iterable[Period]) -> list[FieldError]:
    errors: list[FieldError] = []
    where = f"hours[{weekday}]"
    if not 0 <= weekday <= 6:
        errors.append(FieldError("weekday", "invalid_weekday", N_("weekday is 0 (Monday) to 6")))
    ordered = sorted(periods, key=lambda p: p.opens)
    for i, p in enumerate(ordered):
        if not (0 <= p.opens < p.closes <= MINUTES_PER_DAY):
            errors.append(
                FieldError(
                    where, "invalid_period", N_("a period opens before it closes, within a day")
                )
            )
        elif i and p.opens < ordered[i - 1].closes:
            errors.append(FieldError(where, "overlapping_periods", N_("periods of a day overlap")))
    return errors


def parse_hhmm(text: str) -> int:
    """'09:30' -> 570; '24:00' is the end of the day."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not m:
        raise ValueError(f"not a time of day: {text!r}")
    h, mi = int(m.group(1)), int(m.group(2))
    if mi > 59 or h > 24 or (h == 24 and mi):
        raise ValueError(f"not a time of day: {text!r}")
    return h * 60 + mi


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _local_periods(s: Schedule, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    if day in s.closed_days:
        return []
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=s.tz)
    return [
        (midnight + dt.timedelta(minutes=p.opens), midnight + dt.timedelta(minutes=p.closes))
        for p in sorted(s.weekly.get(day.weekday(), ()), key=lambda p: p.opens)
    ]


def _merged(s: Schedule, first: dt.date, days: int) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Periods of consecutive days, joined where one ends as the next begins (24-hour
    branches, or a late closing that meets an early opening). Lazy: a question answered by
    tomorrow's opening does not build the whole horizon."""
    current: tuple[dt.datetime, dt.datetime] | None = None
    for offset in range(days):
        for start, end in _local_periods(s, first + dt.timedelta(days=offset)):
            if current and current[1] >= start:
                current = (current[0], max(current[1], end))
            else:
                if current:
                    yield current
                current = (start, end)
    if current:
        yield current


def periods_on(s: Schedule, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    return _local_periods(s, day)


def is_open(s: Schedule, at: dt.datetime) -> bool:
    local = at.astimezone(s.tz)
    return any(start <= local < end for start, end in _local_periods(s, local.date()))


def open_until(s: Schedule, at: dt.datetime) -> dt.datetime | None:
    """When the library closes next, if it is open at ``at``."""
    local = at.astimezone(s.tz)
    for start, end in _merged(s, local.date() - dt.timedelta(days=1), 9):
        if start <= local < end:
            return end
    return None


HORIZON_DAYS = 400


def next_opening(s: Schedule, after: dt.datetime) -> dt.datetime | None:
    """The first moment strictly after ``after`` at which the library opens its doors.

    Returns None when nothing opens within the horizon (closed for good, or open around
    the clock with no break to open after).
    """
    local = after.astimezone(s.tz)
    for start, _end in _merged(s, local.date() - dt.timedelta(days=1), HORIZON_DAYS):
        if start > local:
            return start
    return None


def first_open_moment(s: Schedule, at: dt.datetime) -> dt.datetime | None:
    """``at`` itself if open, else the next opening: what a due date is moved to."""
    return at.astimezone(s.tz) if is_open(s, at) else next_opening(s, at)


# --- where a phone is ---------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def same_code(given: str, kept: str) -> bool:
    return hmac.compare_digest(given.encode(), kept.encode())


@cache
def parse_networks(text: str) -> Mapping[str, tuple[Network, ...]]:
    """``CODE=10.1.0.0/16,2001:db8::/48;CODE2=192.168.5.0/24``: the networks (the library's
    Wi-Fi) from which a phone is in the library of that code. Raises ValueError naming the
    part that is wrong."""
    out: dict[str, tuple[Network, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        code, sep, cidrs = part.partition("=")
        if not sep or not code.strip():
            raise ValueError(f"{part!r}: expected LIBRARY_CODE=network,network")
        nets = []
        for cidr in filter(None, (c.strip() for c in cidrs.split(","))):
            try:
                nets.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError as exc:
                raise ValueError(f"{code.strip()}: {cidr!r} is not a network ({exc})") from None
        out[code.strip()] = tuple(nets)
    return MappingProxyType(out)


def library_of_address(
    address: str | None, networks: Mapping[str, Sequence[Network]]
) -> str | None:
    """The code of the library whose network the address is in (the first, if several)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return next((code for code, nets in networks.items() if any(ip in n for n in nets)), None)
