"""The page at GET / in a real browser: headless Chromium (Debian's package) driven by
Playwright. `make test-browser` installs both and runs this; `make test` leaves it out (marker)."""
import os
import shutil

import pytest
from helpers import start_server, stop

from conftest import TINY_DE, TINY_EN
from nmt import Translator

pytestmark = pytest.mark.browser

# the closed network here: no background connections, no first-run, no GPU (see README)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = os.environ.get("NMT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no Chromium found. Fix: make test-browser (installs Debian's chromium), or NMT_CHROMIUM=PATH")
    return path


@pytest.mark.parametrize("family", ["rnn", "transformer"])
def test_type_translate_and_read_the_page(family, tiny_checkpoint, tiny_transformer_checkpoint, tmp_path):
    from playwright.sync_api import sync_playwright

    ckpt = tiny_checkpoint if family == "rnn" else tiny_transformer_checkpoint
    expected = Translator.from_checkpoint(ckpt, beam_size=5).translate_detailed([TINY_DE[3]], n_best=3)[0]
    proc, url = start_server(ckpt, tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{url}/")
            page.wait_for_function("document.getElementById('pair').textContent.length > 0", timeout=20_000)
            assert page.inner_text("#pair") == "German \u2192 English"
            page.fill("#source", TINY_DE[3])
            page.click("#translate")
            page.wait_for_function("document.querySelectorAll('#heatmap tr.piece').length > 0", timeout=30_000)
            translation = page.inner_text("#translation")
            alternatives = page.locator("#nbest li").count()
            rows = page.locator("#heatmap tbody tr.piece").count()
            columns = page.locator("#heatmap thead th").count() - 1  # the corner cell
            page.screenshot(path=str(tmp_path / f"page-{family}.png"), full_page=True)
            browser.close()
    finally:
        assert stop(proc) == 0
    assert translation == expected.text == TINY_EN[3]
    assert alternatives == 3
    assert rows == len(expected.target_pieces) and columns == len(expected.source_pieces)
    assert (tmp_path / f"page-{family}.png").stat().st_size > 10_000
    print(f"screenshot: {tmp_path / f'page-{family}.png'}")
