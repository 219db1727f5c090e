"""Calls to staff: notification calls of a page (1 takes it, 2 passes, a machine is no one)
and CALL 17, which connects a staff member to the defender through the hotline number."""

from __future__ import annotations

import pytest
from conftest import rota_text
from harness import TestWorker, wait_until
from sqlmodel import Session, select
from voice_helpers import DEFENDER, levels, post_to, staff_id, twiml, verbs

from routing.tables import Call, StaffState

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database


def call_rota(**waits) -> str:  # noqa: ANN003
    """Everyone on level 1 and 2 also gets a phone call."""
    text = rota_text(**waits)
    for person in ("amina", "ben", "chen", "dana"):
        start = text.index(f"  {person}:")
        end = text.index("}", start)
        text = text[:end] + ", notify: [sms, call]" + text[end:]
    return text


def _notify_call(hotline, fake_twilio, to):  # noqa: ANN001, ANN202
    call = fake_twilio.wait_for_calls(1, to=to)[0]
    return call, {
        "CallSid": call.sid,
        "AccountSid": fake_twilio.account_sid,
        "From": hotline.settings.number,
        "To": to,
        "Called": to,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
    }


def test_page_places_a_notification_call_and_1_acknowledges(make_hotline, fake_twilio):
    hotline = make_hotline(rota=call_rota(wait1="30m"))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "they are arresting me")
        level1 = levels(hotline)[0][0]
        call, params = _notify_call(hotline, fake_twilio, level1)
        assert call.from_ == hotline.settings.number
        assert call.machine_detection == "Enable"
        with Session(hotline.rt.engine) as s:
            ours = s.exec(select(Call).where(Call.purpose == "notify")).one()
        # our id in the URL, so a callback that beats the worker's commit still finds it
        assert call.status_callback == hotline.base_url + f"/twilio/status?call={ours.id}"
        assert "/twilio/voice/notify?incident=1&page=" in call.url
        fake_twilio.wait_for_messages(1, to=level1)  # the SMS page goes out too

        prompt = post_to(hotline, call.url, {**params, "AnsweredBy": "human"})
        gather = prompt.find("Gather")
        assert gather.get("numDigits") == "1"
        said = gather.find("Say").text
        assert "Incident 1" in said and "Press 1 to take it" in said and "English" in said
        assert verbs(prompt)[-1] == "Hangup"  # no key: not an acknowledgement

        taken = post_to(hotline, gather.get("action"), {**params, "Digits": "1"})
        assert "You have taken incident 1." in [s.text for s in taken.iter("Say")]
        incident = hotline.incident(1)
        assert incident.status == "acknowledged"
        assert incident.acknowledged_by == staff_id(hotline, level1)
        # the call then ends normally: a key was pressed, so the page did its job
        fake_twilio.post_status(call.sid, "completed", answered_by="human")
        call_page = [p for p in hotline.pages(1) if p.method == "call"][0]
        assert call_page.status == "answered"
    finally:
        worker.stop()


def test_notification_call_2_passes_to_the_next_level(make_hotline, fake_twilio):
    hotline = make_hotline(rota=call_rota(wait1="30m"))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        level1, level2 = levels(hotline)[0][0], levels(hotline)[1][0]
        call, params = _notify_call(hotline, fake_twilio, level1)
        prompt = post_to(hotline, call.url, {**params, "AnsweredBy": "human"})
        passed = post_to(hotline, prompt.find("Gather").get("action"), {**params, "Digits": "2"})
        assert "passed" in passed.find("Say").text
        fake_twilio.wait_for_messages(1, to=level2)  # not after the 30 minutes: now
        fake_twilio.wait_for_calls(1, to=level2)
        assert hotline.incident(1).status == "open"
    finally:
        worker.stop()


def test_answering_machine_is_hung_up_on_and_is_no_acknowledgement(make_hotline, fake_twilio):
    hotline = make_hotline(rota=call_rota(wait1="30m"))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        level1 = levels(hotline)[0][0]
        call, params = _notify_call(hotline, fake_twilio, level1)
        root = post_to(hotline, call.url, {**params, "AnsweredBy": "machine_start"})
        assert verbs(root) == ["Hangup"]  # nothing about the incident on a voicemail
        fake_twilio.post_status(call.sid, "completed", answered_by="machine_start")
        wait_until(
            lambda: [p for p in hotline.pages(1) if p.method == "call" and p.status == "failed"],
            what="failed page",
        )
        assert hotline.incident(1).status == "open"
    finally:
        worker.stop()


def test_unanswered_call_page_escalates_at_once_when_the_sms_failed_too(make_hotline, fake_twilio):
    hotline = make_hotline(rota=call_rota(wait1="30m"))
    level1 = levels(hotline)[0][0]
    fake_twilio.fail_to(level1, code=21211, kind="messages")  # the SMS page bounces for good
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        call, _params = _notify_call(hotline, fake_twilio, level1)
        fake_twilio.post_status(call.sid, "no-answer")
        fake_twilio.wait_for_messages(1, to=levels(hotline)[1][0])  # level 2 now
    finally:
        worker.stop()


def test_opted_out_staff_are_still_reached_by_call(make_hotline, fake_twilio):
    hotline = make_hotline(rota=call_rota(wait1="30m"))
    level1 = levels(hotline)[0][0]
    with Session(hotline.rt.engine) as s:
        s.add(StaffState(staff_id=staff_id(hotline, level1), opted_out=True))
        s.commit()
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        fake_twilio.wait_for_calls(1, to=level1)
        pages = {
            p.method: p.status for p in hotline.pages(1) if p.staff_id == staff_id(hotline, level1)
        }
        assert pages["sms"] == "skipped" and pages["call"] != "skipped"
        assert fake_twilio.sms_to(level1) == []
        # reachable by call: the level waits for them instead of moving on at once
        assert fake_twilio.sms_to(levels(hotline)[1][0]) == []
    finally:
        worker.stop()


def _command(hotline, phone, text):  # noqa: ANN001, ANN202
    root = twiml(hotline.sms(phone, text))
    return "".join(m.text or "" for m in root.iter("Message"))


def test_call_command_rings_the_staff_member_then_bridges_to_the_defender(
    hotline, worker, fake_twilio
):
    hotline.sms(DEFENDER, "please call me")
    level1 = levels(hotline)[0][0]
    fake_twilio.wait_for_messages(1, to=level1)
    reply = _command(hotline, level1, "CALL 1")
    assert reply.startswith("Calling you now for #1")
    call = fake_twilio.wait_for_calls(1, to=level1)[0]
    assert call.from_ == hotline.settings.number
    assert "/twilio/voice/bridge?incident=1" in call.url
    params = {
        "CallSid": call.sid,
        "From": hotline.settings.number,
        "To": level1,
        "CallStatus": "in-progress",
    }
    prompt = post_to(hotline, call.url, params)
    gather = prompt.find("Gather")
    assert "Press 1" in gather.find("Say").text
    bridged = post_to(hotline, gather.get("action"), {**params, "Digits": "1"})
    dial = bridged.find("Dial")
    assert dial.get("callerId") == hotline.settings.number  # the defender sees the hotline
    assert [n.text for n in dial.findall("Number")] == [DEFENDER]
    assert hotline.incident(1).acknowledged_by == staff_id(hotline, level1)
    assert DEFENDER not in reply


def test_call_command_errors_name_what_would_work(hotline):
    level1 = levels(hotline)[0][0]
    assert _command(hotline, level1, "CALL 99") == "No incident #99. STATUS lists open ones."
    hotline.sms(DEFENDER, "help")
    _command(hotline, level1, "RESOLVE 1")
    assert _command(hotline, level1, "CALL 1") == "#1 is already resolved."
    assert hotline.fake.calls == []


def test_notify_call_for_a_taken_incident_says_so(make_hotline, fake_twilio):
    hotline = make_hotline(rota=call_rota(wait1="30m"))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        level1 = levels(hotline)[0][0]
        call, params = _notify_call(hotline, fake_twilio, level1)
        hotline.sms(level1, "ACK 1")
        root = post_to(hotline, call.url, {**params, "AnsweredBy": "human"})
        assert "needs no action" in root.find("Say").text
        assert root.find("Gather") is None
    finally:
        worker.stop()


def test_unsigned_notify_step_is_refused(hotline):
    hotline.sms(DEFENDER, "help")
    response = hotline.post("/twilio/voice/notify?incident=1&page=1", {"Digits": "1"}, signed=False)
    assert response.status == 403
    assert hotline.incident(1).status == "open"
