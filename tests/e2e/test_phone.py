"""A 390 px phone, in Chinese, with the keyboard (issue 29): a menu button instead of a header
on three lines, the console's menu folded away, the search button on one line, the facets
behind a button above the results, a skip link to the results that lands with a visible
focus, and the 3D library with its book card on the screen."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from biblioverse.demo import STAFF_PASSWORD
from tests.e2e.conftest import Console, accessibility_problems, shot
from tests.e2e.test_journeys import no_horizontal_scroll, sign_in
from tests.e2e.test_twin import a_copy

BOX = "(s) => { const r = document.querySelector(s).getBoundingClientRect(); return [r.top, r.bottom, r.left, r.right, r.height]; }"  # noqa: E501


def box(page: Page, selector: str) -> list[float]:
    return list(page.evaluate(BOX, selector))


def outline(page: Page) -> tuple[str, float]:
    """The focused element's outline: style and width in px."""
    style, width = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    return style, width


def test_the_header_is_one_line_with_a_menu_button_on_a_phone(
    phone: Page, server: str, console: Console
) -> None:
    sign_in(phone, server, "staff", "librarian", STAFF_PASSWORD)
    phone.goto(f"{server}/lang/zh_Hans?next=/staff/readers")
    header = box(phone, ".site-header")
    assert header[4] < 90, header  # one line: the name and the menu button
    expect(phone.get_by_role("link", name="馆藏目录", exact=True)).to_be_hidden()
    # the console's own menu is folded too: the page's heading is on the first screen
    expect(phone.get_by_role("link", name="流通服务台", exact=True)).to_be_hidden()
    assert box(phone, "h1")[0] < 250
    heading_at = box(phone, "h1")[0]
    phone.get_by_text("菜单", exact=True).click()
    expect(phone.get_by_role("link", name="馆藏目录", exact=True)).to_be_visible()
    expect(phone.get_by_role("button", name="退出", exact=True)).to_be_visible()
    assert box(phone, "h1")[0] == heading_at  # the open menu lies over the page
    shot(phone, "phone-menu-open-zh")
    phone.get_by_text("菜单", exact=True).click()
    phone.get_by_text("工作台菜单").click()
    phone.get_by_role("link", name="流通服务台", exact=True).click()
    expect(phone).to_have_url(f"{server}/staff/desk")
    assert no_horizontal_scroll(phone)
    # the keyboard opens the menu as well
    phone.goto(f"{server}/catalog")
    phone.locator(".site-menu summary").focus()
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("link", name="图书馆", exact=True)).to_be_visible()
    assert outline(phone)[1] >= 2
    phone.goto(f"{server}/lang/en?next=/")
    assert console.errors == []


def test_search_on_a_phone_in_chinese_skips_to_the_results_with_the_keyboard(
    phone: Page, server: str, console: Console
) -> None:
    phone.goto(f"{server}/lang/zh_Hans?next=/catalog")
    field = phone.get_by_label("检索联盟所有图书馆")
    button = phone.get_by_role("button", name="搜索")
    # the button's label on one line, beside the field
    assert box(phone, "#catalog-search button")[4] <= box(phone, "#q")[4] + 1
    assert button.evaluate("b => b.getClientRects().length") == 1
    field.fill("history")
    field.press("Enter")
    expect(phone.locator(".hits [role=status]")).to_contain_text("种")
    expect(phone.locator("#results-h")).to_be_focused()
    # facets wait behind a button above the results
    facet = phone.get_by_role("link", name="日文")
    expect(facet).to_be_hidden()
    assert box(phone, ".facet-menu summary")[1] < box(phone, "#results-h")[0]
    phone.get_by_text("筛选", exact=True).click()
    expect(facet).to_be_visible()
    # a facet heading shows a strong focus ring, not Pico's faint one
    phone.locator(".facet-menu details summary").first.focus()
    phone.keyboard.press("Shift+Tab")
    phone.keyboard.press("Tab")
    style, width = outline(phone)
    assert style == "solid" and width >= 3
    facet.click()
    expect(phone.locator(".facets a.facet-on")).to_contain_text("日文")
    expect(phone.locator("#results-h")).to_be_focused()
    assert no_horizontal_scroll(phone)
    shot(phone, "phone-search-facets-zh")
    # opened from a link: the first Tab is "skip to the results", which shows where it went
    phone.goto(f"{server}/catalog?q=history")
    phone.keyboard.press("Tab")
    skip = phone.get_by_role("link", name="跳到检索结果")
    expect(skip).to_be_focused()
    phone.keyboard.press("Enter")
    expect(phone.locator("#results-h")).to_be_focused()
    style, width = outline(phone)
    assert style == "solid" and width >= 3
    top, bottom, left, right, _ = box(phone, "#results-h")
    assert top >= 4 and bottom <= 844 and left >= 0 and right <= 390  # its ring on the screen
    assert accessibility_problems(phone) == []
    phone.goto(f"{server}/lang/en?next=/")
    assert console.errors == []


def test_the_3d_library_and_its_book_card_fit_a_phone_in_chinese(
    phone: Page, server: str, demo_dir: Path, console: Console
) -> None:
    library, item, _, _ = a_copy(demo_dir, "2F-SOC")
    phone.goto(f"{server}/lang/zh_Hans?next=/libraries/{library}/3d")
    expect(phone.locator("#twin-canvas")).to_have_attribute("data-ready", "1", timeout=30_000)
    # the VR control speaks Chinese (no headset here, so it says why there is no button)
    expect(phone.locator("#vr-slot")).to_contain_text("VR 需要头显")
    expect(phone.locator("#vr-slot")).not_to_contain_text("NOT SUPPORTED")
    top, bottom, left, right, _ = box(phone, "#twin-canvas")
    assert top >= 0 and bottom <= 844 and left >= 0 and right <= 390, (top, bottom)
    phone.evaluate(f"window.__twin.openCard({item})")
    card = phone.locator("#book-card")
    expect(card).to_be_visible()
    expect(card.get_by_role("button", name="预约")).to_be_visible()
    c_top, c_bottom, c_left, c_right, _ = box(phone, "#book-card")
    assert top <= c_top and c_bottom <= bottom and left <= c_left and c_right <= right
    assert no_horizontal_scroll(phone)
    shot(phone, "phone-3d-card-zh")
    assert accessibility_problems(phone) == []
    phone.goto(f"{server}/lang/en?next=/")
    assert console.errors == []
