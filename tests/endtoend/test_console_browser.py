"""The staff console in a real browser: Debian's headless Chromium through Selenium, with a
virtual authenticator (WebAuthn's test API) holding the passkey, against the hotline over real
HTTP with a real worker and the fake Twilio. Every console page is checked with axe-core.

Scripts are on here: passkeys need the console's one script (passkey.js); the CSP allows no
other. Skipped, saying why, where Chromium, its driver or axe-core (from the npm registry) is
missing; CI installs them (.ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from conftest import rota_text
from harness import ROOT, TestWorker, wait_until

pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")

from browser_helpers import NEEDS_CHROMIUM, click_through, phone_browser  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.virtual_authenticator import (  # noqa: E402
    Protocol,
    Transport,
    VirtualAuthenticatorOptions,
)

from routing import access  # noqa: E402

AXE_VERSION = "4.11.0"
AXE_CACHE = ROOT / ".cache" / f"axe-core-{AXE_VERSION}"
ARTIFACTS = ROOT / "test-artifacts" / "console"
DEFENDER = "+447700900123"

pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]


@pytest.fixture(scope="session")
def axe_js() -> str:
    """axe-core's script, fetched once from the npm registry into .cache/ (git-ignored)."""
    target = AXE_CACHE / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("axe-core is not cached and there is no npm to fetch it")
        with tempfile.TemporaryDirectory() as folder:
            try:
                subprocess.run(
                    [npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", folder],
                    check=True,
                    capture_output=True,
                    timeout=180,
                )
            except (subprocess.SubprocessError, OSError) as exc:
                pytest.skip(f"could not fetch axe-core from npm: {exc}")
            with tarfile.open(Path(folder) / f"axe-core-{AXE_VERSION}.tgz") as archive:
                source = archive.extractfile("package/axe.min.js").read()
            AXE_CACHE.mkdir(parents=True, exist_ok=True)
            partial = AXE_CACHE / f"axe.min.js.{os.getpid()}"
            partial.write_bytes(source)
            partial.replace(target)  # atomic: parallel test processes may fetch it at once
    return target.read_text()


@pytest.fixture
def browser():
    driver = phone_browser(scripts=True)  # passkeys need the console's one script
    driver.add_virtual_authenticator(
        VirtualAuthenticatorOptions(
            protocol=Protocol.CTAP2,
            transport=Transport.INTERNAL,
            has_resident_key=True,
            has_user_verification=True,
            is_user_verified=True,
            is_user_consenting=True,
        )
    )
    yield driver
    driver.quit()


def _accessible(driver, axe_js: str, name: str) -> None:  # noqa: ANN001
    """No serious or critical axe-core violation on the page the browser shows."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.execute_script(axe_js)
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations),"
        " e => done([{id: 'axe failed', impact: 'critical', help: String(e)}]));"
    )
    bad = [v for v in violations if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{name}: " + json.dumps(
        [(v["id"], v["help"], [n["target"] for n in v.get("nodes", [])][:3]) for v in bad]
    )


@pytest.fixture
def site(make_hotline):
    rota = rota_text().replace("{notify: primary,", "{notify: [primary, backup],")
    return make_hotline(rota=rota + "coordinators: [amina]\n", console=True)


def test_enrol_sign_in_reply_and_ack_in_a_browser(site, browser, fake_twilio, axe_js):
    worker = TestWorker(site).start()
    try:
        base = site.console_url
        browser.get(f"{base}/console/enrol/{access.invite(site.rt, 'amina')}")
        _accessible(browser, axe_js, "1-enrol")
        click_through(browser, "#passkey")
        assert browser.current_url == f"{base}/console"
        # a new sign-in with the passkey the virtual authenticator now holds
        click_through(browser, "header form button")
        assert "/console/signin" in browser.current_url
        _accessible(browser, axe_js, "2-signin")
        click_through(browser, "#passkey")
        assert browser.current_url == f"{base}/console"

        assert site.sms(DEFENDER, "اعتقلوا أخي <b>الليلة</b>").status == 200
        chen = site.staff_phone("chen")
        wait_until(lambda: fake_twilio.sms_to(chen), timeout=30)  # both levels' people paged
        number = site.incidents()[-1].id
        browser.get(f"{base}/console")
        _accessible(browser, axe_js, "3-board")
        click_through(browser, f"a[href='/console/incidents/{number}']")
        _accessible(browser, axe_js, "4-incident")
        said = browser.find_element(By.CSS_SELECTOR, ".defender .text")
        assert said.text == "اعتقلوا أخي <b>الليلة</b>" and said.get_attribute("dir") == "auto"

        browser.find_element(By.ID, "reply").send_keys("We are calling a lawyer now.")
        click_through(browser, "form[action$='/act/reply'] button")
        assert "reply sent" in browser.find_element(By.CSS_SELECTOR, ".said").text
        fake_twilio.wait_for(lambda: "We are calling a lawyer now." in fake_twilio.sms_to(DEFENDER))

        click_through(browser, "button[value=ack]")
        assert "already yours" in browser.find_element(By.CSS_SELECTOR, ".said").text
        standdown = f"#{number} taken by Amina K.. No action needed."  # her name ends in "."
        wait_until(lambda: standdown in fake_twilio.sms_to(chen), timeout=30, what="stand-down")
        for page, name in (("oncall", "5-oncall"), ("audit", "6-audit"), ("staff", "7-staff")):
            browser.get(f"{base}/console/{page}")
            _accessible(browser, axe_js, name)
        browser.get(f"{base}/console/report")
        _accessible(browser, axe_js, "8-report")
        browser.get(f"{base}/console/verify?next=/console/incidents/{number}/reveal")
        _accessible(browser, axe_js, "9-verify")
        click_through(browser, "#passkey")
        _accessible(browser, axe_js, "10-reveal")
    finally:
        worker.stop()
    mine = [(e.kind, e.incident_id, e.detail) for e in site.events() if e.actor == "amina"]
    for row in (
        ("console_enrolled", None, ""),
        ("console_signed_in", None, ""),
        ("console_viewed", number, ""),
        ("console_action", number, "reply"),
        ("console_action", number, "ack"),
        ("console_verified", None, ""),
    ):
        assert row in mine, row
    assert "lawyer" not in json.dumps([e.detail for e in site.events()])
