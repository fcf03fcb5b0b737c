"""The live shelves panel in a browser, during an inventory and after it is closed: it goes
on answering every few seconds (it once failed with a 500 once an inventory was started)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from biblioverse.demo import STAFF_PASSWORD
from tests.e2e.conftest import Console, accessibility_problems
from tests.e2e.test_journeys import no_horizontal_scroll, sign_in


def _next_refresh(view: Page) -> int:
    with view.expect_response(lambda r: "/staff/shelves/live" in r.url, timeout=15_000) as got:
        pass
    return got.value.status


def test_the_live_panel_answers_during_and_after_an_inventory(
    phone: Page, server: str, console: Console
) -> None:
    sign_in(phone, server, "staff", "airport-librarian", STAFF_PASSWORD)
    phone.goto(f"{server}/staff/shelves")
    expect(phone.locator("#count-missing")).to_be_visible()
    assert _next_refresh(phone) == 200
    phone.get_by_label("The whole library").check()
    phone.get_by_role("button", name="Start the inventory").click()
    inventories = phone.locator("#inventories")
    expect(inventories.get_by_role("button", name="Close").first).to_be_visible()
    assert _next_refresh(phone) == 200  # during the inventory
    expect(inventories).to_contain_text("%")
    expect(phone.locator("#count-missing")).to_be_visible()
    assert no_horizontal_scroll(phone)
    phone.once("dialog", lambda dialog: dialog.accept())  # "Close the inventory?"
    inventories.get_by_role("button", name="Close").first.click()
    expect(
        phone.locator("#inventories").get_by_role("link", name="Report (CSV)").first
    ).to_be_visible()
    assert _next_refresh(phone) == 200  # after it
    expect(phone.locator("#count-missing")).to_be_visible()
    assert accessibility_problems(phone) == []
    assert console.errors == []
