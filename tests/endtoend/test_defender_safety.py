"""Defender safety through real webhooks: BLOCK, UNBLOCK, SILENT, floods, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

import oncall
from routing.tables import AppendOnlyError, Block, Event, Incident

DEFENDER = "+447700900123"


def level1(hotline) -> list[str]:
    rota = hotline.rt.rota.current()
    return [s.phone for s in oncall.who_is_on_call(rota, datetime.now(UTC))[0].staff]


def staff_id(hotline, phone: str) -> str:
    return hotline.rt.rota.current().staff_by_phone(phone).id


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_block_stores_the_senders_messages_but_opens_and_pages_nothing(
    hotline, worker, fake_twilio
):
    hotline.sms(DEFENDER, "spam spam")
    l1 = level1(hotline)[0]
    fake_twilio.wait_for_messages(1, to=l1)
    body = hotline.sms(l1, "BLOCK 1").body
    assert "#1: sender blocked for 30 days" in body
    assert hotline.incident(1).status == "open"  # BLOCK resolves nothing
    blocks = _blocks(hotline)
    assert {b.created_by for b in blocks} == {staff_id(hotline, l1)}
    assert {b.incident_id for b in blocks} == {1}
    assert all(b.expires_at - datetime.now(UTC) > timedelta(days=29) for b in blocks)
    assert [e.actor for e in hotline.events(1) if e.kind == "blocked"] == [staff_id(hotline, l1)]

    hotline.sms(l1, "RESOLVE 1")
    sent_before = len(fake_twilio.messages)
    reply = hotline.sms(DEFENDER, "more spam")
    hotline.sms("whatsapp:" + DEFENDER, "and by WhatsApp")  # the same number, either channel
    assert "<Message>" not in reply.body
    assert len(hotline.incidents()) == 1
    stored = hotline.messages(direction="in", purpose="defender")
    assert [m.status for m in stored[-2:]] == ["blocked", "blocked"]
    assert hotline.unseal(stored[-2], "body") == "more spam"  # kept, never lost
    # no page was written for them (the log is what the outbox sends from), and nothing
    # written is still on its way
    assert [p.incident_id for p in hotline.pages()] == [1] * len(hotline.pages())
    hotline.outbox_settled()
    later = fake_twilio.messages[sent_before:]
    assert not [m for m in later if "ACK" in m.body or m.to.endswith(DEFENDER)]


def test_an_expired_block_is_ignored(hotline):
    hotline.sms(DEFENDER, "spam")
    l1 = level1(hotline)[0]
    hotline.sms(l1, "BLOCK 1")
    hotline.sms(l1, "RESOLVE 1")
    with hotline.session() as s:
        s.exec(update(Block).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
    hotline.sms(DEFENDER, "now a real emergency")
    assert [i.status for i in hotline.incidents()] == ["resolved", "open"]


def test_unblock_lets_the_sender_through_again(hotline):
    hotline.sms(DEFENDER, "hello")
    l1 = level1(hotline)[0]
    hotline.sms(l1, "BLOCK 1")
    hotline.sms(l1, "RESOLVE 1")
    assert "sender unblocked" in hotline.sms(l1, "UNBLOCK 1").body
    assert _blocks(hotline) == []
    assert "was not blocked" in hotline.sms(l1, "unblock 1").body
    hotline.sms(DEFENDER, "help")
    assert len(hotline.incidents()) == 2


def test_block_from_a_number_that_is_not_staff_is_a_defender_message(hotline):
    hotline.sms(DEFENDER, "help")
    response = hotline.sms("+447700900999", "BLOCK 1")
    assert "blocked" not in response.body
    assert _blocks(hotline) == []


def test_block_and_silent_of_an_unknown_incident_say_so(hotline):
    l1 = level1(hotline)[0]
    assert "No incident #9" in hotline.sms(l1, "BLOCK 9").body
    assert "No incident #9" in hotline.sms(l1, "SILENT 9").body


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_silent_stops_automatic_texts_even_on_the_senders_next_incident(
    hotline, worker, fake_twilio
):
    hotline.sms(DEFENDER, "help")
    l1 = level1(hotline)[0]
    assert "#1 is silent" in hotline.sms(l1, "SILENT 1").body
    assert hotline.incident(1).silent
    assert [e.actor for e in hotline.events(1) if e.kind == "silenced"] == [staff_id(hotline, l1)]
    # staff replies are explicit: they still go out
    hotline.sms(l1, "R1 we are on it")
    assert fake_twilio.wait_for_messages(1, to=DEFENDER)[0].body == "we are on it"
    hotline.sms(l1, "RESOLVE 1")

    for sender in (DEFENDER, "whatsapp:" + DEFENDER):
        response = hotline.sms(sender, "help again")
        assert response.status == 200 and "<Message>" not in response.body
    later = hotline.incidents()[1:]  # SMS and WhatsApp thread apart: one incident each
    assert later and all(incident.silent for incident in later)
    assert [m.incident_id for m in hotline.messages(purpose="auto_reply")] == [1]  # pre-SILENT
    assert len(fake_twilio.sms_to(DEFENDER)) == 1  # only the explicit reply, ever


def test_silence_is_not_carried_to_other_senders(hotline):
    hotline.sms(DEFENDER, "help")
    hotline.sms(level1(hotline)[0], "SILENT 1")
    assert "<Message>" in hotline.sms("+447700900456", "help").body


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_a_flood_from_one_sender_is_one_incident_and_one_round_of_pages(
    hotline, worker, fake_twilio
):
    for i in range(50):
        assert hotline.sms(DEFENDER, f"flood {i}").status == 200
    assert len(hotline.incidents()) == 1
    stored = hotline.messages(direction="in", purpose="defender")
    assert len(stored) == 50 and {m.incident_id for m in stored} == {1}
    on_call = level1(hotline)
    fake_twilio.wait_for_messages(1, to=on_call[0])
    # the next level is 30 minutes away: no page but level 1's was written, and all of the
    # outbox has left
    assert {p.step for p in hotline.pages(1)} == {0}
    hotline.outbox_settled()
    pages = [m for m in fake_twilio.messages if "ACK 1" in m.body]
    assert sorted(p.to for p in pages) == sorted(on_call)
    assert len(hotline.messages(purpose="auto_reply")) == 1


def test_an_ack_names_the_person_in_the_audit_trail(hotline):
    hotline.sms(DEFENDER, "help")
    l1 = level1(hotline)[0]
    hotline.sms(l1, "ACK 1")
    hotline.sms(l1, "RESOLVE 1")
    trail = [(e.kind, e.actor) for e in hotline.events(1)]
    who = staff_id(hotline, l1)
    assert ("acknowledged", who) in trail and ("resolved", who) in trail
    assert trail[0] == ("opened", "defender")


@pytest.mark.parametrize("change", ["update", "delete"])
def test_audit_events_cannot_be_changed_or_deleted(hotline, change):
    hotline.sms(DEFENDER, "help")
    with hotline.session() as s:
        event = s.exec(select(Event).where(Event.incident_id == 1)).first()
        if change == "update":
            event.actor = "someone-else"
            s.add(event)
        else:
            s.delete(event)
        with pytest.raises(AppendOnlyError):
            s.commit()
    assert hotline.events(1)[0].actor == "defender"


def test_blocked_and_silenced_state_survives_in_the_database_only_as_hashes(hotline):
    hotline.sms(DEFENDER, "help")
    l1 = level1(hotline)[0]
    hotline.sms(l1, "BLOCK 1")
    for block in _blocks(hotline):
        assert DEFENDER.lstrip("+") not in block.address_hash
        assert len(block.address_hash) == 64
    with hotline.session() as s:
        incident = s.get(Incident, 1)
    assert incident.defender_hash in [b.address_hash for b in _blocks(hotline)]


def _blocks(hotline) -> list[Block]:
    with hotline.session() as s:
        return list(s.exec(select(Block).order_by(Block.id)).all())
