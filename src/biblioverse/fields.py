"""Field types shared by the request schemas of every context.

They turn nonsense into a 422 that names the field before a service or the database sees it:
ids outside the integer column, control characters in a name, moments outside the
calendar the library keeps.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import annotated_types
from pydantic import AfterValidator, BeforeValidator, Strict

# A row id as clients may send it: positive and within a 32-bit integer column.
MAX_ID = 2**31 - 1
DbId = Annotated[int, annotated_types.Ge(1), annotated_types.Le(MAX_ID)]

# Paging through a list: far beyond any real list, well within the database's integers.
MAX_OFFSET = 10_000_000
Offset = Annotated[int, annotated_types.Ge(0), annotated_types.Le(MAX_OFFSET)]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (such as NUL or a line break) are not allowed")
    return value


# One line of text a person typed: a name, an address, a reason.
Line = Annotated[str, AfterValidator(_no_control_characters)]

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2999, 12, 31, tzinfo=dt.UTC)


def _plausible_moment(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("give a UTC offset, e.g. 2026-11-21T09:00:00+08:00")
    if not EARLIEST <= value <= LATEST:
        raise ValueError("a moment between the years 1900 and 2999")
    return value


def _iso_date_only(value: object) -> object:
    # Pydantic would read 0 as 1970-01-01; a date comes as text or not at all.
    if not isinstance(value, str | dt.date):
        raise ValueError("a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]
# Whole numbers and yes/no as JSON says them: no true for 1, no "3" for 3.
WholeNumber = Annotated[int, Strict()]
YesNo = Annotated[bool, Strict()]


_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_moment_only(value: object) -> object:
    # Pydantic would read 99999999999 as epoch milliseconds; a moment comes as ISO 8601 text.
    if not isinstance(value, str | dt.datetime):
        raise ValueError("a moment as ISO 8601 text, e.g. 2026-11-21T09:00:00+08:00")
    if isinstance(value, str) and not _ISO_MOMENT.match(value):
        raise ValueError("a moment as ISO 8601 text, e.g. 2026-11-21T09:00:00+08:00")
    return value


# An aware moment within the years a library calendar can answer for.
Moment = Annotated[
    dt.datetime, BeforeValidator(_iso_moment_only), AfterValidator(_plausible_moment)
]
