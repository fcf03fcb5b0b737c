"""The rule matrix (most specific row wins, and why) and due dates on the branch calendar."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from biblioverse.circulation.errors import NoRule
from biblioverse.circulation.rules import (
    Policy,
    Rule,
    due_at,
    hold_expires_at,
    policy_errors,
    resolve,
)
from biblioverse.libraries.rules import Period, Schedule

BJ = ZoneInfo("Asia/Shanghai")

# The consortium is /1/; the central library /1/2/ with its community branch /1/2/4/;
# the airport branch /1/3/.
DEFAULT = Rule(1, "/1/", None, None, Policy(loan_days=28), "consortium default")
CHILDREN = Rule(2, "/1/", "child", None, Policy(loan_days=21, max_loans=5), "children")
AIRPORT = Rule(3, "/1/3/", None, None, Policy(loan_days=14, floating=True), "airport")
REFERENCE = Rule(4, "/1/", None, "reference", Policy(loan_hours=3, renewals=0), "reference")
AIRPORT_KIDS = Rule(5, "/1/3/", "child", None, Policy(loan_days=7), "airport children")
CENTRAL_DVD = Rule(6, "/1/2/", None, "audiovisual", Policy(loan_days=7), "central AV")
MATRIX = [DEFAULT, CHILDREN, AIRPORT, REFERENCE, AIRPORT_KIDS, CENTRAL_DVD]


@pytest.mark.parametrize(
    ("org_path", "category", "item_type", "rule_id"),
    [
        ("/1/2/", "adult", "book", 1),  # nothing more specific: the consortium's default
        ("/1/2/", "child", "book", 2),  # a category row beats the bare default
        ("/1/3/", "adult", "book", 3),  # the branch's own row beats the consortium's
        ("/1/3/", "child", "book", 5),  # branch + category beats branch alone
        ("/1/3/", "child", "reference", 5),  # the branch outranks a consortium type row
        ("/1/2/", "adult", "reference", 4),
        ("/1/2/4/", "adult", "audiovisual", 6),  # a library's row covers its branches
        ("/1/3/", "adult", "audiovisual", 3),  # ... but not another library's
    ],
)
def test_the_most_specific_rule_wins(
    org_path: str, category: str, item_type: str, rule_id: int
) -> None:
    assert resolve(MATRIX, org_path, category, item_type).rule.id == rule_id


def test_the_explanation_names_the_rule_and_what_it_beat() -> None:
    why = resolve(MATRIX, "/1/3/", "child", "book")
    assert [r.id for r in why.candidates] == [5, 3, 2, 1]
    assert why.reasons() == [
        "rule 5 (airport children) set at /1/3/, item type any, reader category child",
        "more specific than rule 3 at /1/3/; rule 2 at /1/; rule 1 at /1/",
    ]


def test_equal_rows_go_to_the_older_and_no_row_is_an_error() -> None:
    twin = Rule(9, "/1/", "child", None, Policy(loan_days=1))
    assert resolve([twin, CHILDREN], "/1/2/", "child", "book").rule.id == 2
    with pytest.raises(NoRule):
        resolve([AIRPORT], "/1/2/", "adult", "book")


# Central: Monday 12-21, Tuesday to Sunday 9-21, closed on National Day (Thursday 1 October).
CENTRAL = Schedule(
    "Asia/Shanghai",
    {0: [Period(720, 1260)], **{wd: [Period(540, 1260)] for wd in range(1, 7)}},
    frozenset({dt.date(2026, 10, d) for d in range(1, 8)}),  # the Golden Week
)
LUNCH_BREAK = Schedule(
    "Asia/Shanghai", {wd: [Period(540, 720), Period(810, 1080)] for wd in range(7)}
)


def at(m: int, d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, m, d, hh, mm, tzinfo=BJ)


def test_a_day_loan_is_due_at_closing_time_of_its_day() -> None:
    assert due_at(Policy(loan_days=14), at(9, 1, 10), CENTRAL) == at(9, 15, 21)


def test_a_due_day_in_a_holiday_moves_to_the_next_opening_day() -> None:
    # 14 days after 20 September is 4 October, in the Golden Week: due on 8 October.
    assert due_at(Policy(loan_days=14), at(9, 20, 18), CENTRAL) == at(10, 8, 21)


def test_an_hour_loan_ends_at_closing_time_at_the_latest() -> None:
    three_hours = Policy(loan_hours=3)
    assert due_at(three_hours, at(9, 1, 10), CENTRAL) == at(9, 1, 13)
    assert due_at(three_hours, at(9, 1, 19, 30), CENTRAL) == at(9, 1, 21)
    # Before the lunch break: the loan ends when the doors close at noon.
    assert due_at(three_hours, at(9, 1, 11), LUNCH_BREAK) == at(9, 1, 12)


def test_an_hour_loan_made_while_closed_counts_from_the_next_opening() -> None:
    # A kiosk in the night on Sunday: the branch opens at 12:00 on Monday.
    assert due_at(Policy(loan_hours=2), at(9, 6, 23), CENTRAL) == at(9, 7, 14)


def test_a_hold_waits_its_shelf_days_to_closing_time_whatever_the_loan_period() -> None:
    # set aside on 25 September with 7 hold-shelf days: 2 October is in the Golden Week
    hour_loans = Policy(loan_hours=3, hold_shelf_days=7)
    assert hold_expires_at(hour_loans, at(9, 25, 15), CENTRAL) == at(10, 8, 21)
    assert hold_expires_at(Policy(hold_shelf_days=3), at(9, 1, 10), CENTRAL) == at(9, 4, 21)


def test_policies_that_cannot_work_name_their_fields() -> None:
    bad = Policy(loan_days=0, renewals=-1, fine_cap=Decimal("-1"))
    assert [f for f, _m in policy_errors(bad)] == ["loan_days", "renewals", "fine_cap"]
    assert policy_errors(Policy(loan_hours=3, loan_days=0)) == []


def test_a_return_is_never_before_its_loan_began_nor_after_now() -> None:
    from biblioverse.circulation.rules import OFFLINE_RETURNS, returned_at

    now = dt.datetime(2026, 11, 18, 6, 0, tzinfo=dt.UTC)
    lent = now - dt.timedelta(days=5)
    day = dt.timedelta(days=1)
    assert returned_at(None, loaned_at=lent, now=now) == now  # a desk's return: now
    assert returned_at(now - 2 * day, loaned_at=lent, now=now) == now - 2 * day  # offline
    assert returned_at(now - 8 * day, loaned_at=lent, now=now) == lent  # before the loan
    assert returned_at(lent, loaned_at=lent, now=now) == lent
    assert returned_at(now + day, loaned_at=lent, now=now) == now  # in the future
    # older than a machine keeps returns offline: not believed, as if it came back now
    old = now - OFFLINE_RETURNS - dt.timedelta(seconds=1)
    assert returned_at(old, loaned_at=old - day, now=now) == now
    # a loan whose start is after this clock (another server's clock ahead) ends no earlier
    assert returned_at(None, loaned_at=now + day, now=now) == now + day
    # in another zone, the same moment
    local = (now - 2 * day).astimezone(BJ)
    assert returned_at(local, loaned_at=lent, now=now) == now - 2 * day
