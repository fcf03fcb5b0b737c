"""English and Simplified Chinese: Babel catalogs, the request's locale, formatting.

Catalogs are the ``.po`` files under ``locale/``, compiled in memory at start-up, so there
is no build step between editing a translation and seeing it. The request's locale lives in
a context variable set by the locale middleware; templates and pages read it from there.
"""

from __future__ import annotations

import datetime as dt
import io
from contextvars import ContextVar
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

if TYPE_CHECKING:
    from biblioverse.errors import FieldError

LOCALES: dict[str, str] = {"en": "English", "zh_Hans": "简体中文"}
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def normalise(code: str | None) -> str | None:
    """'zh-CN', 'zh_Hans', 'zh' -> 'zh_Hans'; 'en-GB' -> 'en'; unknown -> None."""
    if not code:
        return None
    c = code.strip().replace("-", "_").lower()
    if c.startswith("zh"):
        return "zh_Hans"
    if c.startswith("en"):
        return "en"
    return None


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    chosen = normalise(cookie)
    if chosen:
        return chosen
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0]
        chosen = normalise(tag)
        if chosen:
            return chosen
    return DEFAULT_LOCALE


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def get_locale() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(get_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(get_locale()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Marks a message for the catalog where it is defined; it is translated when shown."""
    return message


def babel_locale(locale: str | None = None) -> Locale:
    return Locale.parse("zh_Hans_CN" if (locale or get_locale()) == "zh_Hans" else "en_GB")


def format_time(value: dt.datetime, tz: str) -> str:
    return dates.format_time(value, "HH:mm", tzinfo=dates.get_timezone(tz), locale=babel_locale())


# One way to write a date, and a moment, per language (ADR 0037): the month in words, so
# 05/01 is never read as the wrong day, and no seconds.
DATE_PATTERN = {"en": "d MMM y", "zh_Hans": "y年M月d日"}
MOMENT_PATTERN = {"en": "d MMM y, HH:mm", "zh_Hans": "y年M月d日 HH:mm"}
CURRENCY = "CNY"  # the fees' currency when none is given (settings.currency)


def format_date(value: dt.date, fmt: str = "medium") -> str:
    """A date as every page writes it; ``fmt`` "full" adds the weekday."""
    pattern = DATE_PATTERN[get_locale()]
    if fmt == "full":
        pattern = f"{pattern} EEEE" if get_locale() == "zh_Hans" else f"EEEE {pattern}"
    return dates.format_date(value, pattern, locale=babel_locale())


def format_datetime(value: dt.datetime, tz: str, fmt: str = "medium") -> str:
    """A moment in the library's time zone, as every page writes it (``fmt`` is kept for
    callers that still name one: there is one format per language)."""
    return dates.format_datetime(
        value, MOMENT_PATTERN[get_locale()], tzinfo=dates.get_timezone(tz), locale=babel_locale()
    )


def format_money(amount: Decimal | float | int | str | None, currency: str = CURRENCY) -> str:
    """An amount with its currency and two decimals: 'CN¥1.50', '¥1.50'."""
    return numbers.format_currency(Decimal(str(amount or 0)), currency, locale=babel_locale())


def format_moment(value: dt.datetime, now: dt.datetime, tz: str) -> str:
    """A moment as a reader says it: '09:00', 'tomorrow 09:00', 'Mon 23 Nov 09:00'."""
    zone = dates.get_timezone(tz)
    local, today = value.astimezone(zone), now.astimezone(zone).date()
    time = dates.format_time(local, "HH:mm", locale=babel_locale())
    if local.date() == today:
        return gettext("today %(time)s") % {"time": time}
    if local.date() == today + dt.timedelta(days=1):
        return gettext("tomorrow %(time)s") % {"time": time}
    pattern = "M月d日 EEE" if get_locale() == "zh_Hans" else "EEE d MMM"
    return f"{dates.format_date(local.date(), pattern, locale=babel_locale())} {time}"


def weekday_name(value: dt.date) -> str:
    return dates.format_date(value, "EEEE", locale=babel_locale())


def field_message(error: FieldError) -> str:
    """A field error in the reader's language: its template translated, its values filled
    in (the API keeps the English ``message``)."""
    text = gettext(error.template)
    return text % error.params if error.params else text
