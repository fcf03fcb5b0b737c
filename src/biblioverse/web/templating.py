"""The Jinja2 environment, with translations read from the request's locale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from biblioverse import i18n

TEMPLATE_DIR = Path(__file__).parent / "templates"
env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(default=True),
    extensions=["jinja2.ext.i18n"],
)
templates = Jinja2Templates(env=env)
env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
env.policies["ext.i18n.trimmed"] = True


def _hhmm(value: dt.datetime, tz: str) -> str:
    return i18n.format_time(value, tz)


def _closing(value: dt.datetime, tz: str) -> str:
    """A closing time; midnight reads '24:00', the end of the day it closes."""
    text = i18n.format_time(value, tz)
    return "24:00" if text == "00:00" else text


def _date(value: dt.date, fmt: str = "medium") -> str:
    return i18n.format_date(value, fmt)


def _datetime(value: dt.datetime, tz: str = "Asia/Shanghai") -> str:
    return i18n.format_datetime(value, tz)


def _moment(value: dt.datetime, now: dt.datetime, tz: str) -> str:
    return i18n.format_moment(value, now, tz)


@pass_context
def _money(ctx: Context, value: object, currency: str | None = None) -> str:
    """An amount in ``currency``, else the fees' currency (``settings.currency``), as the
    language writes it."""
    if currency is None:
        request = ctx.get("request")
        state = getattr(getattr(request, "app", None), "state", None)
        currency = getattr(getattr(state, "settings", None), "currency", i18n.CURRENCY)
    return i18n.format_money(str(value or 0), currency or i18n.CURRENCY)


def _tr(message: str) -> str:
    """Translate a message that came from code (marked there with N_)."""
    return i18n.gettext(message)


def _nl2br(value: str) -> Markup:
    return Markup("<br>").join(value.splitlines())


env.filters.update(
    moment=_moment,
    closing=_closing,
    hhmm=_hhmm,
    date=_date,
    datetime=_datetime,
    money=_money,
    tr=_tr,
    nl2br=_nl2br,
)


def globals_for(**extra: Any) -> dict[str, Any]:
    locale = i18n.get_locale()
    return {
        "locale": locale,
        "html_lang": i18n.HTML_LANG[locale],
        "locales": i18n.LOCALES,
        **extra,
    }
