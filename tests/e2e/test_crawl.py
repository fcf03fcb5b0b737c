"""Every page a role's navigation reaches, crawled in Debian's Chromium: on a desktop and on a
390 px phone, in English and in Chinese. A page fails on a server error, a console error, a
sideways scroll on the phone, a serious or critical axe-core violation (WCAG 2.2 AA), or, in
Chinese, English left untranslated.

The crawl follows same-origin links (GET only) from the role's home page, three clicks deep,
and opens one page per route pattern (one record, one reader, one device), so that it stays
under a few minutes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, BrowserContext, Page

from biblioverse.demo import READER_PASSWORD, STAFF_PASSWORD, demo_card
from tests.e2e.conftest import PHONE, accessibility_problems

DEPTH = 3
# Not pages: the API and its docs (Swagger UI's own words), files to download, the language
# switch and signing out.
SKIP = re.compile(
    r"^/(api/|static/|lang/|signout|health|metrics)|\.(svg|json|geojson|xml|csv|ics|png|mrc)$"
)
PO = Path(__file__).resolve().parents[2] / "src/biblioverse/locale/zh_Hans/LC_MESSAGES/messages.po"

# The roles of access.Role, each by a demo login; the reader and the anonymous visitor.
ROLES = {
    "anonymous": None,
    "reader": demo_card(5),
    "admin": "admin",
    "librarian": "librarian",
    "cataloguer": "cataloguer",
    "circulation": "circulation",
}
VARIANTS = (("en", False), ("en", True), ("zh_Hans", False), ("zh_Hans", True))


def pattern(url: str) -> str:
    """One route per page kind: numbers and barcodes become {id}; of the query, only whether it
    searches (a page of results is another page than an empty search form)."""
    parts = urlsplit(url)
    path = re.sub(r"/(\d+|[A-Z0-9-]*\d[A-Z0-9-]*)(?=/|$)", "/{id}", parts.path)
    return path + ("?q=…" if "q" in parse_qs(parts.query) else "")


def _english_messages() -> re.Pattern[str]:
    """The catalog's English messages whose Chinese differs: met whole in a Chinese page, each
    is a string that missed its translation."""
    with PO.open("rb") as fh:
        catalog = read_po(fh)
    texts = []
    for m in catalog:
        if not isinstance(m.id, str) or not m.id or not m.string or m.string == m.id:
            continue
        if len(m.id) < 3 or not re.search(r"[a-z]{2}", m.id):
            continue
        parts = re.split(r"%\((\w+)\)[sd]", m.id)  # text, name, text, name, ...
        pieces, names = parts[::2], parts[1::2]
        if len(pieces) > 1 and not re.search(r"[A-Za-z]{4}", "".join(pieces)):
            continue  # "%(low)s to %(high)s" would match any title with "to" in it
        # a code is one word: "Shelf %(code)s" is not a device named "Shelf reader 2F-SOC"
        fills = [r"\S{1,40}?" if n == "code" else ".{1,40}?" for n in names]
        pattern = re.escape(pieces[0])
        for fill, piece in zip(fills, pieces[1:], strict=True):
            pattern += fill + re.escape(piece)
        texts.append(pattern)
    return re.compile("|".join(sorted(texts, key=len, reverse=True)))


ENGLISH = _english_messages()

# The words a Chinese page shows: text nodes and the names of controls, outside code and
# anything marked as another language (titles of English books, the language switch).
WORDS = """() => {
  const out = [];
  const foreign = (el) => { const l = el.closest('[lang]'); return l && !l.lang.startsWith('zh'); };
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement;
    const t = n.textContent.replace(/\\s+/g, ' ').trim();
    if (!t || !el || el.closest('code, script, style, noscript, [hidden]') || foreign(el)) continue;
    if (!el.getClientRects().length) continue;
    out.push(t);
  }
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title]')) {
    if (foreign(el)) continue;
    for (const a of ['aria-label', 'placeholder', 'title']) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a).trim());
    }
  }
  return out;
}"""


# Controls whose words are all Latin letters: in a Chinese page, words a script wrote without
# the page's translations (as three.js's "VR NOT SUPPORTED" was). Names and codes pass.
CONTROLS = """() => [...document.querySelectorAll(
    'button, summary, label, legend, th, [role=button], nav a, .status, [role=status]')]
  .filter(el => el.getClientRects().length && !el.closest('[lang]:not([lang^=zh])'))
  .map(el => el.textContent.replace(/\\s+/g, ' ').trim())
  .filter(t => t && !/[\\u3400-\\u9fff]/.test(t))"""
LATIN_OK = re.compile(
    r"^[\W\d_]*$|^(API|ISBN|MARC|MARCXML|RFID|SIP2|GeoJSON|CSV|3D|VR|QR|✕|English)$"
)


def untranslated(page: Page) -> list[str]:
    words = {t for t in page.evaluate(WORDS) if ENGLISH.fullmatch(t)}
    words |= {t for t in page.evaluate(CONTROLS) if not LATIN_OK.match(t)}
    return sorted(words)


@dataclass
class Crawl:
    server: str
    problems: dict[str, list[str]] = field(default_factory=dict)

    def note(self, where: str, what: list[str]) -> None:
        if what:
            self.problems.setdefault(where, []).extend(what)


# Route patterns already checked in a variant by an earlier role: a page looks the same to each.
CHECKED: dict[tuple[str, bool], set[str]] = {}


def _sign_in(ctx: BrowserContext, server: str, login: str | None) -> None:
    if login is None:
        return
    page = ctx.new_page()
    page.goto(f"{server}/signin")
    page.locator("#login").fill(login)
    page.locator("#password").fill(
        READER_PASSWORD if login.startswith(demo_card(5)[:2]) else STAFF_PASSWORD
    )
    with page.expect_navigation():
        page.locator("#password").press("Enter")
    assert "/signin" not in page.url, f"{login} could not sign in"
    page.close()


def _links(page: Page, server: str) -> list[str]:
    hrefs: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('a[href]')]
              .filter(a => !a.hasAttribute('download'))
              .map(a => a.href)"""
    )
    out = []
    for href in hrefs:
        href = href.split("#")[0]
        if href.startswith(server) and not SKIP.search(urlsplit(href).path):
            out.append(href)
    return out


def _settle(page: Page) -> None:
    if page.locator("#twin-canvas").count():
        page.locator("#twin-canvas[data-ready='1']").wait_for(state="attached", timeout=30_000)
        page.locator("#vr-slot > *").wait_for(state="attached", timeout=10_000)
    # what htmx loads with the page (a device's log, the alarm badge) is part of it
    page.wait_for_function(
        "() => !window.htmx || !document.querySelector('.htmx-request')", timeout=10_000
    )


def _check(ctx: BrowserContext, crawl: Crawl, url: str, where: str, lang: str, phone: bool) -> None:
    page = ctx.new_page()
    try:
        _check_page(page, crawl, url, where, lang, phone)
    finally:
        page.close()


def _check_page(page: Page, crawl: Crawl, url: str, where: str, lang: str, phone: bool) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url)
    status = response.status if response else 0
    if status >= 500 or status in (404, 405):
        crawl.note(where, [f"HTTP {status}"])
        return
    _settle(page)
    crawl.note(where, [f"console: {e}" for e in errors])
    if phone and page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    ):
        crawl.note(where, ["scrolls sideways"])
    crawl.note(where, [f"axe: {p}" for p in accessibility_problems(page)])
    if lang == "zh_Hans":
        crawl.note(where, [f"English: {t!r}" for t in untranslated(page)])


def _context(
    browser: Browser, server: str, state: object, lang: str, phone: bool
) -> BrowserContext:
    kw: dict[str, object] = (
        {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
        if phone
        else {"viewport": {"width": 1280, "height": 900}}
    )
    ctx = browser.new_context(locale="en-GB", storage_state=state, **kw)  # type: ignore[arg-type]
    page = ctx.new_page()
    page.goto(f"{server}/lang/{lang}")
    page.close()
    return ctx


def _discover(browser: Browser, server: str, role: str) -> tuple[dict[str, str], object]:
    """The role's pages, one URL per route pattern, found breadth first from its home in
    English on a desktop; and the signed-in browser state, for the other variants."""
    if role in DISCOVERED:
        return DISCOVERED[role]
    home = f"{server}/staff" if role not in ("anonymous", "reader") else f"{server}/"
    finder = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    _sign_in(finder, server, ROLES[role])
    page = finder.new_page()
    seen = {pattern(home): home}
    frontier = [home]
    for _ in range(DEPTH):
        following = []
        for url in frontier:
            response = page.goto(url)
            if response is None or response.status >= 400:
                continue
            for link in _links(page, server):
                if pattern(link) not in seen:
                    seen[pattern(link)] = link
                    following.append(link)
        frontier = following
    state = finder.storage_state()
    finder.close()
    DISCOVERED[role] = (seen, state)
    return seen, state


DISCOVERED: dict[str, tuple[dict[str, str], object]] = {}


@pytest.mark.parametrize(("lang", "phone"), VARIANTS, ids=["en", "en-phone", "zh", "zh-phone"])
@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_a_role_reaches_passes(
    browser: Browser, server: str, role: str, lang: str, phone: bool
) -> None:
    seen, state = _discover(browser, server, role)
    # a page another role has checked in this variant looks the same; each role's home differs
    checked = CHECKED.setdefault((lang, phone), set())
    home = pattern(f"{server}/staff" if role not in ("anonymous", "reader") else f"{server}/")
    todo = {p: u for p, u in seen.items() if p not in checked or p == home}
    checked.update(todo)
    crawl = Crawl(server)
    ctx = _context(browser, server, state, lang, phone)
    try:
        for pat, url in sorted(todo.items()):
            _check(ctx, crawl, url, pat, lang, phone)
    finally:
        ctx.close()
    report = "\n".join(f"{w}: {'; '.join(p)}" for w, p in sorted(crawl.problems.items()))
    assert crawl.problems == {}, (
        f"{role} ({lang}, {'phone' if phone else 'desktop'}) crawled {sorted(todo)}:\n{report}"
    )
