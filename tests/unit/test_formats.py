"""One way to write a date, a moment and an amount per language (issue 29, ADR 0037)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from biblioverse import i18n

NEW_YEAR = dt.datetime(2026, 1, 4, 23, 5, 59, tzinfo=dt.UTC)  # 5 January, 07:05 in Beijing


@pytest.fixture(autouse=True)
def _english_after() -> Iterator[None]:
    yield
    i18n.set_locale("en")


@pytest.mark.parametrize(
    ("locale", "moment", "day", "full", "money"),
    [
        ("en", "5 Jan 2026, 07:05", "5 Jan 2026", "Monday 5 Jan 2026", "CN¥1,234.50"),
        ("zh_Hans", "2026年1月5日 07:05", "2026年1月5日", "2026年1月5日 星期一", "¥1,234.50"),
    ],
)
def test_dates_have_the_month_in_words_no_seconds_and_amounts_their_currency(
    locale: str, moment: str, day: str, full: str, money: str
) -> None:
    i18n.set_locale(locale)
    # Whatever format a caller still names, a page writes one way per language.
    for fmt in ("short", "medium", "long"):
        assert i18n.format_datetime(NEW_YEAR, "Asia/Shanghai", fmt) == moment
    assert i18n.format_date(dt.date(2026, 1, 5)) == day
    assert i18n.format_date(dt.date(2026, 1, 5), "short") == day  # never 05/01/2026
    assert i18n.format_date(dt.date(2026, 1, 5), "full") == full
    assert i18n.format_money("1234.5") == money
    assert i18n.format_money(0).endswith("0.00")
    assert i18n.format_money("2", "EUR") == "€2.00"
