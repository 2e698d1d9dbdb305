"""Headless Chromium for the UI tests (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium).

One browser per session. Its console log (``browser``) and network log (``performance``, Chrome's
DevTools events) are read after each page: :func:`console_errors` and :func:`requests_made`.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


def start_browser() -> Any:
    """A headless Chromium with console and network logging; fails (never skips) naming the packages."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'", pytrace=False)
    binary = next((shutil.which(b) for b in CHROMIUM if shutil.which(b)), None)
    driver = shutil.which(DRIVER) or ("/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None)
    if binary is None or driver is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium chromium-driver (.ci/run does)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--hide-scrollbars", "--disable-extensions", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def console_errors(browser: Any) -> list[str]:
    """Console messages of level SEVERE since the last call (CSP violations and script errors are SEVERE)."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def requests_made(browser: Any) -> list[str]:
    """URLs the page asked the network for since the last call (DevTools ``Network.requestWillBeSent``)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def output_folder() -> Path:
    """Where screenshots go: $ZOO_TEST_OUTPUT/ui, else test-output/ui in the repository (git-ignored)."""
    root = Path(os.environ.get("ZOO_TEST_OUTPUT") or Path(__file__).resolve().parents[1] / "test-output")
    folder = root / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
