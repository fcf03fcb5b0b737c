"""The board of positions: reports in any order end in the same place."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biblioverse.devices.rules import ErrorKind, PayloadError
from biblioverse.shelves.rules import Board, Kind, parse_report

T0 = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
ITEMS = (1, 2, 3, 4)
ANTENNAS = (10, 20)

report = st.one_of(
    st.tuples(st.just("snapshot"), st.sampled_from(ANTENNAS), st.sets(st.sampled_from(ITEMS))),
    st.tuples(st.just("add"), st.sampled_from(ANTENNAS), st.sets(st.sampled_from(ITEMS))),
    st.tuples(st.just("remove"), st.sampled_from(ANTENNAS), st.sets(st.sampled_from(ITEMS))),
)


def play(board: Board, reports: list[tuple[int, tuple[str, int, set[int]]]]) -> None:
    for n, (kind, antenna, items) in reports:
        order = (T0 + dt.timedelta(seconds=n), n)
        if kind == "snapshot":
            board.snapshot(antenna, items, order)
        elif kind == "add":
            for item in items:
                board.place(item, antenna, order)
        else:
            for item in items:
                board.take(item, antenna, order)


def where(board: Board) -> dict[int, tuple[int, str]]:
    return {i: (p.antenna_id, p.state.value) for i, p in board.positions.items()}


@settings(max_examples=300)
@given(st.lists(report, min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_reports_in_any_order_give_the_positions_of_reports_in_order(
    reports: list[tuple[str, int, set[int]]], rng: random.Random
) -> None:
    numbered = list(enumerate(reports, start=1))
    in_order = Board()
    play(in_order, numbered)
    shuffled = numbered[:]
    rng.shuffle(shuffled)
    any_order = Board()
    play(any_order, shuffled)
    # a copy never reported has no position either way; the others agree
    assert where(any_order) == where(in_order)
    # and playing everything again changes nothing
    before = where(any_order)
    play(any_order, numbered)
    assert where(any_order) == before


def test_browsing_is_counted_when_the_copy_comes_back_without_a_loan() -> None:
    board = Board()
    board.snapshot(10, {1, 2}, (T0, 1))
    board.snapshot(10, {2}, (T0 + dt.timedelta(minutes=5), 2))
    board.snapshot(10, {1, 2}, (T0 + dt.timedelta(minutes=20), 3))
    assert [(u.item_id, u.taken_at, u.back_at) for u in board.uses] == [
        (1, T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=20))
    ]
    lent = Board(lent={1})
    lent.snapshot(10, {1}, (T0, 1))
    lent.snapshot(10, set(), (T0 + dt.timedelta(minutes=5), 2))
    lent.snapshot(10, {1}, (T0 + dt.timedelta(minutes=20), 3))
    assert lent.uses == []


def test_a_message_is_read_with_its_faults_named() -> None:
    r = parse_report(
        b'{"type": "delta", "seq": 7, "ts": "2026-11-21T09:00:00+08:00", "antenna": 2,'
        b' "added": ["e2801160aa", "E2801160AA"], "removed": ["E2801160BB"]}',
        device_id=5,
        received=T0,
    )
    assert r.kind is Kind.DELTA and r.ts == T0 - dt.timedelta(hours=8)
    assert r.added == ("E2801160AA",) and r.removed == ("E2801160BB",) and r.reads == 2
    for payload, field in [
        (b"[]", "payload"),
        (b'{"type": "snapshot", "seq": -1, "ts": 0, "antenna": 1}', "seq"),
        (b'{"type": "snapshot", "seq": 1, "ts": "2026-11-21T09:00:00", "antenna": 1}', "ts"),
        (b'{"type": "snapshot", "seq": 1, "ts": 0, "antenna": 1, "tags": "E280"}', "tags"),
        (b'{"type": "snapshot", "seq": 1, "ts": 0, "antenna": 1, "tags": ["E2 80"]}', "tags[0]"),
        (
            b'{"type": "delta", "seq": 1, "ts": 0, "antenna": 1, "added": ["AAAA"], '
            b'"removed": ["AAAA"]}',
            "removed",
        ),
        # as MQTT brings them: before the calendar's start, and an integer beyond 64 bits
        (b'{"type": "heartbeat", "seq": 1, "ts": "0001-01-01T00:00:00+14:00"}', "ts"),
        (b'{"type": "heartbeat", "seq": 1, "ts": "1899-12-31T23:59:59Z"}', "ts"),
        (b'{"type": "heartbeat", "seq": 100000000000000000000000000000, "ts": 0}', "seq"),
        (b'{"type": "snapshot", "seq": 1, "ts": 0, "antenna": 2147483648}', "antenna"),
    ]:
        with pytest.raises(PayloadError) as err:
            parse_report(payload, device_id=5, received=T0)
        assert err.value.field == field, payload
    with pytest.raises(PayloadError) as err:
        parse_report(
            b'{"type": "heartbeat", "seq": 1, "ts": 0, "device": 6}', device_id=5, received=T0
        )
    assert err.value.kind is ErrorKind.WRONG_DEVICE


def test_a_clock_far_ahead_is_replaced_by_ours() -> None:
    ahead = (T0 + dt.timedelta(hours=3)).isoformat()
    r = parse_report(
        f'{{"type": "heartbeat", "seq": 1, "ts": "{ahead}"}}'.encode(), device_id=1, received=T0
    )
    assert r.skewed and r.ts == T0
