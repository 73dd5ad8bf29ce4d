"""Browser tests: the app served by pytest-django's ``live_server``, driven by Playwright
in Debian's Chromium (``/usr/bin/chromium``; Playwright cannot download browsers here).

``make test`` installs Chromium when it is missing (as root, with apt). Without it
these tests FAIL, unless RECUR_SKIP_BROWSER=1 says to skip them.
Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RECUR_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


_shared: dict = {"users": 0}


def _launch():
    """One Playwright and one Chromium for the whole run, however many modules use the fixture
    (tests/web imports it too): Playwright's sync API allows one instance per thread at a time."""
    if "browser" not in _shared:
        from playwright.sync_api import sync_playwright

        # Playwright's sync API runs an event loop in this thread; the tests still use the ORM
        # between browser steps (never at the same time), which Django would otherwise refuse.
        _shared["env"] = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        _shared["playwright"] = sync_playwright().start()
        _shared["browser"] = _shared["playwright"].chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                                                   headless=True)
    return _shared["browser"]


def _close() -> None:
    browser, playwright = _shared.pop("browser", None), _shared.pop("playwright", None)
    if browser is not None:
        browser.close()
    if playwright is not None:
        playwright.stop()
    if "env" in _shared:
        env = _shared.pop("env")
        if env is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = env


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("RECUR_SKIP_BROWSER") == "1":
            pytest.skip("RECUR_SKIP_BROWSER=1: browser tests skipped")
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Run `make test` as root "
                    "(it installs it), or `apt-get install -y chromium`; set RECUR_SKIP_BROWSER=1 to skip these "
                    "tests.", pytrace=False)
    _shared["users"] += 1
    try:
        yield _launch()
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.base = live_server.url
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shot(page, request):
    """``shot("name")`` saves a full-page screenshot as test-artifacts/<test>-<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str, *, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
