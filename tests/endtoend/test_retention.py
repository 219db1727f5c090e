"""Retention: `hotline purge` and the worker's daily run erase exactly what is due, here and
at Twilio, and keep what reports need."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from harness import TestWorker, wait_until
from sqlalchemy import update
from sqlmodel import select

import oncall
from routing import intake
from routing.intake import TextMessage
from routing.tables import Incident, Message, TwilioDeletion


def level1(hotline) -> str:
    rota = hotline.rt.rota.current()
    return oncall.who_is_on_call(rota, datetime.now(UTC))[0].staff[0].phone


def resolved_days_ago(hotline, number: int, days: float) -> None:
    when = datetime.now(UTC) - timedelta(days=days)
    with hotline.session() as s:
        s.exec(update(Incident).where(Incident.id == number).values(resolved_at=when))
        s.commit()


def three_incidents(hotline, fake_twilio) -> str:
    """#1 resolved (to be aged 91 days), #2 resolved (89 days), #3 open; every page sent."""
    l1 = level1(hotline)
    for n, sender in enumerate(("+447700900101", "+447700900102", "+447700900103"), start=1):
        hotline.sms(sender, f"defender {n} needs help")
        fake_twilio.wait_for_messages(n, to=l1)
    hotline.sms(l1, "R1 lawyer on the way")
    fake_twilio.wait_for_messages(1, to="+447700900101")
    hotline.sms(l1, "RESOLVE 1")
    hotline.sms(l1, "RESOLVE 2")
    wait_until(
        lambda: all(
            m.sid
            for m in hotline.messages(direction="out", incident_id=1)
            if m.purpose != "auto_reply"
        ),
        what="all sends recorded",
    )
    resolved_days_ago(hotline, 1, 91)
    resolved_days_ago(hotline, 2, 89)
    return l1


def worker_purged_once(hotline) -> None:
    """Wait for the worker's own start-up purge: run after the test ages its incidents (a
    loaded machine delays it), it would erase them before the command under test."""
    wait_until(
        lambda: any(e.kind == "purge_ran" for e in hotline.events()),
        what="the worker's start-up purge",
    )


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_purge_erases_old_resolved_incidents_only_and_deletes_them_at_twilio(
    hotline, worker, fake_twilio
):
    worker_purged_once(hotline)
    three_incidents(hotline, fake_twilio)
    timeline_before = [(e.kind, e.actor) for e in hotline.events(1)]
    sids = {m.sid for m in hotline.messages(incident_id=1) if m.sid}
    result = hotline.cli("purge")
    assert result.returncode == 0, result.stderr
    assert "1 incident(s)" in result.stdout

    erased, kept, still_open = hotline.incidents()
    assert erased.defender_enc is None and erased.defender_hash == "purged:1"
    assert erased.purged_at is not None
    assert erased.opened_at and erased.first_paged_at and erased.acknowledged_by  # for reports
    for message in hotline.messages(incident_id=1):
        assert message.address_enc is None and message.body_enc is None
        assert message.address_hash.startswith("purged:")
    for incident in (kept, still_open):
        assert incident.purged_at is None
        assert hotline.unseal(incident, "defender").startswith("+4477009001")
        assert all(m.body_enc for m in hotline.messages(incident_id=incident.id))

    assert len(sids) >= 3  # the defender's message, the page, the staff reply
    assert {d.sid for d in fake_twilio.deletions if d.kind == "messages"} == sids
    assert not any(m.sid for m in hotline.messages(incident_id=1)), "forgotten once deleted"

    # the audit trail is kept whole; the erasure is in it
    timeline = [(e.kind, e.actor) for e in hotline.events(1)]
    assert timeline[: len(timeline_before)] == timeline_before
    assert timeline[-1] == ("erased", "operator")

    listed = json.loads(hotline.cli("incidents", "--status", "all", "--json").stdout)
    assert [row["number"] for row in listed] == [1, 2, 3]
    assert listed[0]["defender"] == "erased" and listed[0]["status"] == "resolved"
    assert listed[0]["seconds_to_first_page"] is not None
    assert listed[1]["defender"] != "erased"
    shown = hotline.cli("incident", "1")
    assert shown.returncode == 0 and "from erased" in shown.stdout

    again = hotline.cli("purge")  # idempotent: nothing more to erase or delete
    assert again.returncode == 0 and "0 incident(s), 0 message(s)" in again.stdout
    assert len(fake_twilio.deletions) == len(sids)


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_purge_older_than_overrides_the_retention(hotline, worker, fake_twilio):
    worker_purged_once(hotline)
    three_incidents(hotline, fake_twilio)
    assert hotline.cli("purge", "--older-than", "30").returncode == 0
    assert [i.purged_at is not None for i in hotline.incidents()] == [True, True, False]


def test_old_staff_commands_and_blocked_messages_are_erased_too(hotline):
    hotline.sms("+447700900101", "spam")
    l1 = level1(hotline)
    hotline.sms(l1, "BLOCK 1")
    hotline.sms("+447700900101", "more spam")
    long_ago = datetime.now(UTC) - timedelta(days=100)
    with hotline.session() as s:
        s.exec(update(Message).where(Message.incident_id.is_(None)).values(created_at=long_ago))
        s.commit()
    assert hotline.cli("purge").returncode == 0
    strays = hotline.messages(incident_id=None)
    assert {m.purpose for m in strays} >= {"command", "confirm", "defender"}
    assert all(m.body_enc is None and m.address_enc is None for m in strays)
    assert hotline.incident(1).defender_enc is not None  # open: kept


def test_a_defender_message_not_yet_threaded_is_never_erased(hotline):
    # stored as the fallback URL does, and answered by a webhook whose process then died:
    # the sweeper has yet to thread both, however old
    intake.store_only(hotline.rt, TextMessage("SM" + "1" * 32, "+447700900101", "help"))
    assert intake.answer_then_thread(
        hotline.rt, TextMessage("SM" + "2" * 32, "+447700900102", "help")
    ).to_thread
    long_ago = datetime.now(UTC) - timedelta(days=100)
    with hotline.session() as s:
        s.exec(update(Message).values(created_at=long_ago))
        s.commit()
    assert hotline.cli("purge").returncode == 0
    kept = hotline.messages(direction="in")
    assert [m.status for m in kept] == ["received", "answered"]
    assert all(m.body_enc is not None and m.address_enc is not None for m in kept)


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_a_failed_twilio_deletion_is_retried_next_run_and_404_counts_as_done(
    hotline, worker, fake_twilio
):
    worker_purged_once(hotline)
    three_incidents(hotline, fake_twilio)
    fake_twilio.fail_next(count=1, kind="deletions", code=20500, status=500)
    fake_twilio.fail_next(count=1, kind="deletions", code=20404, status=404)
    first = hotline.cli("purge")
    assert first.returncode == 1 and "1 pending" in first.stdout
    with hotline.session() as s:
        pending = s.exec(select(TwilioDeletion).where(TwilioDeletion.done_at.is_(None))).all()
    assert len(pending) == 1 and pending[0].error_code == 20500
    second = hotline.cli("purge")
    assert second.returncode == 0 and "1 deleted at Twilio, 0 pending" in second.stdout
    assert pending[0].sid in {d.sid for d in fake_twilio.deletions}


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_the_worker_purges_once_a_day_by_itself(hotline, fake_twilio):
    hotline.sms("+447700900101", "help")
    hotline.sms(level1(hotline), "RESOLVE 1")
    resolved_days_ago(hotline, 1, 91)
    sids = {m.sid for m in hotline.messages(incident_id=1) if m.sid}
    worker = TestWorker(hotline).start()
    try:
        runs = wait_until(
            lambda: [e for e in hotline.events() if e.kind == "purge_ran"],
            timeout=15,
            what="daily purge",
        )
    finally:
        worker.stop()
    assert [r.actor for r in runs] == ["system"]  # once: the next run is due tomorrow
    assert hotline.incident(1).purged_at is not None
    assert sids and {d.sid for d in fake_twilio.deletions} == sids
