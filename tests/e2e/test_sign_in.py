"""Signing in through the one login field on a phone, in Chinese, with the keyboard only
(ADR 0035): a reader by card number and by e-mail, a librarian by user name."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from biblioverse.demo import READER_PASSWORD, STAFF_PASSWORD, demo_card
from tests.e2e.conftest import Console, accessibility_problems, shot


def tab_to(page: Page, selector: str) -> None:
    """Tab from where the focus is until ``selector`` has it, as a keyboard user would."""
    for _ in range(30):
        if page.evaluate(f"document.activeElement === document.querySelector('{selector}')"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def type_sign_in(page: Page, server: str, login: str, password: str) -> None:
    page.goto(f"{server}/signin")
    tab_to(page, "#login")
    page.keyboard.press("Control+A")  # the field keeps what was typed after an error
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def sign_out(page: Page, server: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{server}/lang/zh_Hans")


def test_one_field_signs_in_readers_and_staff_on_a_phone_in_chinese(
    phone: Page, server: str, console: Console
) -> None:
    phone.goto(f"{server}/lang/zh_Hans")
    phone.goto(f"{server}/signin")
    expect(phone.get_by_label("读者证号、电子邮箱或馆员用户名")).to_be_visible()
    expect(phone.locator("input[type=radio]")).to_have_count(0)

    type_sign_in(phone, server, "nobody-here", "a wrong password")
    expect(phone.locator("#signin-error")).to_have_text("读者证号、电子邮箱、用户名或密码错误。")
    expect(phone.locator("#login")).to_have_attribute("aria-invalid", "true")
    shot(phone, "signin-one-field-phone-zh")
    assert accessibility_problems(phone) == []

    # Reader 7: the other journeys change reader 1's e-mail and sign reader 2 out everywhere.
    type_sign_in(phone, server, demo_card(7), READER_PASSWORD)
    expect(phone.get_by_role("heading", name="我的账户")).to_be_visible()
    sign_out(phone, server)

    type_sign_in(phone, server, "Reader7@Example.org", READER_PASSWORD)
    expect(phone.get_by_role("heading", name="我的账户")).to_be_visible()
    sign_out(phone, server)

    type_sign_in(phone, server, "airport-desk", STAFF_PASSWORD)
    expect(phone.get_by_role("heading", name="馆员工作台")).to_be_visible()
    assert accessibility_problems(phone) == []
    # The wrong password came back as 401, which Chromium logs; nothing else may be logged.
    assert [e for e in console.errors if "status of 401" not in e] == []
