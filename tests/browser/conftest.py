# SPDX-License-Identifier: Apache-2.0
"""Headless Chromium for the browser tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser downloads are never used (`playwright install` is not
run); the tests launch the system Chromium by path. They skip, saying why, only
when no browser can be had: Playwright missing, or no Chromium at
/usr/bin/chromium (or $LISTSERV_CHROMIUM). `scripts/install-browser-deps`
installs Chromium and axe-core.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from listserv.app import Service
from listserv.config import Settings
from tests.web_helpers import start_web_service

CHROMIUM = os.environ.get("LISTSERV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "run scripts/install-browser-deps"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip(f"Playwright for Python is not installed (pip install -e '.[test]'; {INSTALL})")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} ({INSTALL}, or apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def axe_source() -> str:
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed at {AXE} ({INSTALL}, or npm install axe-core)")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
async def web_service(sqlite_settings: Settings) -> AsyncIterator[Service]:
    """The whole service with the pages on a loopback port that is also its base URL."""
    async with start_web_service(sqlite_settings) as service:
        yield service
