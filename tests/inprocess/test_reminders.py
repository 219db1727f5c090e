"""Shift reminders: one SMS before each shift, one when a rota change moves the next shift,
none to staff who texted STOP or wrote `remind: false`.

Most run in-process with a moved clock (tests/engine_world.py); one runs through a real worker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from engine_world import START, World
from harness import TestWorker
from sqlmodel import Session, select

from routing import reminders
from routing.tables import ShiftReminder

# At START (Tue 3 Nov 2026 10:00 UTC, 10:00 in Dublin) ben is on call; amina takes over in a
# minute; then they alternate daily.
ROTA = """\
timezone: Europe/Dublin
staff:
  amina: {name: Amina K., phone: "+353 86 123 4567", languages: [en]}
  ben:   {name: Ben O.,   phone: "+353 86 765 4321", languages: [en]}
  dana:  {name: Dana M.,  phone: "+353 86 222 3344", languages: [en]}
  eli:   {name: Eli R.,   phone: "+353 86 333 4455", languages: [en], remind: false}
rotations:
  primary: {members: [amina, ben], shift: 1d, handoff: "2026-11-03 10:01"}
  quiet:   {members: [eli], shift: 1d, handoff: "2026-11-03 10:01"}
escalation:
  - {notify: primary, wait: 5m}
fallback: [dana]
"""
SWAP = """\
overrides:
  - {rotation: primary, staff: dana, from: "2026-11-04 10:01", to: "2026-11-05 10:01", note: swap}
"""
CONFIG = "reminders: {before: 30s}\n"
SHIFT = START + timedelta(minutes=1)


@pytest.fixture
def world(make_world):
    return make_world(ROTA, config=CONFIG)


def rows(world: World) -> list[ShiftReminder]:
    with Session(world.rt.engine) as s:
        return list(s.exec(select(ShiftReminder).order_by(ShiftReminder.id)).all())


def test_a_reminder_arrives_once_on_time_before_the_shift(world):
    world.settle()
    assert world.sms_to("amina") == [], "reminded before the reminder was due"
    world.now = SHIFT - timedelta(seconds=30, milliseconds=1)
    world.settle()
    assert world.sms_to("amina") == [], "reminded early"
    world.now = SHIFT - timedelta(seconds=30)
    world.settle()
    [sms] = world.sms_to("amina")
    assert sms == (
        "Hotline: you are on call for primary Tue 03 Nov 10:01 to Wed 04 Nov 10:01 "
        "(Europe/Dublin), taking over from Ben O."
    )
    [message] = world.messages(purpose="reminder", staff_id="amina")
    assert message.created_at == SHIFT - timedelta(seconds=30) < SHIFT
    # the sweeper again, the job again, a re-plan: still one
    [row] = [r for r in rows(world) if r.staff_id == "amina" and r.shift_start == SHIFT]
    assert reminders.send(world.rt, row.id) is False
    reminders.plan(world.rt)
    for _ in range(3):
        world.advance(seconds=10)
        world.settle()
    assert len(world.sms_to("amina")) == 1
    assert world.sms_to("ben") == [], "ben's shift is running: nothing to remind him of yet"


def test_each_shift_is_reminded_of_in_its_turn(world):
    world.now = SHIFT + timedelta(days=1) - timedelta(seconds=30)
    world.settle()
    [sms] = world.sms_to("ben")
    assert "primary Wed 04 Nov 10:01 to Thu 05 Nov 10:01" in sms and "Amina K." in sms


def test_an_override_that_moves_shifts_tells_each_person_once(world):
    world.settle()
    world.write_rota(ROTA + SWAP)
    world.advance(seconds=1)
    world.settle()
    [dana] = world.sms_to("dana")
    assert dana == (
        "Hotline rota change: your next shift is primary, Wed 04 Nov 10:01 to "
        "Thu 05 Nov 10:01 (Europe/Dublin), taking over from Amina K."
    )
    [ben] = world.sms_to("ben")  # his Wednesday went to dana: his next is Friday
    assert ben.startswith("Hotline rota change: your next shift is primary, Fri 06 Nov 10:01")
    assert world.sms_to("amina") == [], "amina's next shift did not move"
    # planned again and again, with time passing: nobody is told twice
    for _ in range(3):
        reminders.plan(world.rt)
        world.advance(seconds=5)
        world.settle()
    assert len(world.sms_to("dana")) == 1 and len(world.sms_to("ben")) == 1
    # ben's Wednesday reminder is never sent; dana's is, on time
    world.now = SHIFT + timedelta(days=1) - timedelta(seconds=30)
    world.settle()
    assert len(world.sms_to("ben")) == 1
    assert world.sms_to("dana")[-1].startswith("Hotline: you are on call for primary Wed 04 Nov")


def test_a_shift_taken_away_with_none_to_replace_it_is_told(world):
    world.settle()
    cover = ROTA.replace(
        "fallback: [dana]\n",
        "fallback: [dana]\noverrides:\n"
        '  - {rotation: quiet, staff: dana, from: "2026-11-03 10:01", '
        'to: "2026-11-12 10:01"}\n',
    )
    world.write_rota(cover)
    world.advance(seconds=1)
    world.settle()
    [told] = world.sms_to("dana")
    assert told.startswith("Hotline rota change: your next shift is quiet, Tue 03 Nov 10:01")
    assert world.sms_to("eli") == [], "eli wrote remind: false"
    assert {r.status for r in rows(world) if r.staff_id == "eli"} <= {
        "skipped",
        "cancelled",
        "planned",
    }


def test_staff_who_texted_stop_get_no_reminder(world):
    world.settle()
    world.text(world.staff_phone("amina"), "STOP")
    world.now = SHIFT - timedelta(seconds=30)
    world.settle()
    assert world.sms_to("amina") == []
    [row] = [r for r in rows(world) if r.staff_id == "amina" and r.shift_start == SHIFT]
    assert row.status == "skipped"


def test_remind_false_gets_none(tmp_path, database_url, fake_twilio):
    rota = ROTA.replace("languages: [en]}\n  ben", "languages: [en], remind: false}\n  ben")
    quiet = World(tmp_path, database_url, fake_twilio, rota, config=CONFIG)
    try:
        quiet.now = SHIFT - timedelta(seconds=30)
        quiet.settle()
        assert quiet.sms_to("amina") == []
        [row] = [r for r in rows(quiet) if r.staff_id == "amina" and r.shift_start == SHIFT]
        assert row.status == "skipped"
    finally:
        quiet.close()


def test_reminders_off_plans_nothing(tmp_path, database_url, fake_twilio):
    off = World(tmp_path, database_url, fake_twilio, ROTA, config="reminders: {before: off}\n")
    try:
        off.now = SHIFT
        off.settle()
        assert rows(off) == [] and off.sms_to("amina") == []
    finally:
        off.close()


@pytest.mark.slow  # starts a worker process
@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_a_real_worker_sends_the_reminder_at_its_due_time(make_hotline, fake_twilio):
    shift = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=60)
    rota = ROTA.replace('"2026-11-03 10:01"', f'"{shift.isoformat()}"')
    hotline = make_hotline(rota=rota, config="reminders: {before: 55s}\n")
    worker = TestWorker(hotline).start()
    try:
        amina = hotline.staff_phone("amina")
        [sms] = fake_twilio.wait_for_messages(1, to=amina, timeout=30)
        assert shift - timedelta(seconds=55) <= sms.received_at < shift
        assert sms.body.startswith("Hotline: you are on call for primary")
        # the job and the sweeper both had their chance: the reminder's job has run, and
        # the sweeper has looked since
        hotline.jobs_due_ran()
        hotline.swept_after(sms.received_at)
        assert len(fake_twilio.sms_to(amina)) == 1
    finally:
        worker.stop()
