"""Headless Chromium for tests that open gankit's pages in a real browser (the HTML report, the
`gankit serve` demo). A helper module, not a test file: import what you need from it.

It needs Debian's (or any) Chromium and its matching chromedriver, and Selenium:

    apt-get install -y chromium chromium-driver     # /usr/bin/chromium, /usr/bin/chromedriver
    .venv/bin/pip install -c constraints.txt -e '.[browser]'

``GANKIT_CHROMIUM`` and ``GANKIT_CHROMEDRIVER`` name other binaries. When something is missing,
:func:`missing` says what in one line and :func:`require_browser` skips the test with it.
"""

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "apt-get install -y chromium chromium-driver; pip install -e '.[browser]'"


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary: $GANKIT_CHROMIUM, else the first on PATH."""
    named = os.environ.get("GANKIT_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def find_chromedriver() -> str | None:
    """The chromedriver binary: $GANKIT_CHROMEDRIVER, else chromedriver on PATH."""
    named = os.environ.get("GANKIT_CHROMEDRIVER")
    if named:
        return named if Path(named).is_file() else None
    return shutil.which("chromedriver")


def missing() -> str | None:
    """None when a browser test can run, else one line naming what is missing and the fix."""
    absent = []
    if importlib.util.find_spec("selenium") is None:
        absent.append("selenium")
    if find_chromium() is None:
        absent.append("chromium")
    if find_chromedriver() is None:
        absent.append("chromedriver")
    if not absent:
        return None
    return f"browser test needs {', '.join(absent)} (install: {INSTALL})"


def require_browser() -> None:
    """Skip the calling test, in one line, unless Chromium, chromedriver and Selenium are here."""
    reason = missing()
    if reason:
        pytest.skip(reason)


def make_driver(width: int = 1280, height: int = 1000) -> Any:
    """A headless Chromium WebDriver with the browser console log enabled (read it with
    ``driver.get_log("browser")``); the caller quits it (or use :func:`open_chromium`, or the
    ``chromium`` fixture)."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find_chromium()
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",  # small /dev/shm in containers
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(find_chromedriver()))


@contextmanager
def open_chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """``with open_chromium() as driver:``, a :func:`make_driver` quit on leaving (skips the test
    when the browser is missing)."""
    driver = make_driver(width, height)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver, quit after the test; import it into a test module to use
    it (skips when the browser is missing)."""
    with open_chromium() as driver:
        yield driver


def severe_console_errors(driver: Any) -> list[str]:
    """The page's SEVERE browser-console messages (script errors, failed loads)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def images_not_loaded(driver: Any) -> list[str]:
    """The alt text (or the start of src) of every <img> that did not decode."""
    script = """
        return Array.from(document.images)
            .filter(img => !(img.complete && img.naturalWidth > 0))
            .map(img => img.alt || img.src.slice(0, 60));
    """
    return driver.execute_script(script)


def full_page_screenshot(driver: Any, path: Path, width: int = 1280) -> Path:
    """Resize the window to the page's full height (capped at 12000 px) and save a PNG."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 40, 12000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
