"""Pure decisions of circulation: which rule applies, and when a loan is due.

No I/O and no framework. A rule is a row of the consortium's rule matrix: an org unit (its
tree path; the consortium's root for the default), optionally a reader category and an item
type, and the policy those circumstances get. The most specific matching row wins:
first the deepest org unit (a branch's own rule beats its library's, which beats the
consortium's), then a row naming the item type, then one naming the reader category
(docs/adr/0011).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from biblioverse.circulation.errors import NoRule
from biblioverse.i18n import N_
from biblioverse.libraries.rules import Schedule, first_open_moment, open_until, periods_on


class PickupPolicy(StrEnum):
    ANY = "any"  # any member library
    HOME = "home"  # the reader's home library
    OWNER = "owner"  # the library that owns the item


@dataclass(frozen=True)
class Policy:
    """What a rule grants. A loan period is in days or, for short loans, in hours."""

    loan_days: int = 28
    loan_hours: int | None = None
    renewals: int = 2
    max_loans: int = 20
    max_holds: int = 10
    self_service: bool = True
    mobile_checkout: bool = True
    hold_pickup: PickupPolicy = PickupPolicy.ANY
    fine_per_day: Decimal = Decimal("0.10")
    fine_cap: Decimal = Decimal("10.00")
    lost_after_days: int = 60
    lost_fee: Decimal = Decimal("50.00")
    block_threshold: Decimal = Decimal("10.00")
    floating: bool = False  # a return elsewhere stays there instead of going home
    hold_priority: int = 0  # higher goes first in a title's queue, then request order
    hold_shelf_days: int = 7  # how long a copy waits on the hold shelf to be collected
    courier_fee: Decimal = Decimal("5.00")  # logistics fee of a return collected by courier


@dataclass(frozen=True)
class Rule:
    id: int
    org_path: str  # "/1/" is the consortium, "/1/2/" a library, ...
    reader_category: str | None  # None: any category
    item_type: str | None  # None: any type
    policy: Policy
    name: str = ""

    def matches(self, org_path: str, category: str, item_type: str) -> bool:
        return (
            org_path.startswith(self.org_path)
            and self.reader_category in (None, category)
            and self.item_type in (None, item_type)
        )

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (
            self.org_path.count("/"),
            self.item_type is not None,
            self.reader_category is not None,
        )


@dataclass(frozen=True)
class Explanation:
    """Which rule applied and why: every row that matched, the most specific first."""

    rule: Rule
    candidates: tuple[Rule, ...]

    def reasons(self) -> list[str]:
        r = self.rule
        parts = [
            f"rule {r.id} ({r.name or 'unnamed'}) set at {r.org_path}",
            f"item type {r.item_type or 'any'}",
            f"reader category {r.reader_category or 'any'}",
        ]
        lines = [", ".join(parts)]
        if len(self.candidates) > 1:
            lines.append(
                "more specific than "
                + "; ".join(f"rule {c.id} at {c.org_path}" for c in self.candidates[1:])
            )
        return lines


def is_default_cell(org_path: str, reader_category: str | None, item_type: str | None) -> bool:
    """The consortium's default row: at the root, for any reader and any copy (None).
    Every loan falls back on it, so it may not be moved or narrowed."""
    return org_path.count("/") == 2 and reader_category is None and item_type is None


def resolve(rules: Iterable[Rule], org_path: str, category: str, item_type: str) -> Explanation:
    """The rule for a reader of ``category`` borrowing an item of ``item_type`` at the unit
    with ``org_path``. Ties (two rows equally specific) go to the lower id: the older row."""
    matching = sorted(
        (r for r in rules if r.matches(org_path, category, item_type)),
        key=lambda r: (tuple(-x for x in r.specificity), r.id),
    )
    if not matching:
        raise NoRule(f"no circulation rule for {category}/{item_type} at {org_path}")
    return Explanation(matching[0], tuple(matching))


def due_at(policy: Policy, start: dt.datetime, schedule: Schedule) -> dt.datetime:
    """When a loan made at ``start`` is due, in the branch's time zone.

    Day loans are due at closing time of the due day; a due day on which the branch is
    closed moves to the next day it opens, due at that day's closing. Hour loans end after
    their hours or at closing time, whichever comes first; one made while the branch is
    closed (a kiosk in the night) counts from the next opening.
    """
    local = start.astimezone(schedule.tz)
    if policy.loan_hours is not None:
        begin = first_open_moment(schedule, local) or local
        closing = open_until(schedule, begin)
        due = begin + dt.timedelta(hours=policy.loan_hours)
        return min(due, closing) if closing is not None else due
    return _closing_of_open_day(local.date() + dt.timedelta(days=policy.loan_days), schedule)


# How far ahead a reader may say they still want a title.
HOLD_WANTED_AT_MOST = dt.timedelta(days=366)


def wanted_long_enough(not_needed_after: dt.date, today: dt.date) -> bool:
    """Whether a hold's "not needed after" date may be given: today at the earliest (the
    hold lives through that day), a year ahead at the most."""
    return today <= not_needed_after <= today + HOLD_WANTED_AT_MOST


def hold_expires_at(policy: Policy, ready: dt.datetime, schedule: Schedule) -> dt.datetime:
    """When a copy set aside at ``ready`` leaves the hold shelf unless collected: closing
    time of the policy's last hold-shelf day, moved to the next day the branch opens."""
    local = ready.astimezone(schedule.tz)
    return _closing_of_open_day(local.date() + dt.timedelta(days=policy.hold_shelf_days), schedule)


def _closing_of_open_day(day: dt.date, schedule: Schedule) -> dt.datetime:
    """Closing time of ``day``, or of the next day the branch opens."""
    for offset in range(400):
        periods = periods_on(schedule, day + dt.timedelta(days=offset))
        if periods:
            return max(end for _start, end in periods)
    # A branch that never opens: the plain date, at the end of the day.
    return dt.datetime.combine(day, dt.time(23, 59), tzinfo=schedule.tz)


def policy_errors(p: Policy) -> list[tuple[str, str]]:
    """(field, message) for a policy that cannot work; the messages are marked for
    translation."""
    out: list[tuple[str, str]] = []
    if p.loan_hours is None and not 1 <= p.loan_days <= 366:
        out.append(("loan_days", N_("A loan period of 1 to 366 days.")))
    if p.loan_hours is not None and not 1 <= p.loan_hours <= 72:
        out.append(("loan_hours", N_("A loan period of 1 to 72 hours.")))
    if not 1 <= p.hold_shelf_days <= 90:
        out.append(("hold_shelf_days", N_("From 1 to 90 days.")))
    if not -100 <= p.hold_priority <= 100:
        out.append(("hold_priority", N_("From -100 to 100.")))
    for name in ("renewals", "max_loans", "max_holds", "lost_after_days"):
        if not 0 <= getattr(p, name) <= 10_000:
            out.append((name, N_("A number from 0 to 10,000.")))
    for name in ("fine_per_day", "fine_cap", "lost_fee", "block_threshold", "courier_fee"):
        if getattr(p, name) < 0:
            out.append((name, N_("An amount of 0 or more.")))
    return out


def overdue_days(due: dt.datetime, until: dt.datetime, tz: dt.tzinfo) -> int:
    """Whole days late, counted in the branch's calendar: due on Monday at closing and back
    on Tuesday is one day late; back on Monday night is none."""
    if until <= due:
        return 0
    return max(0, (until.astimezone(tz).date() - due.astimezone(tz).date()).days)


# How far back a machine that kept returns while offline is believed (SIP2 check-in).
OFFLINE_RETURNS = dt.timedelta(days=30)


def returned_at(
    claimed: dt.datetime | None,
    *,
    loaned_at: dt.datetime,
    now: dt.datetime,
    window: dt.timedelta = OFFLINE_RETURNS,
) -> dt.datetime:
    """When a loan ends. ``claimed``: the time a machine says the copy came back (it took the
    return while offline); believed within ``window``, never later than now, and never
    before the loan began: a date before that is a wrong clock or a replayed return, and
    the copy is back either way, so the loan ends when it began rather than being refused
    (which would keep it open, its fines running). None, or older than the window: now."""
    at = now if claimed is None or claimed < now - window else min(claimed, now)
    return max(at, loaned_at)


def overdue_fine(policy: Policy, days: int) -> Decimal:
    """The fine for ``days`` late, capped by the rule."""
    return min(policy.fine_per_day * days, policy.fine_cap)


def pickup_allowed(policy: Policy, pickup_path: str, home_path: str, owner_path: str) -> bool:
    """Whether a copy under ``policy`` may be collected at the library with ``pickup_path``
    by a reader whose home library is ``home_path``; the copy's owner is ``owner_path``.
    A library covers its branches."""
    match policy.hold_pickup:
        case PickupPolicy.ANY:
            return True
        case PickupPolicy.HOME:
            return pickup_path == home_path
        case PickupPolicy.OWNER:
            return pickup_path.startswith(owner_path)
