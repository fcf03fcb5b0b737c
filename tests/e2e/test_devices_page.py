"""The devices page in a browser, on a desk's screen and at 390 px: an admin registers a
gate (its key shown once), gives it a new key and retires it after the confirmation."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from biblioverse.demo import STAFF_PASSWORD
from tests.e2e.conftest import Console, accessibility_problems, shot
from tests.e2e.test_journeys import no_horizontal_scroll, sign_in


@pytest.mark.parametrize("screen", ["page", "phone"])
def test_admin_registers_a_gate_gives_it_a_new_key_and_retires_it(
    screen: str, request: pytest.FixtureRequest, server: str, console: Console
) -> None:
    view: Page = request.getfixturevalue(screen)
    name = f"Gate {uuid.uuid4().hex[:6]}"
    sign_in(view, server, "staff", "admin", STAFF_PASSWORD)
    view.goto(f"{server}/staff/devices")
    expect(view.get_by_role("heading", name="Devices")).to_be_visible()
    expect(view.locator("#devices")).to_contain_text("Smart shelf reader")  # every kind
    assert no_horizontal_scroll(view)
    view.get_by_role("button", name="New device").click()
    view.get_by_label("Name").fill(name)
    view.get_by_label("Kind").select_option(label="Security gate")
    view.get_by_role("button", name="Register the device").click()
    shown = view.locator("#device-key")
    expect(shown).to_contain_text("shown this once")
    first = shown.locator("code").inner_text()
    assert re.fullmatch(r"bvd_\S+", first)
    expect(view.locator("#device-status")).to_have_text("never seen")
    assert no_horizontal_scroll(view)

    view.get_by_role("button", name="New key").click()
    expect(view.locator("#device-key")).to_contain_text("the old one is refused")
    second = view.locator("#device-key code").inner_text()
    assert second != first
    refused = view.request.get(f"{server}/api/v1/devices/me", headers={"X-Device-Key": first})
    assert refused.status == 401
    ok = view.request.get(f"{server}/api/v1/devices/me", headers={"X-Device-Key": second})
    assert ok.status == 200

    view.get_by_role("button", name="Retire the device").click()
    expect(view.get_by_role("heading", name="Retire the device")).to_be_visible()
    expect(view.get_by_text(f"Retire {name}?")).to_be_visible()
    assert accessibility_problems(view) == []
    view.get_by_role("button", name="Yes, retire it").click()
    expect(view.get_by_role("status")).to_contain_text("The device is retired")
    expect(view.locator("#device-status")).to_have_text("retired")
    expect(view.get_by_role("button", name="New key")).to_have_count(0)
    gone = view.request.get(f"{server}/api/v1/devices/me", headers={"X-Device-Key": second})
    assert gone.status == 401
    assert accessibility_problems(view) == []
    assert no_horizontal_scroll(view)
    shot(view, f"device-retired-{screen}")
    view.goto(f"{server}/staff/devices")
    expect(view.locator("#devices tr", has_text=name)).to_contain_text("retired")
    assert console.errors == []
