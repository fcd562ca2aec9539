"""The HTML report in a real browser: headless Chromium opens it from a file:// URL, with no
network, and every picture must decode, the console stay free of errors and the slider work.

Needs chromium, chromedriver and selenium (see tests/browser.py); without them each test skips
with one line naming what is missing. GANKIT_SCREENSHOTS=DIR keeps the screenshots in DIR
(default: the test's temporary folder); tools/screenshots.py makes them for any run.
"""

import os
from pathlib import Path
from typing import Any

import pytest
from browser import (
    full_page_screenshot,
    images_not_loaded,
    missing,
    open_chromium,
    severe_console_errors,
)

# skip before the fixtures train their runs: nothing to show them in
pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("GANKIT_SCREENSHOTS") or tmp_path)


def open_and_check(driver: Any, page: Path, shot: Path) -> None:
    """Open ``page`` offline; every <img> decoded, no SEVERE console line; screenshot kept."""
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.execute_script("return document.images.length") > 0
    assert images_not_loaded(driver) == []
    assert severe_console_errors(driver) == []
    full_page_screenshot(driver, shot)
    assert shot.stat().st_size > 10_000


def shown_frames(driver: Any) -> list[str]:
    frames = driver.find_elements("css selector", ".frames img")
    return [img.get_attribute("alt") for img in frames if img.is_displayed()]


def test_single_report_in_chromium(cgan_report_page, tmp_path):
    page = cgan_report_page
    with open_chromium() as driver:
        open_and_check(driver, page, shots(tmp_path) / "report-test-single.png")
        assert shown_frames(driver) == ["samples at step 4"]  # the last picture first
        slider = driver.find_element("css selector", "input[data-film]")
        driver.execute_script(
            "arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'))", slider
        )
        assert shown_frames(driver) == ["samples at step 2"]
        assert "step 2 (1 of 2)" in driver.find_element("css selector", "output").text


def test_comparison_report_in_chromium(toy_report_page, tmp_path):
    page = toy_report_page
    with open_chromium() as driver:
        open_and_check(driver, page, shots(tmp_path) / "report-test-compare.png")
        rows = driver.find_elements("css selector", "#runs tbody tr")
        assert [r.find_element("css selector", "td").text for r in rows] == ["a", "b", "c"]
