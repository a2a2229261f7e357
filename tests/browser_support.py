"""Headless Chromium for tests, offline: what only a browser shows (a plot drawn, no console
error, no request leaving the machine).

Playwright's Python package drives Debian's ``chromium`` (``apt-get install -y chromium``;
Playwright's own browser download does not work offline). Every request whose URL is not
local (``file:``, ``data:``, ``blob:``, ``about:``, or host 127.0.0.1 / localhost / ::1) is
aborted and recorded, so a page that needs a CDN shows up as blocked requests and console
errors instead of passing because the test machine happened to be online.

Use it as a context manager or through the fixtures (import them into a test module)::

    from browser_support import offline_browser, offline_page  # noqa: F401 (fixtures)

    def test_page(offline_page):
        offline_page.page.goto(path.as_uri())
        ...
        offline_page.assert_clean()

Tests skip, with the reason, when Playwright or the browser is missing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path(os.environ.get("MINIBERT_CHROMIUM", "/usr/bin/chromium"))
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
LOCAL_SCHEMES = ("file", "data", "blob", "about")
# Screenshots for a person to look at: <repo>/test-artifacts/ (gitignored), or $MINIBERT_ARTIFACTS.
ARTIFACTS = Path(
    os.environ.get("MINIBERT_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")
)


def is_local(url: str) -> bool:
    """True for URLs that stay on this machine."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


def skip_reason() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs Playwright's Python package: pip install playwright"
    if not CHROMIUM.is_file():
        return f"no browser at {CHROMIUM}: apt-get install -y chromium (or set MINIBERT_CHROMIUM)"
    return None


class OfflinePage:
    """A page whose non-local requests are aborted, with what went wrong collected."""

    def __init__(self, page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.blocked_requests: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def route(self, route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.blocked_requests.append(url)
            route.abort()

    def problems(self) -> list[str]:
        """Everything that went wrong so far, one line each."""
        return (
            [f"blocked request: {url}" for url in self.blocked_requests]
            + [f"console error: {text}" for text in self.console_errors]
            + [f"page error: {text}" for text in self.page_errors]
        )

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "the page was not clean offline:\n" + "\n".join(problems)

    def reset(self) -> None:
        """Forget collected problems (between pages in one session)."""
        self.console_errors.clear()
        self.page_errors.clear()
        self.blocked_requests.clear()

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a PNG under ARTIFACTS/<name>.png and return its path."""
        path = ARTIFACTS / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@contextlib.contextmanager
def launch_chromium(**launch_options) -> Iterator:
    """Playwright's chromium started from Debian's binary, headless; skips when unavailable."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # --no-sandbox: containers and CI runners often lack user namespaces.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
            **launch_options,
        )
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_offline_page(browser, *, width: int = 1400, height: int = 900) -> Iterator[OfflinePage]:
    """A new context + page in ``browser`` with the offline routing installed."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    offline = OfflinePage(page)
    context.route("**/*", offline.route)
    try:
        yield offline
    finally:
        context.close()


@pytest.fixture(scope="module")
def offline_browser():
    """One headless Chromium per test module."""
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def offline_page(offline_browser) -> Iterator[OfflinePage]:
    """A fresh offline page per test."""
    with open_offline_page(offline_browser) as page:
        yield page
