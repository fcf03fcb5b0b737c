"""The circulation desk by keyboard alone (issue 29): ten copies lent and ten taken back in a
row, on a desktop and on a 390 px phone, the cursor waiting in the empty barcode field after
each result; the second scan of a return says it is already back."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from biblioverse import catalog, circulation, libraries, readers
from biblioverse.db import make_engine, make_session_factory
from biblioverse.demo import FIRST_BARCODE, STAFF_PASSWORD
from tests.e2e.conftest import Console, accessibility_problems, shot
from tests.e2e.test_journeys import no_horizontal_scroll, sign_in


def _reader_and_copies(demo_dir: Path, skip: int) -> tuple[str, list[str]]:
    """An active adult of the central library with nothing on loan and nothing owed, and ten
    copies on the central library's open shelves that no one waits for (not the first
    hundred, which other journeys use)."""
    engine = make_engine(f"sqlite:///{demo_dir / 'biblioverse.db'}")
    with make_session_factory(engine)() as session:
        central = next(u for u in libraries.service_points(session) if u.code == "central")
        busy = select(circulation.Loan.reader_id).where(circulation.Loan.reader_id.is_not(None))
        owing = select(circulation.Fee.reader_id)
        cards = session.scalars(
            select(readers.Reader.card_number)
            .where(
                readers.Reader.status == readers.Status.ACTIVE.value,
                readers.Reader.category == "adult",
                readers.Reader.home_library_id == central.id,
                readers.Reader.id.not_in(busy),
                readers.Reader.id.not_in(owing),
            )
            .order_by(readers.Reader.id.desc())
        ).all()
        queued = select(circulation.Hold.record_id)
        copies = session.scalars(
            select(catalog.Item.barcode)
            .where(
                catalog.Item.org_unit_id == central.id,
                catalog.Item.at_unit_id.is_(None),
                catalog.Item.status == catalog.ItemStatus.AVAILABLE.value,
                catalog.Item.circulates.is_(True),
                catalog.Item.item_type == "book",
                catalog.Item.barcode > str(FIRST_BARCODE + 100),
                catalog.Item.record_id.not_in(queued),
                func.length(catalog.Item.barcode) == 8,
            )
            .order_by(catalog.Item.barcode.desc())
            .offset(skip * 10)
            .limit(10)
        ).all()
    engine.dispose()
    assert len(cards) > skip and len(copies) == 10
    return cards[skip], list(copies)


def _scan(page: Page, field: str, barcode: str) -> None:
    """A scanner types the barcode and presses Enter in the focused field."""
    expect(page.locator(f"#{field}")).to_be_focused()
    expect(page.locator(f"#{field}")).to_have_value("")
    page.keyboard.type(barcode)
    page.keyboard.press("Enter")


def _ten_out_and_back(page: Page, server: str, card: str, copies: list[str], name: str) -> None:
    sign_in(page, server, "staff", "circulation", STAFF_PASSWORD)
    page.goto(f"{server}/staff/desk")
    expect(page.locator("#lend-card")).to_be_focused()
    page.keyboard.type(card)
    page.keyboard.press("Tab")
    page.keyboard.type(copies[0])
    page.keyboard.press("Enter")
    for i, barcode in enumerate(copies):
        if i:
            _scan(page, "lend-barcode", barcode)
        result = page.locator("#desk-result")
        expect(result).to_contain_text(f"({barcode}) to ")
        expect(result).to_contain_text(f"card {card}.")
        expect(result).to_contain_text("Due ")
    expect(page.locator("#lend-barcode")).to_be_focused()
    shot(page, f"desk-ten-lent-{name}")
    # To the return field without the mouse: past the Lend button.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    for barcode in copies:
        _scan(page, "return-barcode", barcode)
        result = page.locator("#desk-result")
        expect(result).to_contain_text("Back: ")
        expect(result).to_contain_text(f"({barcode}), from ")
        expect(result).to_contain_text("no fine")
    expect(page.locator("#return-barcode")).to_be_focused()
    # A barcode that names no copy: said in place, the field empty again for the next one.
    _scan(page, "return-barcode", "NO-SUCH-COPY")
    expect(page.locator("#desk-refusal")).to_have_text("No copy has this barcode.")
    expect(page.locator("#return-barcode")).to_have_value("")
    # The same copy scanned again: already back, not an error.
    _scan(page, "return-barcode", copies[-1])
    expect(page.locator("#desk-result")).to_contain_text("Already back: ")
    expect(page.locator("#desk-result")).to_contain_text(f"({copies[-1]}) was taken back")
    expect(page.locator("#desk-refusal")).to_have_count(0)
    expect(page.locator("#return-barcode")).to_be_focused()
    shot(page, f"desk-already-back-{name}")


@pytest.mark.parametrize("where", ["desktop", "phone"])
def test_the_desk_lends_and_takes_back_ten_copies_by_keyboard_alone(
    where: str, page: Page, phone: Page, server: str, demo_dir: Path, console: Console
) -> None:
    screen = page if where == "desktop" else phone
    card, copies = _reader_and_copies(demo_dir, 0 if where == "desktop" else 1)
    _ten_out_and_back(screen, server, card, copies, where)
    assert no_horizontal_scroll(screen)
    assert [e for e in console.errors if "status of 404" not in e] == []
    assert accessibility_problems(screen) == []  # last: axe's own styles break the CSP
