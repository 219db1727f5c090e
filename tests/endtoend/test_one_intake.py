"""One intake through the real webhooks: a person is their phone number on every channel."""

from __future__ import annotations

import dataclasses
import json

import pytest
import redis
from harness import TestWorker, wait_until
from twilio.request_validator import RequestValidator
from voice_helpers import DEFENDER, incoming_call, new_sid, verbs

from routing.jobqueue import DUE_LIST, SEND_LIST, THREADING_LIST
from routing.sweeper import SEND_GRACE
from routing.texts import auto_reply
from webhooks.busy import (
    DEFAULT_INLINE_LIMIT,
    INLINE_LIMIT,
    SURGE_ARRIVALS,
    SURGE_WINDOW_S,
    InFlight,
)

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database


def test_sms_whatsapp_and_a_call_from_one_number_are_one_incident(hotline, worker, fake_twilio):
    assert hotline.sms(DEFENDER, "they are outside").status == 200
    amina = hotline.staff_phone("amina")
    wait_until(lambda: fake_twilio.sms_to(amina), what="the page")
    assert hotline.sms("whatsapp:" + DEFENDER, "still here").status == 200
    incoming_call(hotline, new_sid())
    [incident] = hotline.incidents()
    inbound = hotline.messages(direction="in")
    assert [m.incident_id for m in inbound] == [incident.id, incident.id]
    assert len(fake_twilio.sms_to(amina)) == 1, "paged once, not once per channel"


def test_a_busy_web_process_stores_the_message_and_a_worker_threads_it(hotline, fake_twilio):
    hotline.app.config[INLINE_LIMIT] = 0  # as if every message came in a surge
    answer = hotline.sms(DEFENDER, "they are outside")
    assert answer.status == 200 and "<Message" not in answer.body
    [stored] = hotline.messages(direction="in")
    assert (stored.status, hotline.incidents()) == ("received", [])
    queue = redis.Redis.from_url(hotline.settings.redis_url)
    assert queue.lrange(THREADING_LIST, 0, -1) == [f"message:{stored.id}".encode()]
    worker = TestWorker(hotline).start()
    try:
        amina = hotline.staff_phone("amina")
        wait_until(lambda: fake_twilio.sms_to(amina), what="the page")
        wait_until(lambda: fake_twilio.sms_to(DEFENDER), what="the auto-reply")
        assert fake_twilio.sms_to(DEFENDER) == [auto_reply("en")]
        [incident] = hotline.incidents()
        assert hotline.messages(direction="in")[0].incident_id == incident.id
        assert queue.llen(THREADING_LIST) == 0
    finally:
        worker.stop()


def test_the_webhook_answers_a_defender_before_it_threads_the_message(hotline):
    # Flask's test client leaves the response open: what a server does once the answer is
    # written to Twilio, closing it, is in the test's hands
    params = {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": hotline.fake.account_sid,
        "From": DEFENDER,
        "To": hotline.settings.number,
        "Body": "help",
        "NumMedia": "0",
    }
    url = hotline.base_url + "/twilio/sms"
    signature = RequestValidator(hotline.fake.auth_token).compute_signature(url, params)
    response = hotline.app.test_client().post(
        url, data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200
    assert auto_reply("en") in response.get_data(as_text=True)
    [stored] = hotline.messages(direction="in")
    assert (stored.status, hotline.incidents()) == ("answered", [])
    # until its threading is done the request counts as in flight: another message meanwhile
    # finds the process busy, and is stored for a worker
    params = {**params, "MessageSid": "SM" + "2" * 32, "From": "+447700900999"}
    signature = RequestValidator(hotline.fake.auth_token).compute_signature(url, params)
    meanwhile = hotline.app.test_client().post(
        url, data=params, headers={"X-Twilio-Signature": signature}
    )
    assert "<Message" not in meanwhile.get_data(as_text=True)
    meanwhile.close()
    response.close()
    [incident] = hotline.incidents()
    first, second = hotline.messages(direction="in")
    assert (first.incident_id, second.status) == (incident.id, "received")
    [logged] = hotline.messages(direction="out", purpose="auto_reply")
    assert logged.status == "sent"


def test_a_message_every_few_ms_counts_as_a_surge_though_each_is_alone_in_flight():
    now = [0.0]
    load = InFlight(clock=lambda: now[0])

    def one_after_another(count: int, apart_s: float) -> list[bool]:
        seen = []
        for _ in range(count):  # each alone in flight
            seen.append(load.enter())
            load.leave()
            now[0] += apart_s
        assert [s.in_flight for s in seen] == [1] * count
        return [s.busy(DEFAULT_INLINE_LIMIT) for s in seen]

    # 100 a second to one process: a surge once SURGE_ARRIVALS came within the window
    assert one_after_another(6, 0.010) == [False] * SURGE_ARRIVALS + [True] * 2
    now[0] += SURGE_WINDOW_S
    assert one_after_another(20, 0.020) == [False] * 20  # 50 a second: threaded inline
    now[0] += SURGE_WINDOW_S  # a pause: the next one is alone again
    assert not load.enter().busy(DEFAULT_INLINE_LIMIT)
    meanwhile = load.enter()  # a second one while the first is in flight
    assert meanwhile.in_flight == 2 and meanwhile.busy(DEFAULT_INLINE_LIMIT)
    load.leave()
    load.leave()
    assert load.enter().in_flight == 1


def test_a_first_step_due_now_is_asked_on_a_redis_list_and_a_worker_pages_it(hotline, fake_twilio):
    answer = hotline.sms(DEFENDER, "they are outside")
    assert "<Message" in answer.body  # alone in its process: threaded in the webhook
    [incident] = hotline.incidents()
    queue = redis.Redis.from_url(hotline.settings.redis_url)
    assert queue.lrange(DUE_LIST, 0, -1) == [f"{incident.id}:0".encode()]
    assert len(hotline.rt.queue) == 0, "no RQ job for a step that is due now"
    worker = TestWorker(hotline).start()
    try:
        amina = hotline.staff_phone("amina")
        wait_until(lambda: fake_twilio.sms_to(amina), what="the page")
        wait_until(lambda: queue.llen(DUE_LIST) == 0, what="the worker's waker to take it")
        assert len(fake_twilio.sms_to(amina)) == 1
    finally:
        worker.stop()


def test_a_send_a_web_process_asks_for_is_a_redis_list_item_a_worker_sends(hotline, fake_twilio):
    hotline.sms(DEFENDER, "they are outside")
    [incident] = hotline.incidents()
    amina = hotline.staff_phone("amina")
    hotline.sms(amina, f"REPLY {incident.id} we are on our way")
    [relay] = hotline.messages(direction="out", purpose="reply")
    queue = redis.Redis.from_url(hotline.settings.redis_url)
    assert queue.lrange(SEND_LIST, 0, -1) == [f"message:{relay.id}:1".encode()]
    assert len(hotline.rt.queue) == 0, "no RQ job for a send that is due now"
    worker = TestWorker(hotline).start()
    try:
        wait_until(lambda: "we are on our way" in fake_twilio.sms_to(DEFENDER), what="the relay")
        wait_until(lambda: queue.llen(SEND_LIST) == 0, what="the worker's waker to take it")
        assert fake_twilio.sms_to(DEFENDER).count("we are on our way") == 1
        # with the worker waiting, a relay leaves at once: not after the sweeper's grace
        hotline.sms(amina, f"REPLY {incident.id} stay inside")
        second = hotline.messages(direction="out", purpose="reply")[-1]
        sent = fake_twilio.wait_for(
            lambda: next((m for m in fake_twilio.messages if m.body == "stay inside"), None)
        )
        assert sent.received_at - second.created_at < SEND_GRACE
    finally:
        worker.stop()


def test_block_stops_sms_whatsapp_and_calls_alike(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "junk")
    amina = hotline.staff_phone("amina")
    wait_until(lambda: fake_twilio.sms_to(amina), what="the page")
    hotline.sms(amina, "BLOCK 1")
    hotline.sms(amina, "RESOLVE 1")
    hotline.sms(DEFENDER, "junk again")
    hotline.sms("whatsapp:" + DEFENDER, "junk by whatsapp")
    root = incoming_call(hotline, new_sid())
    assert verbs(root) == ["Hangup"]
    assert len(hotline.incidents()) == 1
    statuses = [m.status for m in hotline.messages(direction="in", purpose="defender")]
    assert statuses[-2:] == ["blocked", "blocked"]


def test_signatures_are_checked_against_the_public_url_and_its_prefix(hotline):
    public = "https://hotline.example.org/line"
    hotline.rt.settings = dataclasses.replace(hotline.rt.settings, public_url=public)
    params = {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": hotline.fake.account_sid,
        "From": DEFENDER,
        "To": hotline.settings.number,
        "Body": "help",
        "NumMedia": "0",
    }
    validator = RequestValidator(hotline.fake.auth_token)
    as_requested = validator.compute_signature(hotline.base_url + "/twilio/sms", params)
    assert hotline.post("/twilio/sms", params, signature=as_requested).status == 403
    without_prefix = validator.compute_signature("https://hotline.example.org/twilio/sms", params)
    assert hotline.post("/twilio/sms", params, signature=without_prefix).status == 403
    assert hotline.incidents() == []
    public_signature = validator.compute_signature(public + "/twilio/sms", params)
    assert hotline.post("/twilio/sms", params, signature=public_signature).status == 200
    assert len(hotline.incidents()) == 1
    # Twilio signs some requests over the URL with its default port: that form is Twilio's too
    params["MessageSid"] = "SM" + "2" * 32
    with_port = validator.compute_signature(
        "https://hotline.example.org:443/line/twilio/sms", params
    )
    assert hotline.post("/twilio/sms", params, signature=with_port).status == 200
    params["MessageSid"] = "SM" + "3" * 32
    other_port = validator.compute_signature(
        "https://hotline.example.org:8443/line/twilio/sms", params
    )
    assert hotline.post("/twilio/sms", params, signature=other_port).status == 403
    assert len(hotline.messages(direction="in")) == 2


def test_a_cut_body_says_so_and_media_urls_are_kept_encrypted(hotline):
    long_body = "w" * 5200
    media = ("image/jpeg", "image/png")
    assert hotline.sms(DEFENDER, long_body, media=media).status == 200
    [message] = hotline.messages(direction="in")
    body = hotline.unseal(message, "body")
    assert body.startswith("w" * 5000) and body.endswith("[... 200 more characters cut]")
    urls = json.loads(hotline.unseal(message, "media"))
    assert len(urls) == 2 and all(u.startswith("https://api.twilio.com/media/ME") for u in urls)
    assert "api.twilio.com" not in message.media_enc, "media URLs are stored encrypted"


def test_the_incident_view_lists_what_a_defender_attached(hotline):
    import os
    import subprocess
    import sys

    from harness import ROOT

    hotline.sms(DEFENDER, "photos of the injuries", media=("image/jpeg",))
    [message] = hotline.messages(direction="in")
    [url] = json.loads(hotline.unseal(message, "media"))
    shown = subprocess.run(
        [sys.executable, "-m", "hotline", "incident", "1"],
        cwd=ROOT,
        env={**os.environ, **hotline.env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"attachment: {url}" in shown
    listed = subprocess.run(
        [sys.executable, "-m", "hotline", "incident", "1", "--json"],
        cwd=ROOT,
        env={**os.environ, **hotline.env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(listed)["messages"][0]["media_urls"] == [url]
