"""A served demo and a real Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.serving import BIN, cli_env, served

CHROMIUM = os.environ.get("BIBLIOVERSE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served demo's data folder (its SQLite database is `biblioverse.db`)."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def server(demo_dir: Path) -> Iterator[str]:
    data = demo_dir
    seeded = subprocess.run(
        [str(BIN), "demo", "--no-serve"],
        env=cli_env(data),
        capture_output=True,
        text=True,
        timeout=600,  # a loaded machine seeds the demo slowly
    )
    assert seeded.returncode == 0, seeded.stderr
    with served(data, timeout_s=60) as url:  # a loaded machine starts it slowly
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install chromium)"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                # WebGL for the 3D library on the CPU (SwiftShader): there is no GPU here
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


class Console:
    """Collects browser errors (CSP violations, script errors) so a test can assert none."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page: Page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture()
def console() -> Console:
    return Console()


def _context(browser: Browser, console: Console, **kw: object) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="en-GB", **kw)  # type: ignore[arg-type]
    ctx.on("page", console.attach)
    yield ctx
    ctx.close()


@pytest.fixture()
def page(browser: Browser, console: Console) -> Iterator[Page]:
    for ctx in _context(browser, console, viewport={"width": 1280, "height": 900}):
        p = ctx.new_page()
        yield p


@pytest.fixture()
def phone(browser: Browser, console: Console) -> Iterator[Page]:
    for ctx in _context(
        browser, console, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    ):
        p = ctx.new_page()
        yield p


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def accessibility_problems(page: Page) -> list[str]:
    """axe-core's serious and critical WCAG 2.2 AA violations on the page as it stands: rule,
    impact and the first elements concerned."""
    page.evaluate(AXE.read_text())  # through the debugger, so the page's CSP does not stop it
    found = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations'], runOnly: {type:
                'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {', '.join(v['nodes'])}"
        for v in found
        if v["impact"] in SERIOUS
    ]
