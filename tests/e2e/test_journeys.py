"""A reader's and a librarian's main journeys in Debian's Chromium, in English and Chinese,
on a desktop and on a phone, with the keyboard."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import select

from biblioverse import catalog
from biblioverse.building.rules import Metric, Reading, ReadingReport
from biblioverse.building.service import apply_readings
from biblioverse.db import make_engine, make_session_factory
from biblioverse.demo import READER_PASSWORD, STAFF_PASSWORD, demo_card
from biblioverse.shelves import simulate
from biblioverse.shelves.rules import Kind, Report
from biblioverse.shelves.service import apply_reports
from tests.e2e.conftest import Console, accessibility_problems, shot

READER_CARD = demo_card(1)


def sign_in(page: Page, server: str, kind: str, login: str, password: str) -> None:
    """``kind`` is who the test means to sign in; the page finds them by the login alone."""
    page.goto(f"{server}/signin")
    page.locator("#login").fill(login)
    page.locator("#password").fill(password)
    page.locator("#password").press("Enter")


def no_horizontal_scroll(page: Page) -> bool:
    """Nothing wider than the screen. A phone browser widens its layout viewport to fit wide
    content, so compare with the device's width, not with innerWidth."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {width}"))


def test_home_lists_three_libraries_with_todays_hours(
    page: Page, server: str, console: Console
) -> None:
    page.goto(server)
    cards = page.locator("article.library-card")
    expect(cards).to_have_count(3)
    expect(cards.locator("h2")).to_have_text(
        ["Central Library", "Airport Branch", "Community Branch"]
    )
    for i in range(3):
        expect(cards.nth(i).locator(".hours-today")).to_contain_text("Today")
        expect(cards.nth(i).locator(".status")).to_have_text(re.compile(r"(Open now|Closed now)"))
    expect(cards.nth(1).locator(".hours-today")).to_contain_text("06:00–24:00")
    shot(page, "home-en")
    assert console.errors == []


def test_reader_signs_in_and_sees_their_card_in_english_and_chinese(
    page: Page, server: str, console: Console
) -> None:
    sign_in(page, server, "reader", READER_CARD, READER_PASSWORD)
    expect(page).to_have_url(f"{server}/account")
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    expect(page.locator(".card-number")).to_have_text(READER_CARD)
    expect(page.locator(".reader-card")).to_contain_text("林小雨")
    shot(page, "account-en")

    page.get_by_role("link", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_role("heading", name="我的账户")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("读者证号")
    expect(page.locator(".facts")).to_contain_text("中心图书馆")

    # The privacy switch saves in place (htmx), and says so.
    switch = page.get_by_label("保留我的借阅历史")
    was_on = switch.is_checked()
    switch.set_checked(not was_on)
    page.get_by_role("button", name="保存").click()
    expect(page.locator("#settings-form [role=status]")).to_have_text("已保存。")
    page.reload()
    expect(page.get_by_label("保留我的借阅历史")).to_be_checked(checked=not was_on)
    shot(page, "account-zh")
    page.get_by_role("link", name="English").click()
    assert console.errors == []


def test_librarian_signs_in_and_finds_a_reader_in_english_and_chinese(
    page: Page, server: str, console: Console
) -> None:
    sign_in(page, server, "staff", "librarian", STAFF_PASSWORD)
    expect(page).to_have_url(f"{server}/staff")
    expect(page.get_by_role("heading", name="Staff console")).to_be_visible()
    expect(page.locator(".roles")).to_contain_text("Librarian")
    expect(page.locator(".roles")).to_contain_text("Central Library")
    page.get_by_role("link", name="Readers").click()
    page.get_by_label("Search by name, card number or e-mail").fill("林小雨")
    rows = page.locator("#reader-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(READER_CARD)
    shot(page, "staff-readers-en")

    page.get_by_role("link", name="简体中文").click()
    expect(page.get_by_role("heading", name="读者")).to_be_visible()
    page.get_by_role("link", name="概览").click()
    expect(page.get_by_role("heading", name="馆员工作台")).to_be_visible()
    expect(page.locator(".roles")).to_contain_text("馆员")
    shot(page, "staff-console-zh")
    page.get_by_role("link", name="English").click()
    assert console.errors == []


def test_airport_librarian_sees_only_airport_readers(page: Page, server: str) -> None:
    sign_in(page, server, "staff", "airport-librarian", STAFF_PASSWORD)
    page.goto(f"{server}/staff/readers?q=林小雨")
    expect(page.locator("#reader-results [role=status]")).to_have_text("No readers found.")


def test_registration_on_a_phone_with_the_keyboard(
    phone: Page, server: str, console: Console
) -> None:
    phone.goto(f"{server}/register")
    assert no_horizontal_scroll(phone)
    # Submit empty: each field says what is wrong.
    phone.get_by_role("button", name="Register").click()
    expect(phone.locator("#e-name")).to_have_text("Please give your name.")
    expect(phone.locator("#f-name")).to_have_attribute("aria-invalid", "true")
    shot(phone, "register-errors-phone")

    # Fill it in with the keyboard only: Tab from field to field, Enter to send.
    phone.locator("#f-name").focus()
    phone.keyboard.type("Mei Han")
    phone.locator("#f-birth_date").fill("1994-03-12")  # the date picker is the browser's own
    phone.locator("#f-category").select_option("adult")
    phone.locator("#f-home").select_option(label="Airport Branch")
    phone.locator("#f-email").focus()
    phone.keyboard.type("mei.han@example.org")
    phone.keyboard.press("Tab")
    expect(phone.locator("#f-phone")).to_be_focused()
    phone.keyboard.press("Tab")
    phone.keyboard.type("a long passphrase")
    phone.keyboard.press("Tab")
    expect(phone.locator("#f-password2")).to_be_focused()
    phone.keyboard.type("a long passphrase")
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("heading", name="My account")).to_be_visible()
    expect(phone.locator(".badge-pending")).to_have_text("Pending")
    assert no_horizontal_scroll(phone)
    shot(phone, "account-phone")
    # The refused form came back as 422, which Chromium logs; nothing else may be logged.
    assert [e for e in console.errors if "status of 422" not in e] == []


def test_staff_console_on_a_phone_in_chinese(phone: Page, server: str) -> None:
    phone.goto(f"{server}/lang/zh_Hans")
    phone.goto(f"{server}/signin")
    phone.locator("#login").fill("airport-desk")
    phone.locator("#password").fill(STAFF_PASSWORD)
    phone.get_by_role("button", name="登录").click()
    expect(phone.get_by_role("heading", name="馆员工作台")).to_be_visible()
    assert no_horizontal_scroll(phone)
    shot(phone, "staff-console-phone-zh")


def test_keyboard_user_can_skip_to_content(page: Page, server: str) -> None:
    page.goto(server)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_api_docs_render_from_vendored_files(page: Page, server: str, console: Console) -> None:
    page.goto(f"{server}/api/docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("Biblioverse")
    assert console.errors == []


def test_librarian_activates_a_pending_card_with_the_keyboard_on_a_phone(
    phone: Page, server: str, console: Console
) -> None:
    sign_in(phone, server, "staff", "librarian", STAFF_PASSWORD)
    phone.get_by_role("link", name="Waiting for activation").click()
    expect(phone.locator("#reader-status")).to_have_value("pending")
    button = phone.get_by_role("button", name=re.compile("Activate the card of")).first
    row_id = button.locator("xpath=ancestor::tr").get_attribute("id")
    assert no_horizontal_scroll(phone)
    shot(phone, "staff-pending-phone")
    button.focus()
    phone.keyboard.press("Enter")
    row = phone.locator(f"#{row_id}")
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row.locator(".row-note")).to_have_text("Activated. The card is valid from today.")
    expect(row.locator(".badge")).to_be_focused()
    assert console.errors == []


def test_saving_settings_from_the_keyboard_keeps_focus_on_the_result(
    page: Page, server: str
) -> None:
    sign_in(page, server, "reader", READER_CARD, READER_PASSWORD)
    page.locator("#s-phone").fill("+86 138 0000 1111")
    page.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#settings-form [role=status]")).to_be_focused()
    page.locator("#s-email").fill("not-an-address")
    page.locator("#s-email").press("Enter")
    expect(page.locator("#s-email")).to_be_focused()
    expect(page.locator("#s-email")).to_have_value("not-an-address")
    expect(page.locator("#se-email")).to_have_text("This is not an e-mail address.")


def search_in_chinese(page: Page, server: str, text: str, count: str) -> Locator:
    """The catalogue in Chinese, searched as a reader types and presses Enter: the first
    result's title, once the count says ``count``."""
    page.goto(f"{server}/lang/zh_Hans")
    page.goto(f"{server}/catalog")
    page.get_by_label("检索联盟所有图书馆").fill(text)
    page.get_by_label("检索联盟所有图书馆").press("Enter")
    expect(page.locator(".hits [role=status]")).to_contain_text(count)
    return page.locator(".hit-title").first


def test_reader_searches_the_catalogue_in_chinese_on_a_phone(
    phone: Page, server: str, console: Console
) -> None:
    first = search_in_chinese(phone, server, "研究", "种")
    expect(first.locator("b").first).to_have_text("研究")
    phone.get_by_text("筛选", exact=True).click()  # the facets wait behind a button
    phone.get_by_role("link", name=re.compile("日文")).click()
    expect(phone.locator(".facets a.facet-on")).to_contain_text("日文")
    first = phone.locator(".hit-title").first
    first.click()
    expect(phone.get_by_role("heading", level=2, name="馆藏位置")).to_be_visible()
    assert no_horizontal_scroll(phone)
    shot(phone, "catalogue-record-phone-zh")
    assert console.errors == []


def test_cataloguer_creates_a_record_and_a_copy_that_readers_then_find(
    page: Page, phone: Page, server: str, console: Console
) -> None:
    sign_in(page, server, "staff", "cataloguer", STAFF_PASSWORD)
    page.get_by_role("link", name="Cataloguing").click()
    page.get_by_role("link", name=re.compile("New record")).click()
    page.get_by_label("Title").fill("")
    page.get_by_label("Year").fill("1923")
    page.get_by_role("button", name="Create record").click()
    expect(page.locator(".error-summary")).to_contain_text("A title is required.")
    expect(page.locator(".error-summary")).to_be_focused()
    page.get_by_label("Title").fill("Nahan: stories of a call to arms")
    page.get_by_label("Authors").fill("Lu, Xun, 1881-1936")
    page.get_by_label("Language code").fill("chi")
    page.get_by_label("Subjects").fill("Chinese fiction -- 20th century")
    page.get_by_label("Chinese Library Classification").fill("I246.7")
    page.get_by_role("button", name="Create record").click()
    expect(page.locator(".notice")).to_have_text("Saved.")
    page.get_by_label("Barcode").fill("C-NAHAN-1")
    page.get_by_label("Price").fill("28.00")
    page.get_by_role("button", name="Add copy").click()
    expect(page.locator(".notice")).to_have_text("Copy added.")
    expect(page.locator("#copies table")).to_contain_text("C-NAHAN-1")
    shot(page, "cataloguing-record-en")
    # A reader on a phone finds it at once, held at the central library.
    phone.goto(f"{server}/catalog?q=nahan")
    hit = phone.locator(".hit").first
    expect(hit).to_contain_text("Nahan")
    expect(hit).to_contain_text("Central Library")
    assert no_horizontal_scroll(phone)
    shot(phone, "catalogue-new-record-phone")
    # The refused form answers 422, which the browser logs; nothing else may be logged.
    assert [e for e in console.errors if "status of 422" not in e] == []


def test_cataloguing_form_on_a_phone_in_chinese(phone: Page, server: str) -> None:
    sign_in(phone, server, "staff", "cataloguer", STAFF_PASSWORD)
    phone.goto(f"{server}/lang/zh_Hans?next=/staff/catalog")
    phone.get_by_label("按题名、作者、ISBN 或索书号查找书目记录").fill("china")
    phone.get_by_label("按题名、作者、ISBN 或索书号查找书目记录").press("Enter")
    expect(phone.locator("[role=status]").first).to_contain_text("找到")
    phone.get_by_role("link", name=re.compile("^编辑")).first.click()
    expect(phone.get_by_role("heading", name="编辑书目记录")).to_be_visible()
    assert no_horizontal_scroll(phone)
    shot(phone, "cataloguing-edit-phone-zh")


def test_desk_lends_and_takes_back_by_scanning_with_the_keyboard(
    page: Page, server: str, console: Console
) -> None:
    sign_in(page, server, "staff", "circulation", STAFF_PASSWORD)
    page.get_by_role("link", name="Circulation desk").click()
    expect(page.locator("#lend-card")).to_be_focused()
    page.keyboard.type(READER_CARD)
    page.keyboard.press("Tab")
    page.keyboard.type("39000001")  # a scanner types the barcode and presses Enter
    page.keyboard.press("Enter")
    expect(page.locator("#desk-result")).to_contain_text("(39000001) to 林小雨, card")
    # The card stays; the cursor waits in the barcode field for the next copy.
    expect(page.locator("#lend-barcode")).to_be_focused()
    page.keyboard.type("39000001")
    page.keyboard.press("Enter")
    expect(page.locator("#desk-refusal")).to_contain_text("林小雨 already has")
    shot(page, "desk-refusal-en")
    page.locator("#return-barcode").fill("39000001")
    page.locator("#return-barcode").press("Enter")
    expect(page.locator("#desk-result")).to_contain_text("(39000001), from 林小雨")
    expect(page.locator("#desk-result")).to_contain_text("Put it back on the shelf.")
    assert [e for e in console.errors if "status of 409" not in e] == []


def _shelf_book(
    page: Page, server: str, not_record: object = None, library: object = None
) -> dict[str, object]:
    """A book of the demo that stands on its shelf and may be borrowed by phone (in
    ``library``, or any other library than the first book's when ``library`` is negative)."""
    for item_id in range(2, 400):
        item = page.request.get(f"{server}/api/v1/catalog/items/{item_id}").json()
        if (
            item.get("item_type") == "book"
            and item["status"] == "available"
            and item["circulates"]
            and item["record_id"] != not_record
            and (
                library is None
                or (item["library_id"] == library)
                or (isinstance(library, int) and library < 0 and item["library_id"] != -library)
            )
        ):
            return dict(item)
    raise AssertionError("the demo has no such book on a shelf")


def test_reader_places_a_hold_and_borrows_by_phone_with_the_keyboard(
    phone: Page, page: Page, server: str, console: Console
) -> None:
    book = _shelf_book(phone, server)
    library = int(str(book["library_id"]))
    elsewhere = _shelf_book(phone, server, library=-library)
    # The library's signs, as its librarian prints them: each QR code says where it is.
    sign_in(page, server, "staff", "librarian", STAFF_PASSWORD)
    page.goto(f"{server}/libraries/{library}/signs")
    sign_url = page.locator("li.sign code").first.inner_text()
    assert "&here=" in sign_url
    sign_in(phone, server, "reader", READER_CARD, READER_PASSWORD)
    expect(phone.get_by_role("heading", name="My account")).to_be_visible()
    # Reserve a title from its record page.
    other = _shelf_book(phone, server, not_record=book["record_id"])
    phone.goto(f"{server}/catalog/records/{other['record_id']}")
    hold_link = phone.get_by_role("button", name="Place a hold")
    hold_link.focus()
    phone.keyboard.press("Enter")
    expect(phone.get_by_label("Collect it at")).to_be_visible()
    phone.get_by_label("Collect it at").focus()
    phone.keyboard.press("Tab")
    phone.keyboard.press("Enter")
    holds = phone.locator("#holds")
    expect(holds).to_contain_text("Your hold is placed.")
    expect(holds).to_contain_text("number 1 in the queue")
    assert no_horizontal_scroll(phone)
    shot(phone, "account-holds-phone-en")
    # Away from the library the phone cannot borrow: it says how to show where it is.
    phone.get_by_text("Menu", exact=True).click()
    phone.get_by_role("link", name="Borrow").click()
    expect(phone.get_by_role("heading", name="Borrow with your phone")).to_be_visible()
    expect(phone.locator("#borrow-not-here")).to_contain_text("scan a “You are here” sign")
    expect(phone.get_by_label("Barcode of the copy")).to_have_count(0)
    # In the library the reader scans a sign (its QR code opens the map from there), and
    # borrows a copy by typing its barcode (the camera fills the same field).
    phone.goto(sign_url)
    phone.get_by_role("button", name="Borrow with your phone here").click()
    expect(phone.locator("#borrow-here")).to_contain_text("You are in")
    field = phone.get_by_label("Barcode of the copy")
    field.focus()
    phone.keyboard.type(str(book["barcode"]))
    phone.keyboard.press("Enter")
    expect(phone.locator("#borrow-result")).to_contain_text("You borrowed")
    again = phone.get_by_label("Barcode of the copy")
    again.fill(str(book["barcode"]))
    again.press("Enter")
    expect(phone.locator("#borrow-refusal")).to_have_text("This copy is already on loan.")
    far = phone.get_by_label("Barcode of the copy")
    far.fill(str(elsewhere["barcode"]))
    far.press("Enter")
    expect(phone.locator("#borrow-refusal")).to_contain_text(": borrow it there.")
    assert no_horizontal_scroll(phone)
    shot(phone, "borrow-phone-en")
    phone.goto(f"{server}/lang/zh_Hans")
    phone.goto(f"{server}/account#loans")
    expect(phone.locator("#holds")).to_contain_text("排第 1 位")
    shot(phone, "account-holds-phone-zh")
    assert [e for e in console.errors if "status of 409" not in e] == []


def test_holds_and_transits_page_on_a_phone(phone: Page, server: str) -> None:
    sign_in(phone, server, "staff", "librarian", STAFF_PASSWORD)
    phone.goto(f"{server}/staff/transits")
    expect(phone.get_by_role("heading", name="Holds and transits")).to_be_visible()
    expect(phone.get_by_role("heading", name="To send")).to_be_visible()
    assert no_horizontal_scroll(phone)
    shot(phone, "transits-phone-en")


def test_reader_sends_a_book_back_by_courier_and_the_library_collects_it(
    phone: Page, page: Page, server: str, console: Console
) -> None:
    sign_in(phone, server, "reader", READER_CARD, READER_PASSWORD)
    expect(phone.get_by_role("heading", name="My account")).to_be_visible()
    phone.get_by_role("button", name="Send books back by courier").click()
    expect(phone.get_by_role("heading", name="Send books back by courier")).to_be_visible()
    expect(phone.locator("#courier-fee")).to_contain_text("Delivery fee: CN¥5.00")
    # With the keyboard: tick the first book, type the address, keep tomorrow's time. (An
    # earlier journey may have borrowed another book: the reader has one loan or more.)
    first = phone.get_by_role("checkbox").first
    title = first.locator("xpath=..").inner_text().split("\n")[0].strip()
    first.focus()
    phone.keyboard.press("Space")
    phone.get_by_label("Collect from this address").focus()  # past any other loans
    phone.keyboard.type("12 Garden Road, Flat 3")
    assert no_horizontal_scroll(phone)
    shot(phone, "courier-phone-en")
    phone.get_by_role("button", name="Book the courier").focus()
    phone.keyboard.press("Enter")
    courier = phone.locator("#courier")
    expect(courier).to_contain_text("The courier is booked.")
    expect(courier).to_contain_text("Courier booked")
    assert no_horizontal_scroll(phone)
    shot(phone, "account-courier-phone-en")

    # The central library's librarian sees the pickup and marks it collected.
    sign_in(page, server, "staff", "librarian", STAFF_PASSWORD)
    page.goto(f"{server}/staff/transits")
    pickups = page.locator("#pickups")
    expect(pickups).to_contain_text("12 Garden Road, Flat 3")
    row = pickups.locator("tr", has_text="12 Garden Road, Flat 3")
    row.get_by_role("button", name=re.compile("Collected")).click()
    expect(page.get_by_role("status")).to_contain_text("Marked as collected")
    expect(page.locator("#coming")).to_contain_text("a reader, by courier")
    shot(page, "transits-courier-en")

    phone.goto(f"{server}/lang/zh_Hans")
    phone.goto(f"{server}/account#courier")
    expect(phone.locator("#courier")).to_contain_text("正在送往图书馆")
    expect(phone.locator("#loans")).not_to_contain_text(title[:20])
    shot(phone, "account-courier-phone-zh")
    assert console.errors == []


def test_librarian_edits_a_loan_rule_in_chinese(page: Page, server: str) -> None:
    sign_in(page, server, "staff", "admin", STAFF_PASSWORD)
    page.goto(f"{server}/lang/zh_Hans")
    page.goto(f"{server}/staff/rules")
    page.get_by_role("link", name="音像资料").click()  # the demo's rule names are translated
    expect(page.get_by_role("heading", name="修改借阅规则")).to_be_visible()
    days = page.get_by_label("借期（天）")
    expect(days).to_have_value("7")
    days.fill("0")
    page.get_by_role("button", name="保存规则").click()
    expect(page.locator("#e-loan_days")).to_have_text("借期为 1 至 366 天。")
    shot(page, "rule-edit-zh")
    page.get_by_label("借期（天）").fill("10")
    page.get_by_role("button", name="保存规则").click()
    expect(page.get_by_role("status")).to_contain_text("规则已保存")
    expect(page.locator("tr", has_text="音像资料").first).to_contain_text("10")


def _copy_of_type(page: Page, server: str, item_type: str) -> str:
    for item_id in range(1, 300):
        item = page.request.get(f"{server}/api/v1/catalog/items/{item_id}").json()
        if item.get("item_type") == item_type and item.get("status") == "available":
            return str(item["barcode"])
    raise AssertionError(f"the demo has no {item_type} copy on a shelf")


def test_the_desk_sees_reference_books_lent_for_hours_and_precious_ones_kept_in(
    phone: Page, server: str, console: Console
) -> None:
    reference = _copy_of_type(phone, server, "reference")
    precious = _copy_of_type(phone, server, "precious")
    sign_in(phone, server, "staff", "librarian", STAFF_PASSWORD)
    phone.goto(f"{server}/staff/rules")
    phone.get_by_label("Card number").fill(READER_CARD)
    phone.get_by_label("Barcode").fill(reference)
    phone.get_by_label("Barcode").press("Enter")
    why = phone.locator("#why")
    expect(why).to_contain_text("Reference, in the reading room")
    expect(why).to_contain_text("if lent now")
    shot(phone, "rule-reference-en")
    phone.get_by_label("Barcode").fill(precious)
    phone.get_by_label("Barcode").press("Enter")
    expect(why).to_contain_text("Not lent: precious and ancient books never leave the building.")
    expect(why).not_to_contain_text("if lent now")
    phone.goto(f"{server}/lang/zh_Hans")
    phone.goto(f"{server}/staff/rules?card_number={READER_CARD}&barcode={precious}")
    expect(phone.locator("#why")).to_contain_text("不外借：珍善本和古籍不得离馆。")
    shot(phone, "rule-precious-zh")
    assert accessibility_problems(phone) == []
    assert console.errors == []


def test_admin_manages_a_kiosk_on_a_phone_in_chinese(phone: Page, server: str) -> None:
    sign_in(phone, server, "staff", "admin", STAFF_PASSWORD)
    phone.goto(f"{server}/lang/zh_Hans")
    phone.goto(f"{server}/staff/devices")
    expect(phone.get_by_role("heading", name="设备")).to_be_visible()
    expect(phone.get_by_text("kiosk-central")).to_be_visible()
    assert no_horizontal_scroll(phone)
    phone.get_by_role("link", name="kiosk-central").click()  # its SIP2 login
    expect(phone.get_by_role("heading", name="实时日志")).to_be_visible()
    expect(phone.locator("#device-log")).to_contain_text("从未")  # loaded by htmx: never seen
    where = phone.get_by_label("摆放位置")
    where.fill("Ground floor, left of the entrance")
    where.press("Enter")  # the keyboard submits the form
    expect(phone.get_by_role("status")).to_contain_text("设备已保存")
    expect(phone.get_by_text("Ground floor, left of the entrance")).to_be_visible()
    assert no_horizontal_scroll(phone)
    shot(phone, "devices-phone-zh")


def _stir_the_demo(demo_dir: Path) -> tuple[str, str]:
    """What the demo's shelf reader and climate sensor would publish: one copy put back on
    the wrong shelf, the ancient books room too damp. Applied as ingestion applies them, to
    the served demo's database; returns (the copy's barcode, the shelf it belongs on)."""
    engine = make_engine(f"sqlite:///{demo_dir / 'biblioverse.db'}")
    factory = make_session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    with factory() as session:
        world = simulate.load(session)
        a, b = sorted(world.shelves)[:2]
        tag = sorted(world.shelves[a].tags)[0]
        reports = [
            Report(
                world.reader, Kind.SNAPSHOT, 1, now, a, tags=tuple(world.shelves[a].tags - {tag})
            ),
            Report(world.reader, Kind.SNAPSHOT, 2, now, b, tags=(*world.shelves[b].tags, tag)),
        ]
        apply_reports(session, reports, at=now)
        sensor = world.sensors["2F-RARE"]
        apply_readings(
            session,
            [
                ReadingReport(
                    sensor,
                    1,
                    now,
                    (Reading(Metric.HUMIDITY, 59.5), Reading(Metric.TEMPERATURE, 20.4)),
                )
            ],
            at=now,
            devices={sensor: "sensor"},
            health={},
        )
        session.commit()
        barcode = session.scalar(select(catalog.Item.barcode).where(catalog.Item.rfid_tag == tag))
    engine.dispose()
    assert barcode is not None
    return barcode, world.shelves[a].code


def test_librarian_sees_a_mis_shelved_book_and_resolves_a_humidity_alarm_on_a_phone(
    phone: Page, server: str, demo_dir: Path, console: Console
) -> None:
    barcode, home = _stir_the_demo(demo_dir)
    sign_in(phone, server, "staff", "librarian", STAFF_PASSWORD)
    phone.goto(f"{server}/staff/shelves")
    row = phone.locator("#misplaced tr", has_text=barcode)
    expect(row).to_be_visible()
    expect(row).to_contain_text(home)  # where it belongs
    assert no_horizontal_scroll(phone)
    shot(phone, "shelves-phone")

    phone.goto(f"{server}/staff/building")
    zone = phone.locator("#zone-2F-RARE")
    expect(zone).to_contain_text("59.5%")
    expect(zone).to_contain_text("out of range")
    assert no_horizontal_scroll(phone)
    shot(phone, "building-phone")
    # with the keyboard: acknowledge, then resolve with a note
    zone.get_by_role("button", name=re.compile("Acknowledge")).focus()
    phone.keyboard.press("Enter")
    expect(zone).to_contain_text("Acknowledged")
    zone.get_by_label("Note").fill("dehumidifier on")
    zone.get_by_label("Note").press("Enter")
    expect(zone.locator(".alarm")).to_have_count(0)


def test_building_and_shelves_pages_in_chinese(page: Page, server: str) -> None:
    sign_in(page, server, "staff", "librarian", STAFF_PASSWORD)
    page.goto(f"{server}/lang/zh_Hans?next=/staff/building")
    expect(page.locator("h1")).to_have_text("楼宇")
    expect(page.locator("#zone-2F-RARE")).to_contain_text("古籍阅览室")
    page.goto(f"{server}/staff/shelves")
    expect(page.locator("h1")).to_have_text("书架与盘点")
    page.get_by_label("整个图书馆").check()
    page.get_by_role("button", name="开始盘点").click()
    expect(page.locator("#inventories tbody tr").first).to_contain_text("%")
    shot(page, "shelves-inventory-zh")
    page.goto(f"{server}/lang/en?next=/")


def test_a_new_email_needs_the_current_password_on_a_phone(phone: Page, server: str) -> None:
    sign_in(phone, server, "reader", READER_CARD, READER_PASSWORD)
    expect(phone.locator("#s-current")).to_be_visible()
    assert accessibility_problems(phone) == []
    phone.locator("#s-email").fill("new.address@example.org")
    phone.locator("#s-email").press("Enter")
    expect(phone.locator("#s-current")).to_be_focused()
    expect(phone.locator("#se-current")).to_have_text(
        "Your current password is needed for this change, and it was not right."
    )
    assert no_horizontal_scroll(phone)
    assert accessibility_problems(phone) == []
    shot(phone, "account-settings-current-password-phone")
    phone.locator("#s-current").fill(READER_PASSWORD)
    phone.locator("#s-current").press("Enter")
    expect(phone.locator("#settings-form [role=status]")).to_have_text("Saved.")
    expect(phone.locator("#s-email")).to_have_value("new.address@example.org")


def test_signing_out_ends_the_session_everywhere(
    browser: Browser, server: str, console: Console
) -> None:
    first, second = browser.new_context(), browser.new_context()
    try:
        a, b = first.new_page(), second.new_page()
        for p in (a, b):
            sign_in(p, server, "reader", demo_card(2), READER_PASSWORD)
            expect(p).to_have_url(re.compile(r"/account"))
        a.get_by_role("button", name="Sign out").click()
        expect(a).to_have_url(f"{server}/")
        b.goto(f"{server}/account")
        expect(b).to_have_url(re.compile(r"/signin"))
    finally:
        first.close()
        second.close()


def test_main_pages_have_no_serious_accessibility_problem_on_a_phone(
    phone: Page, server: str
) -> None:
    public = ["/", "/catalog?q=history", "/signin", "/register"]
    found: dict[str, list[str]] = {}
    for path in public:
        phone.goto(f"{server}{path}")
        found[path] = accessibility_problems(phone)
    sign_in(phone, server, "staff", "librarian", STAFF_PASSWORD)
    for path in ("/staff", "/staff/desk", "/staff/readers", "/staff/rules", "/staff/transits"):
        phone.goto(f"{server}{path}")
        found[path] = accessibility_problems(phone)
    assert {p: v for p, v in found.items() if v} == {}


def test_reader_finds_a_book_by_its_isbn_with_hyphens_in_chinese_on_a_phone(
    phone: Page, server: str, console: Console
) -> None:
    # Catalogued with the ISBN-10 9571117846; the reader types the ISBN-13 from the back cover.
    first = search_in_chinese(phone, server, "978-957-11-1784-3", "1 种")
    expect(first).to_contain_text("明代政治制度")  # the title in Chinese characters leads
    expect(first).to_have_attribute("lang", "zh")
    expect(phone.locator(".hit .vernacular").first).to_contain_text("Ming dai zheng zhi zhi du")
    expect(phone.locator(".facets")).to_contain_text("中文")
    assert no_horizontal_scroll(phone)
    shot(phone, "catalogue-isbn-phone-zh")
    assert accessibility_problems(phone) == []
    first.click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("明代政治制度")
    assert console.errors == []
