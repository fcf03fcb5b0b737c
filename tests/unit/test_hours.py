"""Opening hours: is it open at t, when does it open next (circulation's due dates)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biblioverse.libraries.rules import (
    Period,
    Schedule,
    first_open_moment,
    is_open,
    next_opening,
    open_until,
    parse_hhmm,
    period_errors,
)

BJ = ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=BJ)


# Central library: Monday 12-21, Tuesday to Sunday 9-21, closed on National Day.
CENTRAL = Schedule(
    "Asia/Shanghai",
    {0: [Period(720, 1260)], **{wd: [Period(540, 1260)] for wd in range(1, 7)}},
    frozenset({dt.date(2026, 10, 1)}),
)
AIRPORT = Schedule("Asia/Shanghai", {wd: [Period(360, 1440)] for wd in range(7)})
ROUND_THE_CLOCK = Schedule("Asia/Shanghai", {wd: [Period(0, 1440)] for wd in range(7)})
LUNCH_BREAK = Schedule("Asia/Shanghai", {1: [Period(540, 720), Period(810, 1080)]})


def test_open_inside_a_period_and_closed_at_its_end() -> None:
    assert is_open(CENTRAL, at(2026, 11, 17, 9, 0))  # Tuesday opening minute
    assert is_open(CENTRAL, at(2026, 11, 17, 20, 59))
    assert not is_open(CENTRAL, at(2026, 11, 17, 21, 0))
    assert not is_open(CENTRAL, at(2026, 11, 16, 10, 0))  # Monday morning


def test_is_open_reads_the_branch_time_zone_not_utc() -> None:
    # 01:30 UTC is 09:30 in Beijing.
    assert is_open(CENTRAL, dt.datetime(2026, 11, 17, 1, 30, tzinfo=dt.UTC))
    assert not is_open(CENTRAL, dt.datetime(2026, 11, 17, 0, 30, tzinfo=dt.UTC))


def test_next_opening_skips_the_night_and_the_short_monday() -> None:
    assert next_opening(CENTRAL, at(2026, 11, 15, 22, 0)) == at(2026, 11, 16, 12, 0)
    assert next_opening(CENTRAL, at(2026, 11, 16, 8, 0)) == at(2026, 11, 16, 12, 0)


def test_next_opening_skips_a_holiday() -> None:
    # 30 September 2026 is a Wednesday; 1 October is closed for National Day.
    assert next_opening(CENTRAL, at(2026, 9, 30, 21, 30)) == at(2026, 10, 2, 9, 0)
    assert not is_open(CENTRAL, at(2026, 10, 1, 10, 0))


def test_next_opening_when_open_is_the_next_opening_after_closing() -> None:
    assert next_opening(CENTRAL, at(2026, 11, 17, 10, 0)) == at(2026, 11, 18, 9, 0)


def test_lunch_break_counts_as_a_new_opening() -> None:
    assert next_opening(LUNCH_BREAK, at(2026, 11, 17, 12, 30)) == at(2026, 11, 17, 13, 30)
    assert open_until(LUNCH_BREAK, at(2026, 11, 17, 10, 0)) == at(2026, 11, 17, 12, 0)


def test_airport_closes_at_midnight() -> None:
    assert open_until(AIRPORT, at(2026, 11, 17, 23, 0)) == at(2026, 11, 18, 0, 0)
    assert not is_open(AIRPORT, at(2026, 11, 18, 3, 0))
    assert next_opening(AIRPORT, at(2026, 11, 18, 3, 0)) == at(2026, 11, 18, 6, 0)


def test_round_the_clock_never_opens_and_never_closes() -> None:
    assert is_open(ROUND_THE_CLOCK, at(2026, 11, 17, 3, 0))
    assert next_opening(ROUND_THE_CLOCK, at(2026, 11, 17, 3, 0)) is None
    assert first_open_moment(ROUND_THE_CLOCK, at(2026, 11, 17, 3, 0)) == at(2026, 11, 17, 3, 0)


def test_closed_for_good_has_no_next_opening() -> None:
    assert next_opening(Schedule("Asia/Shanghai", {}), at(2026, 11, 17, 3, 0)) is None


def test_first_open_moment_moves_a_due_date_to_the_next_opening() -> None:
    assert first_open_moment(CENTRAL, at(2026, 10, 1, 15, 0)) == at(2026, 10, 2, 9, 0)
    assert first_open_moment(CENTRAL, at(2026, 10, 2, 15, 0)) == at(2026, 10, 2, 15, 0)


@pytest.mark.parametrize(
    ("text", "minutes"), [("09:00", 540), ("9:30", 570), ("24:00", 1440), ("00:00", 0)]
)
def test_parse_hhmm(text: str, minutes: int) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["24:01", "9", "09:60", "ab:cd", "25:00", ""])
def test_parse_hhmm_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        parse_hhmm(text)


def test_period_errors_name_the_weekday() -> None:
    errs = period_errors(2, [Period(600, 540)])
    assert [(e.field, e.code) for e in errs] == [("hours[2]", "invalid_period")]
    errs = period_errors(2, [Period(540, 720), Period(700, 800)])
    assert [e.code for e in errs] == ["overlapping_periods"]
    assert period_errors(7, [])[0].field == "weekday"


periods = st.lists(
    st.tuples(st.integers(0, 1439), st.integers(1, 1440))
    .filter(lambda p: p[0] < p[1])
    .map(lambda p: Period(*p)),
    max_size=3,
).map(
    lambda ps: [
        p
        for i, p in enumerate(sorted(ps, key=lambda p: p.opens))
        if all(p.opens >= q.closes for q in sorted(ps, key=lambda p: p.opens)[:i])
    ]
)
schedules = st.builds(
    lambda week, closed: Schedule("Asia/Shanghai", week, frozenset(closed)),
    st.dictionaries(st.integers(0, 6), periods),
    st.sets(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)), max_size=10),
)
moments = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=BJ)
)


@settings(max_examples=200, deadline=None)
@given(schedules, moments)
def test_next_opening_is_an_opening(s: Schedule, t: dt.datetime) -> None:
    """Whatever the week, the answer is later than t, open, and closed just before."""
    n = next_opening(s, t)
    if n is None:
        return
    assert n > t
    assert is_open(s, n)
    assert not is_open(s, n - dt.timedelta(minutes=1))
    # Nothing opens in between: once closed after t, it stays closed until n.
    probe, seen_closed = t + dt.timedelta(minutes=7), False
    while probe < n and probe - t < dt.timedelta(days=3):
        if not is_open(s, probe):
            seen_closed = True
        else:
            assert not seen_closed, f"opened at {probe} before the answer {n}"
        probe += dt.timedelta(minutes=15)


@settings(max_examples=200, deadline=None)
@given(schedules, moments)
def test_open_until_agrees_with_is_open(s: Schedule, t: dt.datetime) -> None:
    until = open_until(s, t)
    assert (until is not None) == is_open(s, t)
    if until is not None:
        assert until > t
        assert not is_open(s, until)
