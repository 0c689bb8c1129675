"""Headless Chromium (Debian's ``chromium``, driven by Playwright) for the tests of web pages.

CI installs the browser (``.ci/run``) and sets ``BRIGHTHOUSE_REQUIRE_BROWSER=1``, so a missing
browser fails there; elsewhere those tests skip and say why. Chromium is started with its
background networking off: the pages must work with no network beyond loopback.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("BRIGHTHOUSE_CHROMIUM", "/usr/bin/chromium"))
OFFLINE_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_or_skip() -> Path:
    if CHROMIUM.is_file() and shutil.which(str(CHROMIUM)):
        return CHROMIUM
    reason = f"headless Chromium not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    if os.environ.get("BRIGHTHOUSE_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class PageLog:
    """What the page said on its console and which requests it made: to assert there were no
    errors and that nothing left the machine."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def browser_page(tmp_path: Path) -> Iterator[tuple[object, PageLog]]:
    """A fresh headless Chromium page (own profile under ``tmp_path``) and its log."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    log = PageLog()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(executable), headless=True,
            args=OFFLINE_FLAGS, accept_downloads=True, viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: log.errors.append(str(exc)))
            page.on("request", lambda r: log.requests.append(r.url))
            yield page, log
        finally:
            context.close()
