"""A defender's call, step by step through the TwiML the hotline answers: the language menu,
ringing the levels with screening, and the voicemail that is paged by SMS."""

from __future__ import annotations

import pytest
from harness import wait_until
from sqlmodel import select
from voice_helpers import (
    call_params,
    dial_of,
    incoming_call,
    levels,
    new_sid,
    post_to,
    staff_id,
    verbs,
)

from routing.tables import Call

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database


def _menu_action(root):
    gather = root.find("Gather")
    return gather.get("action")


def _ring_level_one(hotline, sid, digits=None):
    root = incoming_call(hotline, sid)
    params = call_params(hotline, sid, **({"Digits": digits} if digits else {}))
    return post_to(hotline, _menu_action(root), params)


def test_language_menu_speaks_each_option_in_its_own_language(hotline):
    root = incoming_call(hotline, new_sid())
    assert verbs(root) == ["Gather", "Redirect"]
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("actionOnEmptyResult") == "true"
    says = [(say.get("language"), say.text) for say in gather.findall("Say")]
    assert says == [
        ("en-GB", "For English, press 1."),
        ("fr-FR", "Pour le français, appuyez sur 2."),
        ("es-ES", "Para español, pulse 3."),
    ]
    # no key pressed: the Redirect reaches the same step, never a hang-up
    assert root.find("Redirect").text == gather.get("action")
    incident = hotline.incidents()[0]
    assert incident.channel == "voice" and incident.status == "open"


def test_choosing_a_language_rings_level_one_speakers_first(hotline):
    root = _ring_level_one(hotline, new_sid(), digits="2")
    assert hotline.incident(1).language == "fr"
    dial = dial_of(root)
    assert dial.get("callerId") == hotline.settings.number
    numbers = dial.findall("Number")
    assert [n.text for n in numbers] == levels(hotline, "fr")[0]
    assert all("/twilio/voice/screen?incident=1" in n.get("url") for n in numbers)
    assert "/twilio/voice/dial-result?incident=1&level=1" in dial.get("action")


def test_menu_timeout_takes_the_default_language_and_rings(hotline):
    sid = new_sid()
    root = incoming_call(hotline, sid)
    # Twilio's Gather timeout (actionOnEmptyResult) and the Redirect both post no Digits
    for url in (_menu_action(root), root.find("Redirect").text):
        after = post_to(hotline, url, call_params(hotline, sid))
        assert [n.text for n in dial_of(after).findall("Number")] == levels(hotline, "en")[0]
    assert hotline.incident(1).language == "en"


def test_single_language_hotline_rings_at_once(make_hotline):
    hotline = make_hotline(languages=("en",))
    root = incoming_call(hotline, new_sid())
    assert verbs(root) == ["Dial"]


def test_screening_accepted_acknowledges_for_whoever_pressed_one(hotline):
    sid = new_sid()
    dial = dial_of(_ring_level_one(hotline, sid, digits="1"))
    number = dial.find("Number")
    leg = new_sid()
    leg_params = {
        "CallSid": leg,
        "ParentCallSid": sid,
        "From": hotline.settings.number,
        "To": number.text,
        "Called": number.text,
        "CallStatus": "in-progress",
    }
    prompt = post_to(hotline, number.get("url"), leg_params)
    assert verbs(prompt) == ["Gather", "Hangup"]  # no key: that leg hangs up
    gather = prompt.find("Gather")
    assert gather.get("numDigits") == "1"
    assert "press 1 to accept" in gather.find("Say").text.lower()
    accepted = post_to(hotline, gather.get("action"), {**leg_params, "Digits": "1"})
    assert "Hangup" not in verbs(accepted)  # the bridge happens
    incident = hotline.incident(1)
    assert incident.status == "acknowledged"
    assert incident.acknowledged_by == staff_id(hotline, number.text)
    done = post_to(
        hotline,
        dial.get("action"),
        call_params(hotline, sid, DialCallStatus="completed", DialCallSid=leg),
    )
    assert verbs(done) == ["Hangup"]
    assert hotline.incident(1).next_step is None
    assert hotline.pages() == []  # nobody was paged by SMS: a human took the call


def test_screening_ignored_moves_on_to_the_next_level(hotline):
    sid = new_sid()
    dial = dial_of(_ring_level_one(hotline, sid, digits="3"))
    number = dial.find("Number")
    leg = new_sid()
    # a personal voicemail picks up: it hears the prompt, presses nothing, and is hung up on
    prompt = post_to(hotline, number.get("url"), {"CallSid": leg, "To": number.text})
    assert verbs(prompt)[-1] == "Hangup"
    after = post_to(
        hotline,
        dial.get("action"),
        call_params(hotline, sid, DialCallStatus="completed", DialCallSid=leg),
    )
    assert verbs(after) == ["Say", "Dial"]
    stay = after.find("Say")
    assert stay.get("language") == "es-ES" and "no cuelgue" in stay.text
    assert [n.text for n in dial_of(after).findall("Number")] == levels(hotline, "es")[1]
    assert "level=2" in dial_of(after).get("action")
    assert hotline.incident(1).status == "open"


def test_no_answer_through_every_level_ends_in_a_voicemail_paged_by_sms(
    hotline, worker, fake_twilio
):
    sid = new_sid()
    root = _ring_level_one(hotline, sid)
    for _level in levels(hotline):
        root = post_to(
            hotline,
            dial_of(root).get("action"),
            call_params(hotline, sid, DialCallStatus="no-answer"),
        )
    assert verbs(root) == ["Say", "Record", "Say", "Hangup"]
    record = root.find("Record")
    assert record.get("maxLength") == "120" and record.get("playBeep") == "true"
    assert record.get("transcribe") == "true"
    # escalation by SMS waits while the caller is still on the line
    assert hotline.pages() == [] and hotline.incident(1).first_paged_at is None

    recording_url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    callback = {
        "AccountSid": fake_twilio.account_sid,
        "CallSid": sid,
        "RecordingSid": "RE" + "1" * 32,
        "RecordingUrl": recording_url,
        "RecordingStatus": "completed",
        "RecordingDuration": "14",
    }
    assert (
        hotline.post(
            record.get("recordingStatusCallback")[len(hotline.base_url) :], callback
        ).status
        == 204
    )
    bye = post_to(
        hotline,
        record.get("action"),
        call_params(hotline, sid, RecordingUrl=recording_url, RecordingDuration="14"),
    )
    assert verbs(bye) == ["Say", "Hangup"]

    level1 = levels(hotline)[0][0]
    page = fake_twilio.wait_for_messages(1, to=level1)[0]
    assert page.body.startswith("#1 Voicemail +44*****123:")
    assert "ACK 1" in page.body
    assert "Recording" not in page.body and "http" not in page.body and "RE1" not in page.body
    with hotline.session() as s:
        call = s.exec(select(Call).where(Call.sid == sid)).one()
    assert hotline.unseal(call, "recording") == recording_url
    assert recording_url not in (call.recording_enc or "")

    # a repeated recording callback changes nothing
    events = len(hotline.events(1))
    hotline.post(record.get("recordingStatusCallback")[len(hotline.base_url) :], callback)
    assert len(hotline.events(1)) == events


def test_caller_hanging_up_while_ringing_starts_sms_escalation(hotline, worker, fake_twilio):
    sid = new_sid()
    _ring_level_one(hotline, sid)
    assert hotline.incident(1).first_paged_at is None
    response = hotline.post("/twilio/status", call_params(hotline, sid, CallStatus="completed"))
    assert response.status in (200, 204)
    fake_twilio.wait_for_messages(1, to=levels(hotline)[0][0])
    assert any(e.kind == "caller_hung_up" for e in hotline.events(1))


def test_repeated_call_sid_opens_one_incident_and_answers_the_same(hotline):
    sid = new_sid()
    first = hotline.post("/twilio/voice", call_params(hotline, sid, CallStatus="ringing"))
    again = hotline.post("/twilio/voice", call_params(hotline, sid, CallStatus="ringing"))
    assert first.body == again.body
    assert len(hotline.incidents()) == 1
    with hotline.session() as s:
        assert len(s.exec(select(Call)).all()) == 1
    assert [e.kind for e in hotline.events(1)] == ["opened"]


def test_a_second_call_joins_the_callers_open_incident(hotline):
    incoming_call(hotline, new_sid())
    incoming_call(hotline, new_sid())
    assert len(hotline.incidents()) == 1
    assert [e.kind for e in hotline.events(1)] == ["opened", "call"]


def test_withheld_numbers_each_get_their_own_incident(hotline):
    incoming_call(hotline, new_sid(), sender="anonymous")
    incoming_call(hotline, new_sid(), sender="anonymous")
    assert len(hotline.incidents()) == 2


def test_unknown_call_status_is_accepted_and_changes_nothing(hotline):
    response = hotline.post("/twilio/status", {"CallSid": new_sid(), "CallStatus": "completed"})
    assert response.status in (200, 204)
    assert hotline.incidents() == []


def test_voice_steps_refuse_unsigned_requests(hotline):
    response = hotline.post("/twilio/voice", call_params(hotline, new_sid()), signed=False)
    assert response.status == 403
    assert hotline.incidents() == []


def test_worker_pages_a_held_call_when_nothing_came_back(hotline, worker, fake_twilio):
    """The live flow died (no callback ever came): the hold expires and the sweeper pages."""
    from datetime import timedelta

    from sqlmodel import Session

    from routing.tables import Incident

    incoming_call(hotline, new_sid())
    with Session(hotline.rt.engine) as s:
        incident = s.get(Incident, 1)
        incident.next_step_at = incident.next_step_at - timedelta(hours=1)
        s.add(incident)
        s.commit()
    fake_twilio.wait_for_messages(1, to=levels(hotline)[0][0])
    wait_until(lambda: hotline.incident(1).first_paged_at, what="first page")
