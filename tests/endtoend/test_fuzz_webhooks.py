"""Thousands of validly signed, generated webhooks: nothing a sender can put in a form makes
the hotline answer 5xx, log a traceback, or stop being healthy."""

from __future__ import annotations

import logging
import string
import urllib.parse

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

SID_PREFIXES = ("SM", "MM", "CA", "RE", "AC", "XX", "")
PATHS = (
    "/twilio/sms",
    "/twilio/status",
    "/twilio/voice",
    "/twilio/fallback",
    "/twilio/voice/language",
    "/twilio/voice/dial-result",
    "/twilio/voice/screen",
    "/twilio/voice/recorded",
    "/twilio/voice/recording",
    "/twilio/voice/transcript",
    "/twilio/voice/notify",
    "/twilio/voice/bridge",
)
FIELDS = (
    "MessageSid",
    "SmsSid",
    "CallSid",
    "AccountSid",
    "RecordingSid",
    "DialCallSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaContentType0",
    "MediaUrl0",
    "MessageStatus",
    "SmsStatus",
    "CallStatus",
    "DialCallStatus",
    "ErrorCode",
    "Digits",
    "AnsweredBy",
    "RecordingStatus",
    "RecordingUrl",
    "TranscriptionStatus",
    "TranscriptionText",
)

texts = st.text(max_size=300) | st.text(alphabet="\x00\x1b\u202e\u200f\ufffd؟ن", max_size=40)
numbers = st.integers(min_value=-10, max_value=10**30).map(str)
hexes = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
sids = st.builds(
    lambda p, h: p + h,
    st.sampled_from(SID_PREFIXES),
    st.text(alphabet=string.hexdigits.lower(), min_size=0, max_size=34),
)
phones = st.sampled_from(
    [
        "+447700900123",
        "whatsapp:+447700900124",
        "+353861234567",
        "anonymous",
        "client:alice",
        "sip:x@example.org",
        "+266696687",
        "",
    ]
)
values = texts | numbers | sids | phones
# what Twilio sends, well formed: most examples get past the field checks into routing
twilio_form = st.fixed_dictionaries(
    {
        "MessageSid": hexes.map("SM".__add__),
        "CallSid": hexes.map("CA".__add__),
        "RecordingSid": hexes.map("RE".__add__),
        "From": phones,
        "To": phones,
        "Body": texts,
        "NumMedia": st.sampled_from(["0", "1", "2"]) | numbers,
        "MessageStatus": st.sampled_from(["queued", "sent", "delivered", "failed", "undelivered"])
        | texts,
        "CallStatus": st.sampled_from(["ringing", "completed", "no-answer"]) | texts,
        "DialCallStatus": st.sampled_from(["completed", "no-answer", "busy"]) | texts,
        "ErrorCode": numbers | texts,
        "Digits": st.sampled_from(["1", "2", "9", "hangup"]) | texts,
        "AnsweredBy": st.sampled_from(["human", "machine_start", "fax"]) | texts,
        "RecordingStatus": st.sampled_from(["completed", "failed"]) | texts,
        "RecordingUrl": texts,
        "TranscriptionStatus": st.sampled_from(["completed"]) | texts,
        "TranscriptionText": texts,
    }
)
forms = st.tuples(
    twilio_form,
    st.sets(st.sampled_from(FIELDS), max_size=len(FIELDS)),  # fields this example leaves out
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), values, max_size=4),
).map(lambda t: {**{k: v for k, v in t[0].items() if k not in t[1]}, **t[2]})
queries = st.dictionaries(
    st.sampled_from(("incident", "page", "level", "message", "call")),
    numbers | st.text(max_size=8) | st.integers(1, 5).map(str),
    max_size=3,
)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_generated_signed_webhooks_never_break_the_hotline(hotline, worker, caplog):
    caplog.set_level(logging.WARNING)
    statuses: list[int] = []

    @settings(
        max_examples=2000,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(path=st.sampled_from(PATHS), query=queries, form=forms, account=st.booleans())
    # ids we put in our own callback URLs, not numbers: whatever the generated examples
    # (they change with this function's source), these always run
    @example(
        path="/twilio/status",
        query={"message": ":"},
        account=True,
        form={"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"},
    )
    @example(
        path="/twilio/status",
        query={"call": "x"},
        account=True,
        form={"CallSid": "CA" + "0" * 32, "CallStatus": "completed"},
    )
    def post(path, query, form, account):
        if account:
            form = {**form, "AccountSid": hotline.fake.account_sid}
        suffix = "?" + urllib.parse.urlencode(query) if query else ""
        response = hotline.post(path + suffix, form, over_http=False)  # the same app, no socket
        statuses.append(response.status)
        assert response.status < 500, (path, query, form, response.body[:200])

    post()
    assert len(statuses) >= 2000
    assert statuses.count(400) > 100 and sum(s in (200, 204) for s in statuses) > 100
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks[0].getMessage()
    assert "Traceback" not in worker.log()
    health = hotline.get("/healthz")
    assert health.status == 200, health.body
