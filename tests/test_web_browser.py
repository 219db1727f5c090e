"""The secure web form in a real browser with JavaScript disabled (Tor Browser's "Safest" is
stricter still): headless Chromium driven by Selenium, against the hotline over real HTTP with
a real worker. Screenshots of the pages go to test-artifacts/ (git-ignored).

Skipped, saying why, where Chromium or its driver is missing (a user's fresh machine); CI
installs Debian's `chromium` and `chromium-driver` (.ci/run).
"""

from __future__ import annotations

import shutil

import pytest
from harness import ROOT, wait_until

pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = ROOT / "test-artifacts" / "web-form"
LANGUAGES = ("en", "fr", "es", "ru", "ar")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and DRIVER),
                       reason="no chromium/chromedriver on this machine (apt-get install "
                              "chromium chromium-driver; CI installs them)"),
]


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=412,915"):  # a small phone's screen
        options.add_argument(flag)
    # JavaScript off, as a defender's hardened browser has it
    options.add_experimental_option(
        "prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["contentSize"]["height"]
    driver.set_window_size(412, max(915, int(height) + 40))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@pytest.fixture
def site(make_hotline):
    return make_hotline(languages=LANGUAGES, web_form={"enabled": True})


def _submit(browser, button: str) -> None:  # noqa: ANN001
    """Click a form's submit button and wait until the answer page has replaced this one (a
    click returns before the browser has navigated: reading on would read the old page)."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(old))


def test_a_defender_writes_in_arabic_and_reads_the_answer_with_the_receipt(
        site, browser, fake_twilio):
    from harness import TestWorker

    worker = TestWorker(site).start()
    try:
        browser.get(site.base_url + "/help?lang=ar")
        html = browser.find_element(By.TAG_NAME, "html")
        assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ar"
        assert browser.execute_cdp_cmd(  # the browser really runs no script on this page
            "Emulation.setScriptExecutionDisabled", {"value": True}) == {}
        _shot(browser, "1-form-ar")
        browser.find_element(By.ID, "message").send_keys("اعتقلوا أخي الليلة، نحتاج محاميًا")
        browser.find_element(By.ID, "contact").send_keys("Signal +44 7700 900123")
        _submit(browser, "form button[type=submit]")
        receipt = browser.find_element(By.ID, "receipt-number").text
        assert len(receipt.replace(" ", "")) == 16 and receipt.replace(" ", "").isdigit()
        assert "احفظ هذا الإيصال في مكان آمن" in browser.page_source
        _shot(browser, "2-receipt-ar")

        amina = site.staff_phone("amina")
        [page] = wait_until(lambda: fake_twilio.sms_to(amina), what="the page", timeout=20)
        assert page.startswith("#1 Web Signal +44•••••123")
        site.sms(amina, "R1 محامية ستتصل بك خلال ساعة")

        browser.get(site.base_url + "/help?lang=ar")
        browser.find_element(By.ID, "receipt").send_keys(receipt)
        _submit(browser, "section form button[type=submit]")
        lines = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".conversation li")]
        assert len(lines) == 2
        assert "اعتقلوا أخي" in lines[0] and lines[0].startswith("أنت")
        assert "محامية ستتصل بك" in lines[1] and lines[1].startswith("خط الطوارئ")
        assert "Amina" not in browser.page_source and "+353" not in browser.page_source
        _shot(browser, "3-conversation-ar")

        browser.get(site.base_url + "/help?lang=en")
        browser.find_element(By.ID, "receipt").send_keys("0000 1111 2222 3333")
        _submit(browser, "section form button[type=submit]")
        assert browser.find_element(By.TAG_NAME, "h1").text == "No conversation found"
        _shot(browser, "4-unknown-receipt-en")
    finally:
        worker.stop()
