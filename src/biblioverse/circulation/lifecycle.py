"""The lifecycles of loans, holds, transits and courier returns as transition tables. Pure: no I/O.

Every change of state in circulation goes through :func:`move`, so a state the table does
not allow (a fulfilled hold cancelled, a received transit shipped) is refused with the
states named, and tests can walk every allowed transition and try every forbidden one.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from biblioverse.errors import Conflict


class LoanState(StrEnum):
    OPEN = "open"
    LOST = "lost"  # overdue past the rule's limit: the copy is deemed lost, its fee charged
    RETURNED = "returned"


class HoldState(StrEnum):
    WAITING = "waiting"  # in the queue
    SUSPENDED = "suspended"  # keeps its place but is skipped until resumed
    IN_TRANSIT = "in_transit"  # a copy was set aside and travels to the pickup library
    READY = "ready"  # on the hold shelf at the pickup library
    FULFILLED = "fulfilled"  # lent to the reader
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # not collected from the hold shelf in time


class TransitState(StrEnum):
    CREATED = "created"  # to be sent
    SHIPPED = "shipped"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class CourierState(StrEnum):
    REQUESTED = "requested"  # waiting for the courier at the reader's address
    COLLECTED = "collected"  # the loans ended; the copies travel to the library
    DELIVERED = "delivered"  # every copy was scanned in at a library
    CANCELLED = "cancelled"


S = TypeVar("S", LoanState, HoldState, TransitState, CourierState)

LOAN: Mapping[LoanState, frozenset[LoanState]] = {
    LoanState.OPEN: frozenset({LoanState.OPEN, LoanState.LOST, LoanState.RETURNED}),  # OPEN: renew
    LoanState.LOST: frozenset({LoanState.RETURNED}),  # found and brought back
    LoanState.RETURNED: frozenset(),
}

HOLD: Mapping[HoldState, frozenset[HoldState]] = {
    HoldState.WAITING: frozenset(
        {
            HoldState.SUSPENDED,
            HoldState.IN_TRANSIT,
            HoldState.READY,
            HoldState.FULFILLED,  # the reader took a copy from the open shelf
            HoldState.CANCELLED,
            HoldState.EXPIRED,  # past the reader's "not needed after" date
        }
    ),
    HoldState.SUSPENDED: frozenset({HoldState.WAITING, HoldState.CANCELLED, HoldState.EXPIRED}),
    HoldState.IN_TRANSIT: frozenset(
        {HoldState.READY, HoldState.WAITING, HoldState.CANCELLED}  # WAITING: copy went astray
    ),
    HoldState.READY: frozenset(
        {
            HoldState.FULFILLED,
            HoldState.EXPIRED,
            HoldState.CANCELLED,
            HoldState.IN_TRANSIT,  # its copy turned up at another library: sent on
        }
    ),
    HoldState.FULFILLED: frozenset(),
    HoldState.CANCELLED: frozenset(),
    HoldState.EXPIRED: frozenset(),
}

TRANSIT: Mapping[TransitState, frozenset[TransitState]] = {
    TransitState.CREATED: frozenset(
        {TransitState.SHIPPED, TransitState.RECEIVED, TransitState.CANCELLED}
    ),
    TransitState.SHIPPED: frozenset({TransitState.RECEIVED, TransitState.CANCELLED}),
    TransitState.RECEIVED: frozenset(),
    TransitState.CANCELLED: frozenset(),
}

COURIER: Mapping[CourierState, frozenset[CourierState]] = {
    CourierState.REQUESTED: frozenset({CourierState.COLLECTED, CourierState.CANCELLED}),
    CourierState.COLLECTED: frozenset({CourierState.DELIVERED}),
    CourierState.DELIVERED: frozenset(),
    CourierState.CANCELLED: frozenset(),
}

ACTIVE_HOLD = frozenset(
    {HoldState.WAITING, HoldState.SUSPENDED, HoldState.IN_TRANSIT, HoldState.READY}
)
OPEN_TRANSIT = frozenset({TransitState.CREATED, TransitState.SHIPPED})


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, what: str, current: str, target: str) -> None:
        super().__init__(f"a {what} that is {current} cannot become {target}")
        self.current, self.target = current, target


def move(table: Mapping[S, frozenset[S]], what: str, current: str, target: S) -> S:
    """``target`` if the table allows ``current`` to become it; otherwise IllegalTransition."""
    if target not in table[type(target)(current)]:
        raise IllegalTransition(what, current, target.value)
    return target
