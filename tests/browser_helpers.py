"""Debian's headless Chromium through Selenium, as the browser tests share it: a small phone's
screen, scripts on or off, and waiting for the page a click leads to."""

from __future__ import annotations

import shutil

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
NEEDS_CHROMIUM = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no chromium/chromedriver on this machine (apt-get install "
    "chromium chromium-driver; CI installs them)",
)


def phone_browser(*, scripts: bool) -> webdriver.Chrome:
    """Headless Chromium with a small phone's screen; `scripts` False: JavaScript off, as a
    defender's hardened browser has it."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=412,915",
    ):
        options.add_argument(flag)
    if not scripts:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def click_through(driver, selector: str) -> None:  # noqa: ANN001
    """Click and wait until the page it leads to has replaced this one (a click returns
    before the browser has navigated: reading on would read the old page)."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    WebDriverWait(driver, 20).until(lambda _: gone(old))


def gone(element) -> bool:  # noqa: ANN001
    """Whether `element` has left the document. Chromium 156 sometimes answers a question
    about a node of the page it is leaving with "Node with given id does not belong to the
    document" instead of a stale element reference: both mean gone."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False
