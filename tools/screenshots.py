"""Write the `gankit report` of some runs and a screenshot of it in headless Chromium.

    .venv/bin/python tools/screenshots.py runs/cgan-mnist --png docs/img/report-cgan-mnist.png \
        --html docs/reports/cgan-mnist.html --height 1500
    .venv/bin/python tools/screenshots.py runs/gan runs/wgan runs/wgan-gp \
        --png docs/img/report-toy-comparison.png --height 1700

The page is checked as tests/test_browser.py checks it (every picture decoded, no SEVERE console
line) before the screenshot is taken: the top ``--height`` pixels, or the whole page without it.
Needs chromium, chromedriver and the browser extra (see tests/browser.py).
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the shared browser helpers live beside the tests

import browser  # noqa: E402

from gankit.report import write_report  # noqa: E402


def screenshot(page: Path, png: Path, width: int, height: int | None) -> None:
    with browser.open_chromium(width, height or 1000) as driver:
        driver.get(page.resolve().as_uri())
        broken = browser.images_not_loaded(driver)
        errors = browser.severe_console_errors(driver)
        if broken or errors:
            sys.exit(f"{page}: pictures not decoded {broken}, console errors {errors}")
        png.parent.mkdir(parents=True, exist_ok=True)
        if height:
            driver.save_screenshot(str(png))
        else:
            browser.full_page_screenshot(driver, png, width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--png", required=True, type=Path, help="the screenshot to write")
    parser.add_argument("--html", type=Path, help="keep the report here (default: a temp file)")
    parser.add_argument("--width", type=int, default=1280, help="window width (1280)")
    parser.add_argument("--height", type=int, help="window height: the top of the page only")
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        page = write_report(args.runs, args.html or Path(tmp) / "report.html")
        screenshot(page, args.png, args.width, args.height)
    size = page.stat().st_size if args.html else None
    print(f"wrote {args.png}" + (f" and {page} ({size / 1e6:.2f} MB)" if size else ""))


if __name__ == "__main__":
    main()
