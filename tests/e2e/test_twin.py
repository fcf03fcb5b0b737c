"""The twin in Debian's Chromium: from a record to the route on the map (on a phone, in both
languages, with the keyboard), and the 3D library: drawn (pixels, not a blank canvas), a book
clicked, its card, and a hold placed from it."""

from __future__ import annotations

import io
from pathlib import Path

import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import select

from biblioverse import catalog, libraries
from biblioverse.db import make_engine, make_session_factory
from biblioverse.demo import READER_PASSWORD, STAFF_PASSWORD, demo_card
from tests.e2e.conftest import Console, shot
from tests.e2e.test_journeys import no_horizontal_scroll, sign_in

READER_CARD = demo_card(1)


def a_copy(demo_dir: Path, room: str) -> tuple[int, int, int, str]:
    """A copy standing on a shelf of a room of the central library, as the 3D library draws
    it: (library, item, record, title)."""
    factory = make_session_factory(make_engine(f"sqlite:///{demo_dir / 'biblioverse.db'}"))
    with factory() as session:
        central = libraries.get_unit_by_code(session, "central")
        loc = next(x for x in libraries.locations_of(session, central.id) if x.code == room)
        item = session.scalars(
            select(catalog.Item)
            .where(
                catalog.Item.location_id == loc.id,
                catalog.Item.status == "available",
                catalog.Item.shelf_key.like("L|%"),  # within the shelves' LCC ranges
            )
            .order_by(catalog.Item.id)
        ).first()
        assert item is not None
        record = catalog.get_record(session, item.record_id)
        return central.id, item.id, record.id, record.title


def test_from_a_record_a_reader_opens_the_route_to_the_shelf_on_a_phone(
    phone: Page, server: str, demo_dir: Path, console: Console
) -> None:
    library, item, record, _ = a_copy(demo_dir, "2F-SOC")
    phone.goto(f"{server}/catalog/records/{record}")
    phone.locator(f'a[href="/libraries/{library}/map?to=item:{item}"]').click()
    expect(phone.get_by_role("heading", name="The way there")).to_be_visible()
    route = phone.locator("svg.plan polyline.route")
    expect(route).to_have_count(2)  # the ground floor, then upstairs
    assert len(route.last.get_attribute("points").split()) >= 2  # type: ignore[union-attr]
    goal = phone.locator("svg.plan .shelf.goal")
    expect(goal).to_have_count(1)
    steps = phone.locator("ol.directions li")
    expect(steps.first).to_contain_text("Start at Main entrance")
    expect(steps.last).to_contain_text(f"Shelf {goal.get_attribute('data-goal')} is")
    expect(phone.locator("ol.directions")).to_contain_text("Take the stairs up to Floor 2")
    assert no_horizontal_scroll(phone)
    shot(phone, "twin-map-phone")
    # step-free, with the keyboard only
    phone.get_by_label("Step-free (lifts, no stairs)").focus()
    phone.keyboard.press("Space")
    phone.get_by_role("button", name="Show the way").focus()
    phone.keyboard.press("Enter")
    expect(phone.locator("ol.directions")).to_contain_text("Take the lift to Floor 2")
    phone.goto(f"{server}/lang/zh_Hans?next=/libraries/{library}/map?to=item:{item}")
    expect(phone.locator("ol.directions li").first).to_contain_text("从主入口出发")
    expect(phone.locator("ol.directions")).to_contain_text("走楼梯上到2 层")
    shot(phone, "twin-map-phone-zh")
    assert console.errors == []


def test_a_you_are_here_sign_holds_a_code_that_opens_the_map_from_there(
    phone: Page, server: str, demo_dir: Path, console: Console
) -> None:
    """The sheet of signs, read as a reader's phone reads a posted sign: the QR code in the
    page, decoded by a decoder we did not write, opens the map starting at that sign."""
    library, *_ = a_copy(demo_dir, "2F-SOC")
    phone.goto(f"{server}/libraries/{library}/signs")
    signs = phone.locator("li.sign")
    expect(signs.first).to_be_visible()
    assert signs.count() >= 3  # entrances, kiosks, the desk, lifts...
    assert no_horizontal_scroll(phone)
    shot(phone, "twin-signs-phone")
    sign = signs.nth(1)
    place = sign.locator(".sign-place").inner_text()
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(sign.locator("svg").screenshot())))
    assert read.format == zxingcpp.BarcodeFormat.QRCode
    assert read.text.startswith(f"{server}/libraries/{library}/map?from=poi:")
    assert read.text == sign.locator("code").inner_text()
    phone.goto(read.text)
    start = phone.get_by_label("From")
    expect(start).to_have_value(read.text.split("from=")[1])
    assert place in start.locator("option:checked").inner_text()
    # the same code as a file for a sign maker, drawn by the browser
    sign_svg = f"{server}/libraries/{library}/signs/{read.text.split('poi:')[1]}.svg"
    phone.goto(sign_svg)
    [again] = zxingcpp.read_barcodes(Image.open(io.BytesIO(phone.screenshot())))
    assert again.text == read.text
    missing = phone.request.get(f"{server}/libraries/{library}/signs/NOWHERE.svg")
    assert missing.status == 404 and "NOWHERE" in missing.text()
    phone.goto(f"{server}/lang/zh_Hans?next=/libraries/{library}/signs")
    expect(phone.locator("li.sign .sign-title").first).to_have_text("您在这里")
    shot(phone, "twin-signs-phone-zh")
    phone.goto(f"{server}/lang/en?next=/")
    assert console.errors == []


def test_a_librarian_sends_the_plan_again_from_the_console_with_the_keyboard(
    page: Page, server: str, demo_dir: Path, console: Console
) -> None:
    """The floor plans page in the console: the plan downloaded as GeoJSON, chosen in the
    file field and sent with the keyboard, comes back as the next version."""
    library, *_ = a_copy(demo_dir, "2F-SOC")
    sign_in(page, server, "staff", "librarian", STAFF_PASSWORD)
    page.goto(f"{server}/staff/floor-plans?library={library}")
    version = int(page.locator(".plan-summary dd").first.inner_text().split(" ")[0])
    plan = page.request.get(f"{server}/api/v1/libraries/{library}/floor-plan")
    assert plan.ok
    page.get_by_label("Plan file (.geojson)").set_input_files(
        {"name": "central.geojson", "mimeType": "application/geo+json", "buffer": plan.body()}
    )
    page.get_by_role("button", name="Check and save").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#plan-saved")).to_contain_text(f"Plan version {version + 1} is saved")
    expect(page.locator(".plan-summary dd").first).to_contain_text(str(version + 1))
    shot(page, "twin-floor-plans")
    page.get_by_label("Plan file (.geojson)").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a plan"}
    )
    page.get_by_role("button", name="Check and save").click()
    expect(page.get_by_role("alert")).to_contain_text("notes.txt is not JSON")
    assert console.errors == [] or all("422" in e for e in console.errors)


def test_an_unknown_goal_says_so(page: Page, server: str, demo_dir: Path) -> None:
    library, *_ = a_copy(demo_dir, "2F-SOC")
    response = page.goto(f"{server}/libraries/{library}/map?to=shelf:NOWHERE")
    assert response is not None and response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("not on this library's floor plan")


DRAWN = """() => {
  const c = document.getElementById('twin-canvas');
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const g = copy.getContext('2d');
  g.drawImage(c, 0, 0);
  const px = g.getImageData(0, 0, copy.width, copy.height).data;
  const colours = new Set();
  let notBackground = 0;
  for (let i = 0; i < px.length; i += 4 * 7) {
    colours.add((px[i] >> 3) << 10 | (px[i + 1] >> 3) << 5 | (px[i + 2] >> 3));
    const off = Math.abs(px[i] - 0xdf) + Math.abs(px[i + 1] - 0xe7) + Math.abs(px[i + 2] - 0xef);
    if (off > 24) notBackground++;
  }
  return {colours: colours.size, share: notBackground / (px.length / 28)};
}"""


def test_the_3d_library_is_drawn_and_a_book_clicked_in_it_is_held(
    page: Page, server: str, demo_dir: Path, console: Console
) -> None:
    library, item, _, title = a_copy(demo_dir, "2F-SOC")
    sign_in(page, server, "reader", READER_CARD, READER_PASSWORD)
    page.goto(f"{server}/libraries/{library}/3d?to=item:{item}")
    expect(page.locator("#twin-canvas")).to_have_attribute("data-ready", "1", timeout=30_000)
    stats = page.evaluate("window.__twin.stats")
    assert stats["books"] > 1000
    assert stats["drawCalls"] <= 30
    expect(page.locator("#twin-status")).to_contain_text("follow the arrows")
    page.wait_for_timeout(300)
    drawn = page.evaluate(DRAWN)
    assert drawn["colours"] > 40 and drawn["share"] > 0.3, drawn  # a library, not a blank canvas
    shot(page, "twin-3d-route")
    # stand before the book and click it
    assert page.evaluate(f"window.__twin.lookAt({item})")
    page.wait_for_timeout(300)
    at = page.evaluate(f"window.__twin.project({item})")
    page.locator("#twin-canvas").click(position={"x": at["x"], "y": at["y"]})
    card = page.locator("#book-card")
    expect(card).to_be_visible()
    expect(card.locator("[data-item]")).to_have_attribute("data-item", str(item))
    expect(card).to_contain_text(title[:30])
    shot(page, "twin-3d-card")
    card.get_by_role("button", name="Place a hold").click()
    expect(page).to_have_url(f"{server}/account?held=" + page.url.split("held=")[-1])
    expect(page.locator("#holds")).to_contain_text(title[:30])
    assert console.errors == []


def test_the_3d_library_walks_with_the_keyboard_and_tours(
    page: Page, server: str, demo_dir: Path, console: Console
) -> None:
    library, *_ = a_copy(demo_dir, "2F-SOC")
    page.goto(f"{server}/libraries/{library}/3d")
    expect(page.locator("#twin-canvas")).to_have_attribute("data-ready", "1", timeout=30_000)
    page.get_by_role("button", name="Walk").click()
    expect(page.get_by_role("button", name="Walk")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#twin-canvas")).to_be_focused()
    before = page.evaluate("window.__twin.camera()")
    page.keyboard.down("ArrowUp")
    page.wait_for_timeout(600)
    page.keyboard.up("ArrowUp")
    after = page.evaluate("window.__twin.camera()")
    walked = ((after[0] - before[0]) ** 2 + (after[2] - before[2]) ** 2) ** 0.5
    assert walked > 0.5, (before, after)  # about 2.5 m/s for 0.6 s
    assert after[1] == before[1]  # at eye height on the same floor
    drawn = page.evaluate(DRAWN)
    assert drawn["colours"] > 20, drawn
    page.get_by_role("button", name="Guided tour").click()
    expect(page.locator("#twin-status")).to_contain_text("Guided tour 1/")
    page.wait_for_timeout(3000)
    expect(page.locator("#twin-status")).to_contain_text("Guided tour 2/")
    assert console.errors == []
