"""A demo site served by waitress on 127.0.0.1 and Debian's chromium driven by Playwright, for
the browser tests that need a whole site (pages tour, screenshots, accessibility checks).

``tests/web/conftest.py`` offers its fixtures (``server``, ``browser``, ``visit``) to every web test
module; ``test_web_browser.py`` still has its own.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path

import pytest
from enrolkit import demo, people
from enrolkit.models import Base, User
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from enrolkit.web import create_app
from sqlalchemy import select

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "browser-pass-1"
SHOTS = Path(
    os.environ.get("ENROLKIT_SCREENSHOTS")
    or Path(__file__).parents[2] / "artifacts" / "screenshots"
)
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def require_chromium():
    """Skip (fail under CI) without the browser; return Playwright's sync API."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs the Debian package chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo site with every installed plugin, served until the module ends: yields the base
    URL and the runtime (to arrange data as a test needs)."""
    from waitress.server import create_server

    home = tmp_path_factory.mktemp("home")
    roots = pytest.MonkeyPatch()
    roots.setenv("ENROLKIT_FLATFILE_ROOTS", str(home))
    plugins = Plugins(entry_points=True)
    plugins.load_all()  # their tables join the metadata before it is created
    runtime = Runtime(f"sqlite:///{home / 'site.db'}", plugins)
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site:
        demo.load(site)
        with site.atomic():
            hashed = people.hash_password(PASSWORD)
            for user in site.session.scalars(select(User)):
                user.password_hash = hashed
            if "flatfile" in site.plugins.methods:
                site.set_method_settings(
                    "flatfile", {"folder": str(home / "drop"), "mail_admins": "false"}
                )
    app = create_app({"SECRET_KEY": "browser-test-key", "PROPAGATE_EXCEPTIONS": False}, runtime)
    wsgi = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{wsgi.effective_port}", runtime
    wsgi.close()
    thread.join(5)
    roots.undo()
    runtime.dispose()


@pytest.fixture(scope="module")
def browser():
    sync_api = require_chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def visit(server, browser):
    """``page = visit("jean", width=375)``: a fresh browser context logged in as that user."""
    base, _runtime = server
    contexts = []

    def open_as(username: str | None, width: int = 1280):
        context = browser.new_context(base_url=base, viewport={"width": width, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        if username:
            page.goto("/login")
            page.locator("#username, [name=username]").first.fill(username)
            page.locator("[name=password]").fill(PASSWORD)
            page.locator("form button[type=submit]").last.click()
            page.wait_for_url(f"{base}/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def overflow(page) -> int:
    """How far the page scrolls sideways (0: it fits the viewport)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@cache
def _axe_source() -> str:
    return AXE.read_text()


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the page, as 'rule: target' lines."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the site's CSP (script-src 'self') rightly
        # refuses an inline <script>, and stays on for the pages under test.
        page.evaluate("() => {\n" + _axe_source() + "\n}")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in impacts
    ]


#: The page's main action: its primary button, else its first submit button, else its first link.
MAIN_ACTION = """() => {
  const el = document.querySelector("main .primary, main button.danger")
    || document.querySelector("main button[type=submit], main button:not([type])")
    || document.querySelector("main a[href]");
  if (!el) return "no main action";
  el.focus();
  if (document.activeElement !== el) return "main action cannot take the focus: " + el.outerHTML.slice(0, 80);
  if (!el.offsetParent) return "main action is hidden: " + el.outerHTML.slice(0, 80);
  return "";
}"""


def main_action_problem(page) -> str:
    """'' when the page's main action is keyboard-reachable (focusable and shown)."""
    return page.evaluate(MAIN_ACTION)


#: Inputs, selects and textareas without a label a screen reader would read.
UNLABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                && !el.getAttribute("aria-labelledby") && !el.closest("label"))
  .map(el => el.outerHTML.slice(0, 80))"""


def unlabelled_inputs(page) -> list[str]:
    return page.evaluate(UNLABELLED)
