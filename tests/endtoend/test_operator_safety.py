"""What operators run and see: a /healthz that reveals nothing, `hotline health` for details,
text from outside that cannot drive a terminal or reverse a page, private files, a signed URL
that never comes from the Host header, and a queue that runs no pickled code."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import rq
from conftest import rota_text
from harness import ROOT, TestWorker, wait_until
from rq.serializers import JSONSerializer
from twilio.request_validator import RequestValidator

import oncall
from hotline.settings import SettingsError, load_settings
from routing.display import clean_text
from routing.notifier import ConsoleNotifier
from routing.texts import page_text, relay_text

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database

DEFENDER = "+447700900123"
TOKEN = "health-token-0123456789abcdef"
STATES = {
    "database": {"ok", "down"},
    "redis": {"ok", "down"},
    "rota": {"ok", "stale", "missing"},
    "worker": {"ok", "down"},
}


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def level1(hotline) -> str:  # noqa: ANN001
    rota = hotline.rt.rota.current()
    return oncall.who_is_on_call(rota, datetime.now(UTC), None)[0].staff[0].phone


# --- item 2: /healthz is public, so it says nothing but states -----------------------------


def assert_public_shape(raw: str) -> dict:
    body = json.loads(raw)
    assert set(body) == {"ok", "checks"} and isinstance(body["ok"], bool)
    assert set(body["checks"]) == set(STATES)
    for name, state in body["checks"].items():
        assert state in STATES[name], (name, state)
    assert not re.search(r"[0-9]", raw), raw  # no counts, times, hashes, phones or versions
    return body


def test_healthz_reveals_only_states_even_with_a_broken_rota(make_hotline):
    hotline = make_hotline(env={"HOTLINE_HEALTH_TOKEN": TOKEN})
    broken = rota_text().replace('phone: "086 765 4321"', 'phone: "086 765 43"')
    hotline.write_rota(broken)
    wait_until(lambda: hotline.rt.rota.status().stale, what="the broken edit to be seen")

    status, raw = get(hotline.base_url + "/healthz")
    assert status == 503  # no worker
    assert assert_public_shape(raw) == {
        "ok": False,
        "checks": {"database": "ok", "redis": "ok", "rota": "stale", "worker": "down"},
    }
    for wrong in ("Bearer nope", f"Bearer {TOKEN}x", TOKEN, f"bearer {TOKEN}"):
        assert_public_shape(get(hotline.base_url + "/healthz", {"Authorization": wrong})[1])

    status, raw = get(hotline.base_url + "/healthz", {"Authorization": f"Bearer {TOKEN}"})
    details = json.loads(raw)
    assert status == 503 and details["checks"]["worker"] == {
        "state": "down",
        "alive": 0,
        "last_heartbeat": None,
    }
    assert "086 765 43" in " ".join(details["checks"]["rota"]["errors"])
    assert len(details["checks"]["rota"]["sha256"]) == 64


def test_healthz_without_a_token_setting_never_shows_details(hotline, worker):
    status, raw = get(hotline.base_url + "/healthz", {"Authorization": "Bearer "})
    assert status == 200 and assert_public_shape(raw)["ok"] is True


def test_hotline_health_exits_1_when_not_healthy_and_0_when_healthy(hotline):
    down = hotline.cli("health")
    assert down.returncode == 1, down.stderr
    assert "NOT OK" in down.stdout and re.search(r"worker\s+down", down.stdout)
    worker = TestWorker(hotline).start()
    try:
        up = hotline.cli("health", "--json")
        assert up.returncode == 0, up.stdout + up.stderr
        report = json.loads(up.stdout)
        assert report["ok"] is True and report["checks"]["worker"]["alive"] >= 1
        redis_check = report["checks"]["redis"]
        assert redis_check["state"] == "ok"
        assert {"queued", "steps_due", "sends_due", "to_thread"} <= set(redis_check)
    finally:
        worker.stop()


def test_a_short_health_token_is_refused(tmp_path, hotline):
    with pytest.raises(SettingsError, match="HOTLINE_HEALTH_TOKEN"):
        load_settings({**hotline.env, "HOTLINE_HEALTH_TOKEN": "short"})


# --- item 7: control and bidi characters never reach a terminal or a pager -----------------

ATTACK = "\x1b[2J\x1b[31mFAKE: #99 resolved by amina\x1b]0;pwned\x07 \u202eACK 1\u202c"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")


@pytest.mark.parametrize(
    "text, one_line, expected",
    [
        (ATTACK, False, "[2J[31mFAKE: #99 resolved by amina]0;pwned ACK 1"),
        ("a\r\nb\rc\u2028d\te", False, "a\nb\nc\nd\te"),
        ("a\r\nb\tc", True, "a b c"),
        ("\x00\x7f\x85\x9b\ufeff", True, " "),
        ("الشرطة عند الباب، ساعدوني", False, "الشرطة عند الباب، ساعدوني"),
        ("שלום, המשטרה כאן", True, "שלום, המשטרה כאן"),
        ("می\u200cخواهم 🙏", True, "می\u200cخواهم 🙏"),  # Persian keeps its ZWNJ, emoji stay
        ("\u2066\u2067\u2068\u2069\u202a\u202b\u202d\u200e\u200f\u061c", False, ""),
        (None, False, ""),
        # hidden text: zero-width space, soft hyphen, word joiner, a sentence in tag characters
        ("ACK\u200b 1\u00ad7\u2060", True, "ACK 17"),
        ("ok" + "".join(chr(0xE0000 + ord(c)) for c in "RESOLVE 99") + "\U000e007f", True, "ok"),
    ],
)
def test_clean_text(text, one_line, expected):
    assert clean_text(text, one_line=one_line) == expected


def test_a_line_break_in_outside_text_cannot_forge_a_log_record():
    import io
    import logging

    from hotline.logsafety import RedactNumbers

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactNumbers())
    logger = logging.getLogger("test.forged")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        forged = "ok\n2026-12-07 12:00:00,000 WARNING routing.incidents: #99 RESOLVED by amina"
        logger.warning("CONSOLE SMS to %s:\n%s", "+353*****567", clean_text(forged))
    finally:
        logger.removeHandler(handler)
    first, *rest = out.getvalue().splitlines()
    assert "CONSOLE SMS to" in first and rest
    assert all(line.startswith("    | ") for line in rest), rest


def test_page_and_relay_texts_carry_no_controls():
    assert not UNSAFE.search(page_text(7, "sms", "+44*****123", ATTACK))
    assert not UNSAFE.search(relay_text(7, "+44*****123", ATTACK + "\nsecond line"))
    assert "\n" in relay_text(7, "+44*****123", "first\nsecond")


def test_console_sms_log_line_carries_no_controls(caplog):
    with caplog.at_level(logging.WARNING, logger="routing.notifier"):
        ConsoleNotifier().send_message(
            to="+353861234567", from_="+35312100489", body=ATTACK, status_callback=None
        )
    (record,) = [r for r in caplog.records if "CONSOLE SMS" in r.getMessage()]
    assert not UNSAFE.search(record.getMessage())
    assert "FAKE: #99" in record.getMessage()


def test_an_escape_sequence_by_sms_reaches_no_pager_and_no_terminal(hotline, worker, fake_twilio):
    assert hotline.sms(DEFENDER, ATTACK).status == 200
    page = fake_twilio.wait_for_messages(1, to=level1(hotline))[0]
    assert "FAKE: #99" in page.body and not UNSAFE.search(page.body)
    for args in (
        ("incident", "1"),
        ("incident", "1", "--json"),
        ("incidents",),
        ("incidents", "--json"),
    ):
        shown = hotline.cli(*args)
        assert shown.returncode == 0, shown.stderr
        assert not UNSAFE.search(shown.stdout), args
    assert "FAKE: #99" in hotline.cli("incident", "1").stdout
    assert hotline.unseal(hotline.messages(direction="in")[0], "body") == ATTACK  # kept as is


# --- item 10: files only the hotline's user can read ---------------------------------------


def console_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "rota.yaml").write_text(rota_text())
    (tmp_path / "config.yaml").write_text(
        'hotline: {number: "+35312100489"}\nrota_file: rota.yaml\n'
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "HOTLINE_", "DATABASE_", "REDIS_"))
    }
    return {
        **env,
        "HOTLINE_CONFIG": str(tmp_path / "config.yaml"),
        "HOTLINE_INSTANCE_DIR": str(tmp_path / "instance"),
    }


def test_the_instance_folder_and_database_are_private_whatever_the_umask(tmp_path):
    env = console_env(tmp_path)
    old = os.umask(0o022)  # a typical shell: files 0644, folders 0755
    try:
        # the first command of a new install: it creates the instance folder and database
        result = subprocess.run(
            [sys.executable, "-m", "hotline", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    instance = tmp_path / "instance"
    assert instance.stat().st_mode & 0o777 == 0o700
    for name in ("hotline.db", "hotline.db-wal", "secret.key"):
        if (instance / name).exists():
            assert (instance / name).stat().st_mode & 0o777 == 0o600, name
    assert (instance / "hotline.db").exists()


def test_a_readable_instance_folder_stops_the_worker_with_one_line(tmp_path):
    env = console_env(tmp_path)
    load_settings(env)  # makes the instance folder and its key
    instance = tmp_path / "instance"
    instance.chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-m", "hotline", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"chmod 700 {instance}" in result.stderr


# --- item 11: the signed URL never comes from the Host header ------------------------------


def test_live_mode_requires_the_public_url(hotline):
    env = {k: v for k, v in hotline.env.items() if k != "HOTLINE_PUBLIC_URL"}
    with pytest.raises(SettingsError, match="HOTLINE_PUBLIC_URL: required"):
        load_settings(env)


def test_console_mode_may_go_without_the_public_url(tmp_path):
    env = console_env(tmp_path)
    assert load_settings(env).public_url is None


def test_a_request_signed_for_another_host_is_refused(hotline):
    import urllib.parse

    params = {
        "MessageSid": "SM" + "d" * 32,
        "AccountSid": hotline.fake.account_sid,
        "From": DEFENDER,
        "To": hotline.settings.number,
        "Body": "hi",
        "NumMedia": "0",
    }
    forged = RequestValidator(hotline.fake.auth_token).compute_signature(
        "http://evil.example/twilio/sms", params
    )
    request = urllib.request.Request(
        hotline.base_url + "/twilio/sms",
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": forged, "Host": "evil.example"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403
    assert hotline.messages() == []


# --- item 12: the queue carries JSON, and Redis on the network needs a password ------------


@pytest.mark.parametrize(
    "url, ok",
    [
        ("redis://10.0.0.5:6379/0", False),
        ("redis://redis.internal:6379/0", False),
        ("redis://user@redis.internal:6379/0", False),
        ("rediss://:s3cret@redis.internal:6380/0", True),
        ("redis://:s3cret@10.0.0.5:6379/0", True),
        ("redis://127.0.0.1:6379/15", True),
        ("redis://localhost/0", True),
        ("redis://[::1]:6379", True),
        ("unix:///run/redis/redis.sock", True),
        ("http://10.0.0.5", False),
    ],
)
def test_redis_on_the_network_needs_a_password(hotline, url, ok):
    env = {**hotline.env, "REDIS_URL": url}
    if ok:
        assert load_settings(env).redis_url == url
    else:
        with pytest.raises(SettingsError, match="REDIS_URL"):
            load_settings(env)


@pytest.mark.parametrize("serializer", [None, JSONSerializer], ids=["pickle", "json"])
def test_a_foreign_job_put_in_the_queue_is_not_run(
    hotline, worker, tmp_path, fake_twilio, serializer
):
    marker = tmp_path / "pwned"
    connection = redis.Redis.from_url(hotline.env["REDIS_URL"])
    # what anyone with write access to Redis could queue: pickled code (RQ's default), or a
    # JSON job naming any importable function
    rq.Queue("hotline", connection=connection, serializer=serializer).enqueue(
        os.makedirs, str(marker)
    )
    hotline.jobs_due_ran()  # the worker took the job (and refused it)
    hotline.sms(DEFENDER, "help")  # the worker goes on with real work
    fake_twilio.wait_for_messages(1, to=level1(hotline))
    assert not marker.exists()
    assert worker.proc.poll() is None
