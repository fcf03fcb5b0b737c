"""The one percentile every benchmark reports (bench/_harness.py): nearest rank.

``bench`` has no ``__init__.py``; pytest puts the repository's root on ``sys.path`` (the
``tests`` package's parent), so it imports as a namespace package.
"""

from __future__ import annotations

import math
import random

import pytest
from bench._harness import percentile


def shuffled(values: list[float]) -> list[float]:
    out = list(values)
    random.Random(1).shuffle(out)
    return out


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 1), (10, 1), (50, 5), (90, 9), (91, 10), (95, 10), (99, 10), (100, 10)],
)
def test_ten_samples_rank_is_ceiling_of_q_n(q: float, expected: float) -> None:
    assert percentile(shuffled([float(v) for v in range(1, 11)]), q) == expected


def test_hundred_samples_pick_the_qth() -> None:
    values = shuffled([float(v) for v in range(1, 101)])
    assert [percentile(values, q) for q in (1, 7, 50, 95, 99, 100)] == [1, 7, 50, 95, 99, 100]


def test_an_exact_rank_is_not_pushed_up_by_float_rounding() -> None:
    # 0.07 * 100 is 7.000000000000001 in floats; the 7th value, not the 8th
    assert percentile(range(1, 101), 7) == 7
    assert percentile(range(1, 301), 95) == 285
    assert percentile(range(1, 1001), 99.9) == 999


def test_under_twenty_samples_the_p95_is_the_largest() -> None:
    for n in range(1, 20):
        assert percentile(range(n), 95) == n - 1
    assert percentile(range(20), 95) == 18


def test_always_a_measured_value() -> None:
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([3.5], 99) == 3.5


def test_no_samples_is_nan_and_q_must_be_a_percentage() -> None:
    assert math.isnan(percentile([], 95))
    with pytest.raises(ValueError):
        percentile([1.0], 101)
