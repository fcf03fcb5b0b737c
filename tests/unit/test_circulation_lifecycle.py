"""Every transition of the loan, hold, transit and courier lifecycles: the allowed ones pass, every
other pair is refused with both states named."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest

from biblioverse.circulation import lifecycle
from biblioverse.circulation.lifecycle import (
    CourierState,
    HoldState,
    IllegalTransition,
    LoanState,
    S,
    move,
)

TABLES: list[tuple[str, Mapping[Any, frozenset[StrEnum]]]] = [
    ("loan", lifecycle.LOAN),
    ("hold", lifecycle.HOLD),
    ("transit", lifecycle.TRANSIT),
    ("courier return", lifecycle.COURIER),
]


@pytest.mark.parametrize(("what", "table"), TABLES)
def test_every_pair_of_states_is_allowed_or_refused_as_the_table_says(
    what: str, table: Mapping[S, frozenset[S]]
) -> None:
    states = list(type(next(iter(table))))
    assert set(table) == set(states), "every state has a row"
    for current in states:
        for target in states:
            if target in table[current]:
                assert move(table, what, current.value, target) is target
            else:
                with pytest.raises(IllegalTransition) as refused:
                    move(table, what, current.value, target)
                assert refused.value.message == (
                    f"a {what} that is {current.value} cannot become {target.value}"
                )


def reachable(table: Mapping[S, frozenset[S]], start: S) -> set[S]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in table[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_terminal_states_go_nowhere_and_every_state_is_reachable() -> None:
    assert reachable(lifecycle.LOAN, LoanState.OPEN) == set(lifecycle.LOAN)
    assert reachable(lifecycle.HOLD, HoldState.WAITING) == set(lifecycle.HOLD)
    assert reachable(lifecycle.COURIER, CourierState.REQUESTED) == set(lifecycle.COURIER)
    assert lifecycle.HOLD[HoldState.FULFILLED] == frozenset()
    assert lifecycle.LOAN[LoanState.RETURNED] == frozenset()


def test_the_item_lifecycle_has_a_row_for_every_status_and_walks_as_written() -> None:
    from biblioverse.catalog.rules import (
        CIRCULATION_STATUSES,
        ITEM_MOVES,
        ItemStatus,
        status_move_allowed,
    )

    assert set(ITEM_MOVES) == set(ItemStatus)
    for current in ItemStatus:
        for target in ItemStatus:
            listed = target == current or target in ITEM_MOVES[current]
            assert status_move_allowed(current, target) is listed, (current, target)
            # By hand, staff never move a copy into or out of circulation's own statuses.
            by_hand = listed and not ({current, target} & CIRCULATION_STATUSES)
            assert status_move_allowed(current, target, by_hand=True) is (
                by_hand or current == target
            ), (current, target)
    # What circulation relies on: a lent copy comes back or is lost, never goes missing.
    assert ITEM_MOVES[ItemStatus.ON_LOAN] == {
        ItemStatus.AVAILABLE,
        ItemStatus.IN_TRANSIT,
        ItemStatus.ON_HOLD_SHELF,
        ItemStatus.LOST,
    }
    assert ItemStatus.ON_LOAN not in ITEM_MOVES[ItemStatus.WITHDRAWN]
