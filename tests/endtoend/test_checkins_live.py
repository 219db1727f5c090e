"""Check-ins through the webhooks with real `hotline worker` processes, real Redis and the fake
Twilio: a deadline is met on time by the scheduled job and the sweeper (never early, within
2 s; within 5 s of it when the worker holding RQ's scheduler is SIGKILLed a second before),
and every channel's contact reaches the check-in.

Few and short: the logic is covered in-process by tests/inprocess/test_checkins.py. The rota waits
30 minutes, so every page seen here is the check-in's own.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from conftest import rota_text
from harness import TestWorker, wait_until
from sqlmodel import select
from voice_helpers import incoming_call, levels, new_sid

from routing.tables import Checkin
from routing.texts import auto_reply

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database

DEFENDER = "+447700900123"
OTHER = "+447700900456"
LONG_WAITS = rota_text(wait1="30m", wait2="30m")
DURESS = "checkins:\n  duress_words: [sunflower]\n"


def said(response) -> str | None:  # noqa: ANN001
    """The immediate SMS reply in a webhook's TwiML, or None."""
    assert response.status == 200, response.body
    message = ET.fromstring(response.body).find("Message")
    return None if message is None else message.text


def checkin_rows(hotline) -> list[Checkin]:  # noqa: ANN001
    with hotline.session() as s:
        return list(s.exec(select(Checkin).order_by(Checkin.id)).all())


def alarms(fake, prefix: str) -> list:  # noqa: ANN001
    return [m for m in fake.messages if (m.body or "").startswith(prefix)]


def wait_for_alarm(fake, prefix: str, count: int = 1, timeout: float = 15):  # noqa: ANN001
    return fake.wait_for(
        lambda: alarms(fake, prefix) if len(alarms(fake, prefix)) >= count else None,
        timeout=timeout,
    )


def open_and_take(hotline, defender: str = DEFENDER, number: int = 1) -> str:  # noqa: ANN001
    """Open incident `number` from `defender`; level 1 takes it. Returns level 1's phone."""
    hotline.sms(defender, "released on bail, going home")
    level1 = levels(hotline)[0][0]
    hotline.fake.wait_for_messages(number, to=level1)
    assert said(hotline.sms(level1, f"ACK {number}")).startswith(f"You took #{number}")
    return level1


def test_a_missed_checkin_pages_level_one_within_2s_of_the_deadline_never_before(
    make_hotline, fake_twilio
):
    hotline = make_hotline(rota=LONG_WAITS)
    worker = TestWorker(hotline).start()
    try:
        level1 = open_and_take(hotline)
        answer = said(hotline.sms(level1, "CHECKIN 1 5s"))
        assert answer.startswith("#1: check-in by ") and "CHECKIN 1 OFF cancels" in answer
        [checkin] = checkin_rows(hotline)
        [page] = wait_for_alarm(fake_twilio, "MISSED CHECK-IN #1")
        lateness = (page.received_at - checkin.due_at).total_seconds()
        print(f"missed check-in paged {lateness:.3f} s after its deadline")
        assert 0 <= lateness < 2, lateness
        assert page.to == level1
        assert hotline.incident(1).status == "open"
        assert [m for m in fake_twilio.messages if m.to == DEFENDER] == [], (
            "the defender was sent something"
        )
    finally:
        worker.stop()


def test_a_standing_checkin_is_moved_by_sms_whatsapp_and_a_call(make_hotline, fake_twilio):
    hotline = make_hotline(rota=LONG_WAITS)
    worker = TestWorker(hotline).start()
    try:
        level1 = open_and_take(hotline)
        said(hotline.sms(level1, "CHECKIN 1 every 5s"))
        due = checkin_rows(hotline)[0].due_at
        for contact in ("sms", "whatsapp", "call"):
            # pacing, not a barrier: each contact comes 2 s into the 5 s the last one gave,
            # so that without it the check-in would be missed, and with it the deadline moves
            wait_until(lambda d=due: datetime.now(UTC) >= d - timedelta(seconds=3), what="2 s")
            if contact == "call":
                incoming_call(hotline, new_sid(), DEFENDER)
            else:
                hotline.sms(("whatsapp:" if contact == "whatsapp" else "") + DEFENDER, "ok")
            [checkin] = checkin_rows(hotline)
            last = hotline.incident(1).last_inbound_at
            assert checkin.status == "active" and checkin.due_at > due, contact
            assert (checkin.due_at - last).total_seconds() == 5, contact
            due = checkin.due_at
        assert alarms(fake_twilio, "MISSED") == [], "missed although each contact moved it"
        [page] = wait_for_alarm(fake_twilio, "MISSED CHECK-IN #1")
        lateness = (page.received_at - due).total_seconds()
        print(f"moved check-in paged {lateness:.3f} s after its last deadline")
        assert 0 <= lateness < 2, lateness
        kept = [e.detail for e in hotline.events(1) if e.kind == "checkin_kept"]
        assert [d.split(";")[0] for d in kept] == ["sms message", "whatsapp message", "voice call"]
    finally:
        worker.stop()


def test_a_checkin_kept_by_a_call_or_switched_off_pages_nobody(make_hotline, fake_twilio):
    hotline = make_hotline(rota=LONG_WAITS)
    worker = TestWorker(hotline).start()
    try:
        level1 = open_and_take(hotline, DEFENDER, 1)
        open_and_take(hotline, OTHER, 2)
        said(hotline.sms(level1, "CHECKIN 1 5s notify"))
        said(hotline.sms(level1, "CHECKIN 2 5s"))
        due = max(c.due_at for c in checkin_rows(hotline))
        incoming_call(hotline, new_sid(), DEFENDER)
        assert said(hotline.sms(level1, "CHECKIN 2 OFF")).startswith("#2: check-in off")
        note = fake_twilio.wait_for_messages(3, to=level1)[-1]
        assert note.body.startswith("#1: the defender checked in (Call, ")
        wait_until(lambda: datetime.now(UTC) > due, timeout=10, what="the deadline")
        hotline.swept_after(due)  # a miss would have paged by now
        assert alarms(fake_twilio, "MISSED") == []
        assert [c.status for c in checkin_rows(hotline)] == ["kept", "off"]
    finally:
        worker.stop()


@pytest.mark.parametrize("state", ["open", "acknowledged", "resolved"])
def test_duress_pages_level_one_at_once_and_the_defender_sees_a_normal_message(
    make_hotline, fake_twilio, state
):
    hotline = make_hotline(rota=LONG_WAITS, config=DURESS)
    worker = TestWorker(hotline).start()
    try:
        first = hotline.sms(DEFENDER, "they searched my flat")
        level1, level2 = (level[0] for level in levels(hotline))
        fake_twilio.wait_for_messages(1, to=level1)
        said(hotline.sms(level1, "CHECKIN 1 every 1h"))
        if state == "acknowledged":
            said(hotline.sms(level2, "ACK 1"))  # the taker is not in level 1
        if state == "resolved":
            said(hotline.sms(level1, "RESOLVE 1"))
        response = hotline.sms(DEFENDER, "All fine here, the sunflower is blooming")
        number = 2 if state == "resolved" else 1
        # exactly what any message gets: a new incident's auto-reply, else nothing
        assert said(response) == (said(first) if state == "resolved" else None)
        assert said(first) == auto_reply("en")
        # the taker, when it is not level 1, is told too
        expected = sorted([level1, level2] if state == "acknowledged" else [level1])
        pages = wait_for_alarm(fake_twilio, f"DURESS #{number} ", len(expected), timeout=5)
        assert sorted(m.to for m in pages) == expected
        assert hotline.incident(number).status == "open"
        assert [m for m in fake_twilio.messages if m.to == DEFENDER] == []
    finally:
        worker.stop()


def test_a_worker_killed_a_second_before_a_deadline_delays_the_page_by_seconds(
    make_hotline, fake_twilio
):
    hotline = make_hotline(rota=LONG_WAITS)
    first = TestWorker(hotline, "first").start()  # takes RQ's scheduler lock
    second = TestWorker(hotline, "second").start()
    try:
        level1 = open_and_take(hotline)
        said(hotline.sms(level1, "CHECKIN 1 5s"))
        [checkin] = checkin_rows(hotline)
        wait_until(
            lambda: (checkin.due_at - datetime.now(UTC)).total_seconds() <= 1,
            timeout=10,
            what="a second before the deadline",
        )
        first.kill()  # its scheduler lock lives on for ~61 s
        [page] = wait_for_alarm(fake_twilio, "MISSED CHECK-IN #1", timeout=15)
        lateness = (page.received_at - checkin.due_at).total_seconds()
        print(f"after a SIGKILL, the missed check-in paged {lateness:.3f} s after its deadline")
        assert 0 <= lateness < 5, lateness
        assert len(alarms(fake_twilio, "MISSED")) == 1, "paged twice"
    finally:
        first.stop()
        second.stop()


def test_a_deadline_that_no_longer_stands_leaves_no_job_behind(hotline, worker):
    """Replaced, moved, kept or switched off: a check-in's old deadline job is dropped (a
    thousand CHECKINs left a thousand no-op jobs in Redis for up to a week)."""
    from rq.registry import ScheduledJobRegistry

    def checkin_jobs() -> list[str]:
        registry = ScheduledJobRegistry(queue=hotline.rt.queue)
        return [job for job in registry.get_job_ids() if job.startswith("checkin-")]

    level1 = open_and_take(hotline)
    for hours in range(1, 6):
        said(hotline.sms(level1, f"CHECKIN 1 {hours}h"))
    assert len(checkin_jobs()) == 1, "only the standing deadline's job"
    said(hotline.sms(level1, "CHECKIN 1 every 6h"))
    for _ in range(3):  # each contact moves the deadline: the old job goes
        hotline.sms(DEFENDER, "ok")
    assert len(checkin_jobs()) == 1
    said(hotline.sms(level1, "CHECKIN 1 OFF"))
    assert checkin_jobs() == []
