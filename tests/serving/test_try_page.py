"""The try-it page (``GET /``) in headless Chromium, against the real server on loopback."""

import numpy as np
from PIL import Image

from tests.browser import browser_page


def _photo(path, h=240, w=320, seed=0):
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    noise = np.random.default_rng(seed).normal(0, 0.03, (h, w, 1))
    img = np.clip(np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.6 - 0.3 * x], axis=-1) + noise, 0, 1)
    Image.fromarray((img * 255).astype(np.uint8)).save(path, quality=92)
    return path


def test_upload_a_photo_see_before_and_after_from_the_version_that_answered(server, tmp_path):
    photo = _photo(tmp_path / "kitchen.jpg")
    with browser_page(tmp_path) as (page, log):
        page.goto(server.base_url + "/")
        page.wait_for_function("document.getElementById('served').textContent.includes('version 1')")
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("#result:not([hidden])", timeout=30_000)
        assert page.inner_text("#version") == "1"
        assert page.eval_on_selector("#after", "img => [img.naturalWidth, img.naturalHeight]") == [320, 240]
        assert page.eval_on_selector("#before", "img => img.complete && img.naturalWidth") == 320
        page.fill("#slider", "20")
        assert page.eval_on_selector("#before", "img => img.style.clipPath") == "inset(0px 80% 0px 0px)"
        with page.expect_download() as download:
            page.click("#download")
        saved = tmp_path / "downloaded.jpg"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "kitchen-enhanced.jpg"
        page.screenshot(path=str(tmp_path / "try-page.png"), full_page=True)
    result = np.asarray(Image.open(saved), dtype=float) / 255
    source = np.asarray(Image.open(photo), dtype=float) / 255
    assert np.abs(result - np.clip(source * 0.5 + 0.25, 0, 1)).mean() < 0.02  # the served model's edit
    assert log.errors == []
    assert all(url.startswith((server.base_url, "blob:", "data:")) for url in log.requests), log.requests


def test_refusals_are_shown_as_readable_messages(server, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG" + bytes(2 * 1024 * 1024))  # the test server allows 1 MB
    with browser_page(tmp_path) as (page, log):
        page.goto(server.base_url + "/")
        page.set_input_files("#file", str(broken))
        page.wait_for_selector("#status.error")
        assert "not a readable image" in page.inner_text("#status")
        assert "HTTP 400" in page.inner_text("#status")
        page.set_input_files("#file", str(big))
        page.wait_for_function("document.getElementById('status').textContent.includes('huge.png')")
        assert "over this server's limit of 1 MB" in page.inner_text("#status")
        assert page.is_hidden("#result")
