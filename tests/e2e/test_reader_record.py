"""The reader record at the desk (issue 29) in Chromium: a librarian opens a reader's record
by card number, takes a payment and sees its receipt, and renews the card; on a desktop
and on a 390 px phone, checked by axe-core."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from biblioverse import circulation, libraries, readers
from biblioverse.access import Actor, Grant, PrincipalKind, Role
from biblioverse.db import make_engine, make_session_factory
from biblioverse.demo import STAFF_PASSWORD
from tests.e2e.conftest import Console, accessibility_problems, shot
from tests.e2e.test_journeys import no_horizontal_scroll, sign_in


def _reader_owing(demo_dir: Path, card: str) -> None:
    """A reader of the central library, card ``card``, owing it 4.00 and with a card that
    runs out in ten days: written to the served demo's database."""
    engine = make_engine(f"sqlite:///{demo_dir / 'biblioverse.db'}")
    now = dt.datetime.now(dt.UTC)
    with make_session_factory(engine)() as session:
        central = session.scalar(
            select(libraries.OrgUnit).where(libraries.OrgUnit.code == "central")
        )
        assert central is not None
        system = Actor(PrincipalKind.STAFF, 0, "system", grants=(Grant(Role.ADMIN, "/", 0),))
        reader = readers.create_by_staff(
            session,
            system,
            readers.NewReader(
                name=f"Record Journey {card[-2:]}",
                birth_date=dt.date(1985, 5, 5),
                category="adult",
                home_library_id=central.id,
                card_number=card,
                expires_on=readers.local_today(now) + dt.timedelta(days=10),
            ),
            at=now,
        )
        circulation.fees.charge_logistics(
            session, reader.id, central.id, Decimal("4.00"), now, "courier"
        )
        session.commit()
    engine.dispose()


@pytest.mark.parametrize("device", ["page", "phone"])
def test_a_librarian_opens_a_record_by_card_takes_a_payment_and_renews_the_card(
    device: str, request: pytest.FixtureRequest, server: str, demo_dir: Path, console: Console
) -> None:
    page: Page = request.getfixturevalue(device)
    card = "E2ERR0" + ("1" if device == "page" else "2")
    _reader_owing(demo_dir, card)
    sign_in(page, server, "staff", "librarian", STAFF_PASSWORD)
    page.goto(f"{server}/staff/readers")
    page.locator("#reader-card-number").fill(card)
    page.locator("#reader-card-number").press("Enter")  # as a scanner ends a card
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Record Journey {card[-2:]}")
    expect(page.locator("#record-owed")).to_have_text("CN¥4.00")
    before = page.locator("#record-expiry").inner_text()
    assert accessibility_problems(page) == []
    if device == "phone":
        assert no_horizontal_scroll(page)
    shot(page, f"reader-record-{device}")

    page.locator("#f-amount").fill("1.50")
    page.locator("#f-note").fill("cash")
    page.get_by_role("button", name="Take payment").click()
    expect(page.locator("#receipt-total")).to_have_text("CN¥1.50")
    expect(page.locator("#receipt")).to_contain_text(card)
    expect(page.locator("#receipt")).to_contain_text("Still owed: CN¥2.50")
    assert accessibility_problems(page) == []
    shot(page, f"reader-receipt-{device}")

    page.get_by_role("link", name="Back to the reader record").click()
    page.get_by_role("button", name="Renew the card").click()
    expect(page.locator("#record-notice")).to_have_text("The card is renewed.")
    after = page.locator("#record-expiry").inner_text()
    assert after != before and re.search(r"20\d\d", after)
    assert console.errors == []
