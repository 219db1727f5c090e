"""The secure web form in a real browser with JavaScript disabled (Tor Browser's "Safest" is
stricter still): headless Chromium driven by Selenium, against the hotline over real HTTP with
a real worker; and `hotline report`'s page, opened from its file as a coordinator would.
Screenshots of the pages go to test-artifacts/ (git-ignored).

Skipped, saying why, where Chromium or its driver is missing (a user's fresh machine); CI
installs Debian's `chromium` and `chromium-driver` (.ci/run).
"""

from __future__ import annotations

import pytest
from harness import ROOT, wait_until

pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")

from browser_helpers import NEEDS_CHROMIUM, click_through, phone_browser  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts" / "web-form"
REPORT_ARTIFACTS = ROOT / "test-artifacts" / "report"
LANGUAGES = ("en", "fr", "es", "ru", "ar")

pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]


@pytest.fixture
def browser():
    driver = phone_browser(scripts=False)  # as a defender's hardened browser has it
    yield driver
    driver.quit()


def _shot(driver, name: str, *, width: int = 412, folder=ARTIFACTS) -> None:  # noqa: ANN001
    folder.mkdir(parents=True, exist_ok=True)
    height = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["contentSize"]["height"]
    driver.set_window_size(width, max(915, int(height) + 40))
    driver.save_screenshot(str(folder / f"{name}.png"))


@pytest.fixture
def site(make_hotline):
    return make_hotline(languages=LANGUAGES, web_form={"enabled": True})


def test_a_defender_writes_in_arabic_and_reads_the_answer_with_the_receipt(
    site, browser, fake_twilio
):
    from harness import TestWorker

    worker = TestWorker(site).start()
    try:
        browser.get(site.base_url + "/help?lang=ar")
        html = browser.find_element(By.TAG_NAME, "html")
        assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ar"
        assert (
            browser.execute_cdp_cmd(  # the browser really runs no script on this page
                "Emulation.setScriptExecutionDisabled", {"value": True}
            )
            == {}
        )
        _shot(browser, "1-form-ar")
        browser.find_element(By.ID, "message").send_keys("اعتقلوا أخي الليلة، نحتاج محاميًا")
        browser.find_element(By.ID, "contact").send_keys("Signal +44 7700 900123")
        click_through(browser, "form button[type=submit]")
        receipt = browser.find_element(By.ID, "receipt-number").text
        assert len(receipt.replace(" ", "")) == 16 and receipt.replace(" ", "").isdigit()
        assert "احفظ هذا الإيصال في مكان آمن" in browser.page_source
        _shot(browser, "2-receipt-ar")

        amina = site.staff_phone("amina")
        [page] = wait_until(lambda: fake_twilio.sms_to(amina), what="the page", timeout=20)
        assert page.startswith('#1 Web: "اعتقلوا أخي') and "Signal" not in page
        site.sms(amina, "R1 محامية ستتصل بك خلال ساعة")

        browser.get(site.base_url + "/help?lang=ar")
        browser.find_element(By.ID, "receipt").send_keys(receipt)
        click_through(browser, "section form button[type=submit]")
        lines = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".conversation li")]
        assert len(lines) == 2
        assert "اعتقلوا أخي" in lines[0] and lines[0].startswith("أنت")
        assert "محامية ستتصل بك" in lines[1] and lines[1].startswith("خط الطوارئ")
        assert "Amina" not in browser.page_source and "+353" not in browser.page_source
        _shot(browser, "3-conversation-ar")

        browser.get(site.base_url + "/help?lang=en")
        browser.find_element(By.ID, "receipt").send_keys("0000 1111 2222 3333")
        click_through(browser, "section form button[type=submit]")
        assert browser.find_element(By.TAG_NAME, "h1").text == "No conversation found"
        _shot(browser, "4-unknown-receipt-en")
    finally:
        worker.stop()


def test_the_report_opens_offline_with_every_chart_drawn(
    browser, tmp_path, fake_twilio, monkeypatch
):
    """What the browser shows does not depend on the database: SQLite only (the figures are
    checked on both in tests/inprocess/test_report_glance.py)."""
    from conftest import rota_text
    from engine_world import World
    from report_helpers import DURESS, cli_env, seed_week

    from hotline.cli import main

    world = World(
        tmp_path,
        f"sqlite:///{tmp_path / 'report.db'}",
        fake_twilio,
        rota_text(wait1="5m", wait2="5m"),
        config=DURESS,
    )
    try:
        seed_week(world)
        for key, value in cli_env(world).items():
            monkeypatch.setenv(key, value)
        page = tmp_path / "glance.html"
        assert main(["report", "--html", str(page)]) == 0
    finally:
        world.close()

    browser.set_window_size(1100, 915)
    browser.get(page.as_uri())  # file://, and nothing else is fetched: the page names no URL
    assert browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True}) == {}
    assert browser.find_element(By.TAG_NAME, "h1").text == "The line at a glance"
    charts = browser.find_elements(By.CSS_SELECTOR, "figure > svg")
    assert len(charts) == 6
    for chart in charts:
        size = chart.size
        assert size["width"] > 400 and size["height"] > 40, (
            chart.get_attribute("aria-label"),
            size,
        )
        # drawn, not just a box: its shapes and its words have a size on the screen
        assert any(p.size["width"] > 5 for p in chart.find_elements(By.TAG_NAME, "path"))
        assert any(t.size["width"] > 0 for t in chart.find_elements(By.TAG_NAME, "text"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#volume svg path")
    assert len(bars) > 10
    _shot(browser, "report-desktop", width=1100, folder=REPORT_ARTIFACTS)

    browser.set_window_size(412, 915)  # a phone: the charts shrink to the screen
    browser.get(page.as_uri())
    for chart in browser.find_elements(By.CSS_SELECTOR, "figure > svg"):
        assert 0 < chart.size["width"] <= 412
    _shot(browser, "report-phone", folder=REPORT_ARTIFACTS)
