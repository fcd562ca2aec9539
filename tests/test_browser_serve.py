"""`gankit serve` in a real browser: headless Chromium opens the demo of a tiny cgan run, clicks
"generate" and waits for the samples picture to decode; (slow) the theory page. With
GANKIT_SCREENSHOTS=DIR each page is saved as DIR/serve_cgan.png, DIR/serve_theory.png."""

import importlib.util
import os
import socket
from pathlib import Path

import pytest
from browser import chromium, full_page_screenshot, severe_console_errors  # noqa: F401
from test_serve import tiny_cgan

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None,
    reason="gradio is not installed: pip install 'gankit[serve]'",
)
DECODED = (
    "const img = document.querySelector(arguments[0] + ' img');"
    "return img !== null && img.complete && img.naturalWidth > 0 ? img.naturalWidth : 0;"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_picture(driver, selector: str, timeout: float = 60) -> int:
    """The naturalWidth of the first <img> under ``selector`` once it has decoded."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(DECODED, selector))


def test_demo_page_shows_generated_samples(chromium, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from gankit.serve import build_app, load_demo

    app = build_app(load_demo(tiny_cgan(tmp_path), device="cpu"))
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        chromium.get(f"http://127.0.0.1:{port}/")
        assert wait_for_picture(chromium, "#samples") > 0  # the picture rendered on load
        first = chromium.find_element(By.CSS_SELECTOR, "#samples img").get_attribute("src")
        seed = chromium.find_element(By.CSS_SELECTOR, "#seed input")
        seed.clear()
        seed.send_keys("7")
        chromium.find_element(By.ID, "generate").click()
        WebDriverWait(chromium, 60).until(  # another seed: another picture
            lambda d: d.find_element(By.CSS_SELECTOR, "#samples img").get_attribute("src") != first
        )
        assert wait_for_picture(chromium, "#samples") > 0
        assert not severe_console_errors(chromium)
        if os.environ.get("GANKIT_SCREENSHOTS"):
            full_page_screenshot(
                chromium, Path(os.environ["GANKIT_SCREENSHOTS"]) / "serve_cgan.png"
            )
    finally:
        app.close()


@pytest.mark.slow  # the cgan page above checks the serving; this one is for its picture
def test_theory_page_shows_the_distances_and_the_critic(chromium):  # noqa: F811
    from selenium.webdriver.common.by import By

    from gankit.serve import TheoryDemo, build_app

    app = build_app(TheoryDemo())
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        chromium.get(f"http://127.0.0.1:{port}/")
        assert wait_for_picture(chromium, "#samples") > 0
        table = chromium.find_element(By.ID, "values").text
        assert "EM" in table and "critic" in table, table
        assert not severe_console_errors(chromium)
        if os.environ.get("GANKIT_SCREENSHOTS"):
            full_page_screenshot(
                chromium, Path(os.environ["GANKIT_SCREENSHOTS"]) / "serve_theory.png"
            )
    finally:
        app.close()
