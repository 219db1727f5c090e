"""Webhooks refuse what Twilio never sends: shifted fields under a valid signature, made-up
requests too big or with too many fields (before any parsing), and numbers past any id."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from twilio.request_validator import RequestValidator
from voice_helpers import call_params, new_sid

import oncall
from routing.parse_commands import NoSuchIncident, parse_staff_reply

# webhook parsing does not depend on the database: one each (tests/conftest.py); huge
# numbers reach it, so those run on both
pytestmark = pytest.mark.one_database

DEFENDER = "+447700900123"
HUGE = "9" * 25


def level1(hotline) -> str:  # noqa: ANN001
    rota = hotline.rt.rota.current()
    return oncall.who_is_on_call(rota, datetime.now(UTC), None)[0].staff[0].phone


def sms_params(hotline, sender: str, body: str, **extra: str) -> dict:  # noqa: ANN001
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": hotline.fake.account_sid,
        "From": sender,
        "To": hotline.settings.number,
        "Body": body,
        "NumMedia": "0",
    }
    params.update(extra)
    return params


# --- item 1: field boundaries shifted under a valid signature ------------------------------


def test_a_folded_replay_of_a_staff_reply_is_refused_and_relays_nothing(
    hotline, worker, fake_twilio
):
    hotline.sms(DEFENDER, "police at the door")
    staff = level1(hotline)
    fake_twilio.wait_for_messages(1, to=staff)
    original = sms_params(hotline, staff, "R1 stay inside, a lawyer is coming")
    assert hotline.post("/twilio/sms", original).status == 200
    fake_twilio.wait_for_messages(1, to=DEFENDER)
    stored = len(hotline.messages(direction="in"))

    # The signature joins keys and values with no separator: folding NumMedia into MessageSid
    # keeps it valid (checked here), and would make a "new" message of the same command.
    folded = {k: v for k, v in original.items() if k != "NumMedia"}
    folded["MessageSid"] = original["MessageSid"] + "NumMedia0"
    validator = RequestValidator(fake_twilio.auth_token)
    url = hotline.base_url + "/twilio/sms"
    assert validator.compute_signature(url, folded) == validator.compute_signature(url, original)
    response = hotline.post("/twilio/sms", folded)
    assert response.status == 400
    assert len(hotline.messages(direction="in")) == stored
    assert len(hotline.messages(direction="out", purpose="reply")) == 1  # none written again
    hotline.outbox_settled()
    relays = [m for m in fake_twilio.messages if m.to == DEFENDER and "lawyer" in m.body]
    assert len(relays) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"MessageSid": "SM" + "A" * 32},  # upper-case hex
        {"MessageSid": "XX" + "a" * 32},
        {"MessageSid": "SM" + "a" * 31},
        {"SmsSid": "SM" + "b" * 32},  # differs from MessageSid
        {"AccountSid": "AC" + "1" * 32},  # not our account
        {"AccountSid": "ACnot-hex"},
        {"MessagingServiceSid": "MG123"},
        {"SomeNewSid": "not a sid"},
        {"NumMedia": "99999999999999999999"},
    ],
)
def test_malformed_twilio_fields_get_400_and_store_nothing(hotline, change):
    params = sms_params(hotline, DEFENDER, "help")
    params.update(change)
    assert hotline.post("/twilio/sms", params).status == 400
    assert hotline.messages() == [] and hotline.incidents() == []


def test_repeated_keys_get_400(hotline):
    params = list(sms_params(hotline, DEFENDER, "help").items())
    params.append(("MessageSid", "SM" + "c" * 32))
    assert hotline.post("/twilio/sms", params).status == 400
    assert hotline.messages() == []


def test_well_formed_sids_pass(hotline):
    sid = "MM" + secrets.token_hex(16)
    params = sms_params(
        hotline,
        DEFENDER,
        "help",
        MessageSid=sid,
        SmsSid=sid,
        MessagingServiceSid="MG" + secrets.token_hex(16),
    )
    assert hotline.post("/twilio/sms", params).status == 200
    assert len(hotline.messages(direction="in")) == 1


def test_malformed_call_sids_get_400(hotline):
    for sid in ("CA" + "x" * 32, "CA" + "0" * 32 + "CallStatusringing", "SM" + "0" * 32):
        response = hotline.post("/twilio/voice", call_params(hotline, sid, CallStatus="ringing"))
        assert response.status == 400, sid
    params = call_params(hotline, new_sid(), CallStatus="ringing", RecordingSid="RE123")
    assert hotline.post("/twilio/voice", params).status == 400
    assert hotline.incidents() == []


# --- item 3: made-up requests are refused before any parsing -------------------------------


def _raw_post(hotline, body: bytes, signature: str | None) -> int:  # noqa: ANN001
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    request = urllib.request.Request(
        hotline.base_url + "/twilio/sms", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


FAKE_SIGNATURE = "A" * 27 + "="  # the shape of a real one, the value of none


def test_the_empty_keys_attack_is_refused_before_parsing(hotline):
    attack = b"&".join([b"a="] * 60_000) + b"&" + b"x" * 75_000  # about 255 KB
    assert len(attack) > 250_000
    assert _raw_post(hotline, attack, FAKE_SIGNATURE) == 413
    assert _raw_post(hotline, attack, None) == 403
    assert _raw_post(hotline, attack, "bm90LXZhbGlk") == 403
    many = b"&".join([b"a="] * 101)  # small, but more fields than Twilio ever sends
    assert _raw_post(hotline, many, FAKE_SIGNATURE) == 400
    assert hotline.messages() == [] and hotline.incidents() == []


def test_a_signed_form_with_too_many_fields_is_refused(hotline):
    params = sms_params(hotline, DEFENDER, "help")
    params.update({f"Extra{i}": "" for i in range(100)})
    assert hotline.post("/twilio/sms", params).status == 400
    assert hotline.messages() == []


def test_a_long_whatsapp_message_in_arabic_still_fits(hotline):
    text = "ساعدوني " * 512  # 4,096 characters, WhatsApp's longest text
    params = sms_params(hotline, "whatsapp:" + DEFENDER, text[:4096], To=hotline.settings.whatsapp)
    assert hotline.post("/twilio/sms", params).status == 200
    assert len(hotline.messages(direction="in")) == 1


# --- item 5: numbers too big --------------------------------------------------------------


@pytest.mark.both_databases  # an overflowing number is the database's business
@pytest.mark.parametrize(
    "body",
    [
        "ACK 999999999999999999999",
        "RESOLVE " + "9" * 40,
        "BLOCK 9223372036854775808",
        "PASS 2147483648",
        "R" + "9" * 5000 + " hello",
        "CALL 99999999999",
    ],
)
def test_commands_with_huge_numbers_are_answered_as_unknown_incidents(hotline, body):
    hotline.sms(DEFENDER, "help")
    reply = hotline.sms(level1(hotline), body)
    assert reply.status == 200
    assert "No incident #" in reply.body and "STATUS lists open ones" in reply.body
    assert hotline.incident(1).status == "open"


def test_the_largest_incident_number_is_still_a_number():
    assert parse_staff_reply("ACK 2147483647").incident == 2147483647
    assert isinstance(parse_staff_reply("ACK 2147483648"), NoSuchIncident)
    assert parse_staff_reply("ACK 00000000017").__class__ is NoSuchIncident  # 11 digits


@pytest.mark.both_databases  # an overflowing number is the database's business
def test_status_callbacks_with_huge_ids_are_polite(hotline):
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": hotline.fake.account_sid,
        "MessageStatus": "undelivered",
        "ErrorCode": "30008",
    }
    assert hotline.post(f"/twilio/status?message={HUGE}", params).status in (200, 204)
    call = {"CallSid": new_sid(), "AccountSid": hotline.fake.account_sid, "CallStatus": "completed"}
    assert hotline.post(f"/twilio/status?call={HUGE}", call).status in (200, 204)


@pytest.mark.both_databases  # an overflowing number is the database's business
@pytest.mark.parametrize("step", ["screen", "notify", "bridge", "language", "dial-result"])
def test_voice_steps_with_huge_ids_answer_safe_twiml(hotline, step):
    query = {
        "screen": f"incident={HUGE}",
        "notify": f"incident={HUGE}&page=1",
        "bridge": f"incident={HUGE}",
        "language": f"incident={HUGE}",
        "dial-result": f"incident=1&level={HUGE}",
    }[step]
    params = call_params(hotline, new_sid(), Digits="1")
    response = hotline.post(f"/twilio/voice/{step}?{query}", params)
    assert response.status == 200 and "<Response>" in response.body
    if step in ("language", "dial-result"):  # a caller: the voicemail, never silence
        assert "<Record" in response.body
    else:
        assert "<Hangup" in response.body
    assert hotline.incidents() == []
