"""Tests for the FakeTwilio test double, driven through the real twilio SDK."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fake_twilio import FakeCall, FakeMessage, FakeTwilio
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

ACCOUNT_SID = "AC" + "1234567890abcdef" * 2
AUTH_TOKEN = "secret-token-for-tests"
HOTLINE = "+15005550006"
VOLUNTEER = "+15551230001"
OTHER = "+15551230002"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    """A started FakeTwilio."""
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as f:
        yield f


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    """A real SDK client routed exactly as the project does it."""
    c = Client(ACCOUNT_SID, AUTH_TOKEN, environment={"_": ""})
    c.api.base_url = fake.base_url
    return c


class _Receiver:
    """Tiny local webhook receiver that validates X-Twilio-Signature."""

    def __init__(self, auth_token: str, status: int = 204, public_base: str | None = None):
        self.received: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                params = dict(urllib.parse.parse_qsl(raw.decode()))
                base = public_base or f"http://127.0.0.1:{self.server.server_address[1]}"
                url = base + self.path
                valid = RequestValidator(auth_token).validate(
                    url, params, self.headers.get("X-Twilio-Signature", "")
                )
                with receiver.cond:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "params": params,
                            "valid": valid,
                            "content_type": self.headers.get("Content-Type"),
                        }
                    )
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver(AUTH_TOKEN)
    yield r
    r.close()


def test_message_create_routes_to_fake(fake: FakeTwilio, client: Client) -> None:
    msg = client.messages.create(
        to=VOLUNTEER, from_=HOTLINE, body="Caller waiting", status_callback="http://x/cb"
    )
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert msg.status == "queued"
    assert (msg.to, msg.from_, msg.body) == (VOLUNTEER, HOTLINE, "Caller waiting")
    assert msg.account_sid == ACCOUNT_SID
    assert isinstance(msg.date_created, datetime)
    [rec] = fake.messages
    assert isinstance(rec, FakeMessage)
    assert rec.sid == msg.sid and rec.status_callback == "http://x/cb"
    assert rec.form["Body"] == ["Caller waiting"]
    assert rec.received_monotonic > 0 and rec.received_at.tzinfo is not None
    assert fake.sms_to(VOLUNTEER) == ["Caller waiting"]
    assert fake.sms_to(OTHER) == []
    fetched = client.messages(msg.sid).fetch()
    assert fetched.sid == msg.sid and fetched.body == "Caller waiting"


def test_media_urls_repeated(fake: FakeTwilio, client: Client) -> None:
    client.messages.create(to=VOLUNTEER, from_=HOTLINE, media_url=["http://a/1", "http://a/2"])
    assert fake.messages[0].media_urls == ["http://a/1", "http://a/2"]


def test_fake_client_helper(fake: FakeTwilio) -> None:
    fake.client().messages.create(to=VOLUNTEER, from_=HOTLINE, body="hi")
    assert fake.sms_to(VOLUNTEER) == ["hi"]


def test_call_create_fetch_update(fake: FakeTwilio, client: Client) -> None:
    events = ["initiated", "ringing", "answered", "completed"]
    call = client.calls.create(
        to=VOLUNTEER,
        from_=HOTLINE,
        twiml="<Response><Say>hi</Say></Response>",
        status_callback="http://x/call",
        status_callback_event=events,
        machine_detection="Enable",
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued" and call.to == VOLUNTEER
    [rec] = fake.wait_for_calls(1, to=VOLUNTEER)
    assert isinstance(rec, FakeCall)
    assert rec.status_callback_events == events
    assert rec.form["StatusCallbackEvent"] == events
    assert rec.machine_detection == "Enable"
    assert rec.twiml is not None and "<Say>hi</Say>" in rec.twiml

    updated = client.calls(call.sid).update(status="completed")
    assert updated.status == "completed"
    assert client.calls(call.sid).fetch().status == "completed"
    client.calls(call.sid).update(url="http://x/next")
    assert [u.status for u in fake.call_updates] == ["completed", None]
    assert fake.call_updates[1].url == "http://x/next"


def test_call_with_url(fake: FakeTwilio, client: Client) -> None:
    client.calls.create(to=VOLUNTEER, from_=HOTLINE, url="http://x/voice")
    assert fake.calls[0].url == "http://x/voice"


def test_bad_auth_raises_401(fake: FakeTwilio) -> None:
    bad = Client(ACCOUNT_SID, "wrong", environment={"_": ""})
    bad.api.base_url = fake.base_url
    with pytest.raises(TwilioRestException) as info:
        bad.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
    assert info.value.status == 401 and info.value.code == 20003
    assert fake.messages == []
    assert fake.rejected[0].code == 20003


def test_fail_next_raises_and_then_recovers(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(code=21211, to=VOLUNTEER)
    client.messages.create(to=OTHER, from_=HOTLINE, body="unaffected")
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="first")
    assert info.value.code == 21211 and info.value.status == 400
    assert "not a valid phone number" in info.value.msg
    client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="second")
    assert fake.sms_to(VOLUNTEER) == ["second"]
    [rej] = fake.rejected
    assert (rej.kind, rej.to, rej.body, rej.code) == ("messages", VOLUNTEER, "first", 21211)


def test_fail_next_calls_kind_and_count(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(count=2, code=21614, kind="calls")
    client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="sms is fine")
    for _ in range(2):
        with pytest.raises(TwilioRestException) as info:
            client.calls.create(to=VOLUNTEER, from_=HOTLINE, url="http://x/v")
        assert info.value.code == 21614
    client.calls.create(to=VOLUNTEER, from_=HOTLINE, url="http://x/v")
    assert len(fake.calls) == 1 and len(fake.rejected) == 2


def test_transient_error_is_not_retried_by_sdk(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(code=20500, status=500)
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
    assert info.value.status == 500 and info.value.code == 20500
    assert len(fake.rejected) == 1  # exactly one HTTP request: no SDK retries
    fake.fail_next(code=20503, status=503)
    with pytest.raises(TwilioRestException):
        client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
    assert len(fake.rejected) == 2


def test_fail_to_until_cleared(fake: FakeTwilio, client: Client) -> None:
    fake.fail_to(VOLUNTEER, 21610)
    for _ in range(3):
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
        assert info.value.code == 21610
    with pytest.raises(TwilioRestException):
        client.calls.create(to=VOLUNTEER, from_=HOTLINE, url="http://x/v")
    client.messages.create(to=OTHER, from_=HOTLINE, body="ok")
    fake.clear_failures()
    client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="ok now")
    assert fake.sms_to(VOLUNTEER) == ["ok now"]
    assert len(fake.rejected) == 4


def test_validation_errors(fake: FakeTwilio, client: Client) -> None:
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=VOLUNTEER, from_=HOTLINE)
    assert info.value.code == 21602
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x" * 1601)
    assert info.value.code == 21617
    with pytest.raises(TwilioRestException) as info:
        client.messages("SM" + "0" * 32).fetch()
    assert info.value.status == 404 and info.value.code == 20404


def test_deletes_recorded(fake: FakeTwilio, client: Client) -> None:
    msg = client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
    assert client.messages(msg.sid).delete() is True
    rec_sid = "RE" + "a" * 32
    assert client.recordings(rec_sid).delete() is True
    assert [(d.kind, d.sid) for d in fake.deletions] == [
        ("messages", msg.sid),
        ("recordings", rec_sid),
    ]
    fake.fail_next(kind="deletions", code=20404, status=404)
    with pytest.raises(TwilioRestException) as info:
        client.recordings(rec_sid).delete()
    assert info.value.status == 404
    assert len(fake.deletions) == 2


def test_post_status_message_signed(fake: FakeTwilio, client: Client, receiver: _Receiver) -> None:
    cb = receiver.base + "/twilio/sms-status?leg=1"
    msg = client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x", status_callback=cb)
    assert fake.post_status(msg.sid, "delivered") == 204
    assert fake.post_status(msg.sid, "undelivered", error_code=30003) == 204
    first, second = receiver.wait(2)
    assert first["valid"] and second["valid"]
    assert first["path"] == "/twilio/sms-status?leg=1"
    assert first["content_type"].startswith("application/x-www-form-urlencoded")
    assert first["params"] == {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": HOTLINE,
        "To": VOLUNTEER,
        "MessageSid": msg.sid,
        "MessageStatus": "delivered",
        "SmsSid": msg.sid,
        "SmsStatus": "delivered",
    }
    assert second["params"]["ErrorCode"] == "30003"
    assert second["params"]["MessageStatus"] == "undelivered"
    assert client.messages(msg.sid).fetch().status == "undelivered"
    assert [c.http_status for c in fake.status_callbacks] == [204, 204]


def test_post_status_public_url_base(fake: FakeTwilio, client: Client) -> None:
    public = "https://hotline.example.org"
    receiver = _Receiver(AUTH_TOKEN, status=200, public_base=public)
    try:
        msg = client.messages.create(
            to=VOLUNTEER, from_=HOTLINE, body="x", status_callback=receiver.base + "/s"
        )
        assert fake.post_status(msg.sid, "sent", public_url_base=public) == 200
        [got] = receiver.wait(1)
        assert got["valid"]
        assert fake.status_callbacks[0].signed_url == public + "/s"
        # Without the public base the signature does not match that URL.
        fake.post_status(msg.sid, "sent")
        assert receiver.wait(2)[1]["valid"] is False
    finally:
        receiver.close()


def test_post_status_call(fake: FakeTwilio, client: Client, receiver: _Receiver) -> None:
    call = client.calls.create(
        to=VOLUNTEER,
        from_=HOTLINE,
        url="http://x/v",
        status_callback=receiver.base + "/twilio/call-status",
        status_callback_event=["answered", "completed"],
        machine_detection="Enable",
    )
    fake.post_status(call.sid, "in-progress", answered_by="human")
    fake.post_status(call.sid, "completed", call_duration=75)
    first, second = receiver.wait(2)
    assert first["valid"] and second["valid"]
    assert first["params"]["CallSid"] == call.sid
    assert first["params"]["CallStatus"] == "in-progress"
    assert first["params"]["AnsweredBy"] == "human"
    assert second["params"]["CallDuration"] == "75"
    assert second["params"]["Duration"] == "2"
    assert [p["params"]["SequenceNumber"] for p in (first, second)] == ["0", "1"]
    fetched = client.calls(call.sid).fetch()
    assert fetched.status == "completed" and fetched.answered_by == "human"


def test_post_status_errors(fake: FakeTwilio, client: Client) -> None:
    msg = client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
    with pytest.raises(ValueError):
        fake.post_status(msg.sid, "sent")
    with pytest.raises(KeyError):
        fake.post_status("SM" + "f" * 32, "sent")
    dead = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    dead_url = dead.base_url + "/gone"
    dead.stop()
    msg2 = client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x", status_callback=dead_url)
    with pytest.raises(urllib.error.URLError):
        fake.post_status(msg2.sid, "sent")
    assert fake.status_callbacks[-1].error is not None


def test_post_status_returns_app_error_status(fake: FakeTwilio, client: Client) -> None:
    r = _Receiver(AUTH_TOKEN, status=403)
    try:
        msg = client.messages.create(
            to=VOLUNTEER, from_=HOTLINE, body="x", status_callback=r.base + "/s"
        )
        assert fake.post_status(msg.sid, "sent") == 403
    finally:
        r.close()


def test_auto_status(receiver: _Receiver) -> None:
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, auto_status=("sent", "delivered")) as f:
        c = f.client()
        msg = c.messages.create(
            to=VOLUNTEER, from_=HOTLINE, body="x", status_callback=receiver.base + "/s"
        )
        c.messages.create(to=OTHER, from_=HOTLINE, body="no callback url")
        got = receiver.wait(2)
        assert [g["params"]["MessageStatus"] for g in got] == ["sent", "delivered"]
        assert all(g["valid"] and g["params"]["MessageSid"] == msg.sid for g in got)
        f.wait_for(lambda: len(f.status_callbacks) == 2, timeout=5)
        assert f.get(msg.sid).status == "delivered"


def test_wait_for_wakes_on_request(fake: FakeTwilio, client: Client) -> None:
    timer = threading.Timer(
        0.1, lambda: client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="later")
    )
    timer.start()
    try:
        [msg] = fake.wait_for_messages(1, to=VOLUNTEER, timeout=5)
        assert msg.body == "later"
    finally:
        timer.join()
    assert fake.wait_for(lambda: fake.sms_to(VOLUNTEER)) == ["later"]


def test_wait_for_timeout(fake: FakeTwilio) -> None:
    with pytest.raises(TimeoutError, match="messages="):
        fake.wait_for_messages(1, timeout=0.2)
    with pytest.raises(TimeoutError):
        fake.wait_for_calls(1, timeout=0.05)


def test_clear(fake: FakeTwilio, client: Client) -> None:
    msg = client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
    fake.fail_next(code=21211)
    fake.clear()
    assert fake.messages == [] and fake.sms_to(VOLUNTEER) == []
    assert fake.get(msg.sid).sid == msg.sid  # SID lookup survives clear()
    with pytest.raises(TwilioRestException):
        client.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")  # rule survives


def test_stop_closes_port() -> None:
    f = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    c = f.client()
    f.stop()
    f.stop()  # idempotent
    with pytest.raises(Exception):  # noqa: B017 - requests.ConnectionError
        c.messages.create(to=VOLUNTEER, from_=HOTLINE, body="x")
    with pytest.raises(RuntimeError):
        _ = f.base_url


def test_latency_holds_each_response_back_side_by_side() -> None:
    latency = 0.5
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, latency=latency) as f:
        c = f.client()
        done: dict[str, float] = {}

        def send(number: str) -> None:
            c.messages.create(to=number, from_=HOTLINE, body="slow")
            done[number] = time.monotonic()

        threads = [threading.Thread(target=send, args=(n,)) for n in (VOLUNTEER, OTHER)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        received = {m.to: m.received_monotonic for m in f.messages}
        # recorded on arrival; answered no sooner than `latency` later
        assert all(done[n] - received[n] >= latency for n in received)
        # the second arrived before the first was answered: slow answers overlap
        assert max(received.values()) < min(done.values())
        f.latency = 0.0  # settable on a running fake
        started = time.monotonic()
        c.messages.create(to=VOLUNTEER, from_=HOTLINE, body="fast again")
        assert time.monotonic() - started < latency
    with pytest.raises(ValueError, match="latency"):
        FakeTwilio(latency=-1)


def test_no_latency_by_default(fake: FakeTwilio) -> None:
    assert fake.latency == 0.0
