"""Both languages, complete: every message in the code and templates has a translation."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from biblioverse import i18n

ROOT = Path(__file__).resolve().parents[2]


def test_every_extracted_message_is_translated_to_chinese(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "N_",
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "ngettext:1,2",
            "-o",
            str(pot),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    with pot.open("rb") as fh:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    po = i18n.LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="zh_Hans")
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else any(m.string or ())) and not m.fuzzy
    }
    missing = sorted(wanted - translated)
    assert not missing, f"run `make i18n` and translate: {missing}"


def test_locale_negotiation() -> None:
    assert i18n.negotiate(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh_Hans"
    assert i18n.negotiate("en", "zh-CN") == "en"
    assert i18n.negotiate(None, "fr-FR, de") == "en"
    assert i18n.negotiate("zh_Hans", None) == "zh_Hans"


def test_messages_and_dates_follow_the_locale() -> None:
    i18n.set_locale("zh_Hans")
    try:
        assert i18n.gettext("Sign in") == "登录"
        now = dt.datetime(2026, 11, 18, 13, 0, tzinfo=dt.UTC)  # 21:00 in Beijing
        assert (
            i18n.format_moment(now + dt.timedelta(hours=12), now, "Asia/Shanghai") == "明天 09:00"
        )
    finally:
        i18n.set_locale("en")
    assert i18n.gettext("Sign in") == "Sign in"


def test_a_field_error_is_shown_in_the_page_language() -> None:
    """The API keeps English; a page shows the same error in Chinese, as a whole sentence
    (not an English unit kind inside a Chinese one)."""
    from biblioverse.libraries.rules import OrgKind, parent_errors

    (misplaced,) = parent_errors(OrgKind.BRANCH, OrgKind.CONSORTIUM)
    assert misplaced.message == "a branch belongs below a library"
    i18n.set_locale("zh_Hans")
    try:
        assert i18n.field_message(misplaced) == "分馆只能隶属于图书馆"
    finally:
        i18n.set_locale("en")
    assert i18n.field_message(misplaced) == "a branch belongs below a library"
    assert parent_errors(OrgKind.BRANCH, OrgKind.LIBRARY) == []
