"""The emergency path through real webhooks, a real worker, real Redis and the fake Twilio."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import rota_text
from harness import TestWorker, wait_until

import oncall

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database

DEFENDER = "+447700900123"


def levels(hotline, language=None):
    """Phone numbers of who is on call now, level by level (the rota is the oracle)."""
    rota = hotline.rt.rota.current()
    return [
        [s.phone for s in level.staff]
        for level in oncall.who_is_on_call(rota, datetime.now(UTC), language)
    ]


def fallback(hotline):
    rota = hotline.rt.rota.current()
    return [rota.staff[s].phone for s in rota.fallback]


def first_page(hotline, to, timeout=10):
    return hotline.fake.wait_for_messages(1, to=to, timeout=timeout)[0]


def test_first_message_pages_level_one_at_once_with_the_incident_and_commands(hotline, worker):
    response = hotline.sms(DEFENDER, "Police are at my door, they took my laptop")
    assert response.status == 200
    level1 = levels(hotline)[0][0]
    page = first_page(hotline, level1)
    assert page.from_ == hotline.settings.number
    assert page.body.startswith("#1 SMS +44*****123:")
    assert "ACK 1" in page.body and "R1" in page.body and "PASS 1" in page.body
    assert '"Police are at my door, they took my laptop"' in page.body, "all their words"
    assert DEFENDER not in page.body
    assert page.segments == 1
    incident = hotline.incidents()[0]
    assert incident.status == "open" and incident.first_paged_at is not None
    # the auto-reply came back in the webhook's own TwiML, in the defender's language
    assert "<Message>Your message reached the hotline" in response.body


def test_escalation_runs_every_level_then_repeats_then_fallback(make_hotline, fake_twilio):
    hotline = make_hotline(rota=rota_text(wait1="1s", wait2="1s", repeat=1))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "arrested")
        l1, l2 = (lv[0] for lv in levels(hotline))
        expected = [l1, l2, l1, l2, fallback(hotline)[0]]
        pages = fake_twilio.wait_for(
            lambda: (
                [m for m in fake_twilio.messages if "ACK 1" in m.body]
                if len([m for m in fake_twilio.messages if "ACK 1" in m.body]) >= 5
                else None
            ),
            timeout=20,
        )
        assert [p.to for p in pages[:5]] == expected
        # never early, against the database's own due times: step k is due 1 s after step
        # k-1 ran, and neither it nor its page comes sooner
        runs = hotline.step_times(1)
        for step in range(1, 5):
            due = runs[step - 1] + timedelta(seconds=1)
            assert runs[step] >= due, (step, runs)
            assert pages[step].received_at >= due, (step, pages[step].received_at, due)
        assert pages[4].body.startswith("NOBODY ACKED #1")
    finally:
        worker.stop()


def test_ack_stops_escalation_and_stands_down_others(make_hotline, fake_twilio):
    """Every ACK syntax is tested in process (tests/inprocess/test_engine.py); this is the whole
    loop."""
    reply = "ACK 1"
    hotline = make_hotline(rota=rota_text(wait1="1s", wait2="30m"))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        l1, l2 = (lv[0] for lv in levels(hotline))
        first_page(hotline, l1)
        fake_twilio.wait_for_messages(1, to=l2, timeout=10)  # level 2 paged after 1 s
        response = hotline.sms(l2, reply)
        assert "You took #1" in response.body
        incident = hotline.incident(1)
        assert incident.status == "acknowledged"
        staff_id = hotline.rt.rota.current().staff_by_phone(l2).id
        assert incident.acknowledged_by == staff_id
        standdown = fake_twilio.wait_for_messages(2, to=l1, timeout=10)[1]
        assert "#1 taken by" in standdown.body
    finally:
        worker.stop()


@pytest.mark.both_databases  # the database's own locking
def test_no_page_leaves_after_the_ack(make_hotline, fake_twilio):
    hotline = make_hotline(rota=rota_text(wait1="1s", wait2="1s", repeat=3))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        l1 = levels(hotline)[0][0]
        first_page(hotline, l1)
        hotline.sms(l1, "ACK 1")
        acked_at = hotline.incident(1).acknowledged_at
        # wait out several step timers: nothing more may be paged
        wait_until(lambda: (datetime.now(UTC) - acked_at).total_seconds() > 3, timeout=5)
        pages = [m for m in fake_twilio.messages if "ACK 1" in m.body]
        assert all(p.received_at <= acked_at for p in pages)
        assert len(pages) == 1
    finally:
        worker.stop()


@pytest.mark.both_databases  # the database's own locking
def test_ack_race_has_one_winner_and_the_other_is_told(make_hotline, fake_twilio):
    hotline = make_hotline(rota=rota_text(wait1="1s", wait2="30m"))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDER, "help")
        l1, l2 = (lv[0] for lv in levels(hotline))
        fake_twilio.wait_for_messages(1, to=l2, timeout=10)
        replies = {}
        barrier = threading.Barrier(2)

        def ack(phone):
            barrier.wait()
            replies[phone] = hotline.sms(phone, "ACK 1").body

        threads = [threading.Thread(target=ack, args=(p,)) for p in (l1, l2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        winners = [p for p, body in replies.items() if "You took #1" in body]
        losers = [p for p, body in replies.items() if "already taken by" in body]
        assert len(winners) == 1 and len(losers) == 1
        assert (
            hotline.incident(1).acknowledged_by
            == hotline.rt.rota.current().staff_by_phone(winners[0]).id
        )
    finally:
        worker.stop()


def test_reply_relays_to_the_defender_by_sms_and_acknowledges(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "help")
    l1 = levels(hotline)[0][0]
    first_page(hotline, l1)
    response = hotline.sms(l1, "R1 We are calling your lawyer now")
    assert "#1: reply sent to +44*****123 by SMS. You took it." in response.body
    relay = fake_twilio.wait_for_messages(1, to=DEFENDER)[0]
    assert relay.body == "We are calling your lawyer now"
    assert relay.from_ == hotline.settings.number
    assert hotline.incident(1).status == "acknowledged"


def test_reply_to_whatsapp_goes_back_by_whatsapp(hotline, worker, fake_twilio):
    defender = "whatsapp:" + DEFENDER
    hotline.sms(defender, "they are following me")
    l1 = levels(hotline)[0][0]
    page = first_page(hotline, l1)
    assert page.body.startswith("#1 WhatsApp whatsapp:+44*****123:")
    hotline.sms(l1, "REPLY 1 stay where you are")
    relay = fake_twilio.wait_for_messages(1, to=defender)[0]
    assert relay.from_ == hotline.settings.whatsapp
    assert relay.body == "stay where you are"


def test_new_messages_join_the_open_incident_and_reach_whoever_took_it(
    hotline, worker, fake_twilio
):
    hotline.sms(DEFENDER, "help")
    l1 = levels(hotline)[0][0]
    first_page(hotline, l1)
    hotline.sms(DEFENDER, "they are inside now")  # before the ack: no second page storm
    assert len(hotline.incidents()) == 1
    hotline.sms(l1, "ACK 1")
    hotline.sms(DEFENDER, "they took my phone's SIM", media=("image/jpeg",))
    relay = fake_twilio.wait_for_messages(2, to=l1)[1]
    assert relay.body.startswith("#1 +44*****123: they took my phone's SIM")
    assert "image/jpeg" in relay.body and "https://" not in relay.body
    assert len(hotline.incidents()) == 1
    assert [m for m in fake_twilio.messages if "ACK 1 |" in m.body][0].to == l1


def test_auto_reply_only_on_the_first_message(hotline):
    assert "<Message>" in hotline.sms(DEFENDER, "help").body
    assert "<Message>" not in hotline.sms(DEFENDER, "again").body


def test_auto_reply_speaks_the_defenders_language(hotline):
    body = hotline.sms(DEFENDER, "Aidez moi, la police est là").body
    assert "Votre message est bien arrivé" in body
    assert hotline.incidents()[0].language == "fr"


def test_repeated_delivery_changes_nothing(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "help", sid="SM" + "a" * 32)
    repeat = hotline.sms(DEFENDER, "help", sid="SM" + "a" * 32)
    assert repeat.status == 200 and "<Message>" not in repeat.body
    first_page(hotline, levels(hotline)[0][0])
    assert len(hotline.messages(direction="in")) == 1
    assert len(hotline.incidents()) == 1
    assert len([m for m in fake_twilio.messages if "ACK 1" in m.body]) == 1


def test_ack_from_a_number_that_is_not_staff_is_a_defender_message(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "help")
    response = hotline.sms("+447700900999", "ACK 1")
    assert "You took" not in response.body
    assert hotline.incident(1).status == "open"
    assert len(hotline.incidents()) == 2  # the impostor opened an incident of their own


def test_pass_pages_the_next_level_now(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "help")
    l1, l2 = (lv[0] for lv in levels(hotline))
    first_page(hotline, l1)
    assert "#1 passed" in hotline.sms(l1, "PASS 1").body
    first_page(hotline, l2, timeout=5)  # the level's wait is 30 minutes


def test_resolve_closes_and_status_lists_open_incidents(hotline, worker, fake_twilio):
    hotline.sms(DEFENDER, "help")
    hotline.sms("+447700900456", "me too")
    l1 = levels(hotline)[0][0]
    fake_twilio.wait_for_messages(2, to=l1)
    status = hotline.sms(l1, "status").body
    assert "#1 SMS" in status and "#2 SMS" in status and "NOT TAKEN" in status
    assert "#1 resolved" in hotline.sms(l1, "RESOLVE 1").body
    assert hotline.incident(1).status == "resolved"
    assert "#1 is already resolved" in hotline.sms(l1, "ack 1").body
    assert "#1 SMS" not in hotline.sms(l1, "STATUS").body


def test_unknown_commands_get_help_a_few_times_an_hour_only(hotline):
    l1 = levels(hotline)[0][0]
    bodies = [hotline.sms(l1, "Thanks!").body for _ in range(5)]
    assert sum("Not understood" in b for b in bodies) == 3
    assert "HELP" not in bodies[-1]


def test_help_lists_the_commands_in_one_sms(hotline):
    body = hotline.sms(levels(hotline)[0][0], "help").body
    assert "ACK 17" in body and "RESOLVE 17" in body


def test_a_surge_is_bundled_instead_of_drowning_the_on_call_phone(hotline, worker, fake_twilio):
    from routing.bundling import PAGE_BURST

    l1 = levels(hotline)[0][0]
    senders = [f"+4477009{n:05d}" for n in range(PAGE_BURST + 4)]
    for sender in senders:
        hotline.sms(sender, "they are arresting everyone")
    wait_until(
        lambda: (
            len(hotline.incidents()) == len(senders)
            and all(i.first_paged_at for i in hotline.incidents())
        ),
        timeout=15,
        what="every incident paged",
    )
    digest = fake_twilio.wait_for(
        lambda: [m for m in fake_twilio.messages if m.to == l1 and "surge" in m.body], timeout=30
    )[0]
    individual = [
        m for m in fake_twilio.messages if m.to == l1 and "ACK" in m.body and "surge" not in m.body
    ]
    assert len(individual) == PAGE_BURST
    # steps run in any order: the digest names exactly the incidents not paged on their own
    alone = sorted(int(m.body.split()[0].lstrip("#")) for m in individual)
    bundled = sorted(set(range(1, len(senders) + 1)) - set(alone))
    assert digest.body.startswith(
        "Hotline surge: 4 more new incident(s) for you: " + " ".join(f"#{n}" for n in bundled) + "."
    )
    assert len(hotline.messages(direction="in")) == len(senders)  # every message stored
    # a bundled incident is still taken by number
    assert f"You took #{bundled[0]}" in hotline.sms(l1, f"ACK {bundled[0]}").body
