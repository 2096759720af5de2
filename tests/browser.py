"""Headless Chromium driven by Selenium (Debian's chromium and chromium-driver).

No driver download: the chromedriver on PATH is used (``scripts/setup.sh
--test`` installs it with Chromium, same version). Downloads land in a folder
the caller names; :func:`console` reads the page's console messages.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def chromium(downloads: Path, profile: Path):
    """A headless Chromium session that saves downloads into ``downloads``."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("browser tests need chromium and chromedriver: run scripts/setup.sh --test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,2000"):
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return driver


def console(driver) -> list[str]:
    """The page's console messages so far (warnings and errors included)."""
    return [entry["message"] for entry in driver.get_log("browser")]


def wait_for_file(folder: Path, name: str, timeout: float = 20) -> Path:
    """The downloaded file ``folder/name`` once Chromium has finished writing it."""
    path = folder / name
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and not list(folder.glob("*.crdownload")):
            return path
        time.sleep(0.1)
    raise AssertionError(
        f"no download {name} in {folder}: {sorted(p.name for p in folder.iterdir())}"
    )
