"""Call numbers in shelf order, for LCC, DDC and the Chinese Library Classification."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biblioverse.callnumbers import Scheme, detect, in_range, shelf_key


def ordered(scheme: Scheme, *calls: str) -> None:
    keys = [shelf_key(c, scheme) for c in calls]
    assert all(keys), calls
    assert keys == sorted(keys), [c for _, c in sorted(zip(keys, calls, strict=True))]  # type: ignore[type-var]


def test_lcc_reads_class_numbers_as_whole_numbers_and_cutters_as_decimals() -> None:
    ordered(
        Scheme.LCC,
        "QA9",
        "QA76",
        "QA76.73.P98 L88 2019",
        "QA76.73.P98 L9",
        "QA76.9",
        "QA100",
        "QB1",
        "QC1",
    )


def test_ddc_is_a_decimal_number_then_the_book_number() -> None:
    ordered(Scheme.DDC, "5", "005.1", "005.133 L97", "005.133 L975", "005.2", "100", "895.1")


def test_clc_reads_digits_as_a_hierarchy_then_signs_then_book_numbers() -> None:
    ordered(
        Scheme.CLC,
        "I207.22/12",
        "I247.5/9",
        "I247.5/10",
        "I247.5/123",
        "I3",
        "K825.6=6",
        "TP3",
        "TP31",
        "TP312",
        "TP312-43",
        "TP312(2)",
        "TP3121",
    )


def test_a_shelf_holds_everything_that_extends_its_last_call_number() -> None:
    first, last = shelf_key("QA1", Scheme.LCC), shelf_key("QA76", Scheme.LCC)
    assert first and last
    assert in_range(shelf_key("QA76.73.P98 L88", Scheme.LCC) or "", first, last)
    assert not in_range(shelf_key("QA77", Scheme.LCC) or "", first, last)
    clc_first, clc_last = shelf_key("TP3", Scheme.CLC), shelf_key("TP31", Scheme.CLC)
    assert clc_first and clc_last
    assert in_range(shelf_key("TP312.8/123", Scheme.CLC) or "", clc_first, clc_last)
    assert not in_range(shelf_key("TP39", Scheme.CLC) or "", clc_first, clc_last)


def test_schemes_never_mix() -> None:
    lcc = shelf_key("I247.5", Scheme.LCC)
    clc_first, clc_last = shelf_key("I", Scheme.CLC), shelf_key("I9", Scheme.CLC)
    assert lcc and clc_first and clc_last
    assert not in_range(lcc, clc_first, clc_last)


@pytest.mark.parametrize(
    ("call", "scheme"),
    [
        ("005.133 L97", Scheme.DDC),
        ("I247.5/123", Scheme.CLC),
        ("TP312-43", Scheme.CLC),
        ("PL2658.E1 1990", Scheme.LCC),
    ],
)
def test_a_scheme_is_told_by_the_look_of_the_call_number(call: str, scheme: Scheme) -> None:
    assert detect(call) is scheme


def test_what_is_no_call_number_has_no_key() -> None:
    assert shelf_key(None) is None
    assert shelf_key("   ") is None
    assert shelf_key("Reading room", Scheme.DDC) is None


@given(st.lists(st.integers(0, 9999), min_size=2, max_size=6))
def test_lcc_class_numbers_sort_as_numbers(numbers: list[int]) -> None:
    keys = {n: shelf_key(f"QA{n}", Scheme.LCC) for n in numbers}
    assert sorted(numbers) == sorted(numbers, key=lambda n: keys[n] or "")


@given(st.text(max_size=40))
def test_any_text_gives_a_key_or_none_never_an_error(text: str) -> None:
    for scheme in Scheme:
        key = shelf_key(text, scheme)
        assert key is None or key.startswith(("L|", "D|", "C|"))
