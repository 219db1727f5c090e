"""Check-ins in-process: CHECKIN's parsing and deadline arithmetic with an injected clock, and
the engine (set, kept, moved, missed, OFF, duress, retention, the log) with a moved clock.

Nothing here sleeps; tests/endtoend/test_checkins_live.py checks the same through the webhooks with
real workers, and that a deadline is met on time by the scheduler and the sweeper.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from engine_world import World
from sqlmodel import Session, select

from hotline.incidents import list_incidents, show_incident
from hotline.settings import SettingsError, load_settings
from routing.checkins import Refused, deadline, has_duress_word, miss
from routing.parse_commands import (
    CheckinSpec,
    Command,
    NoSuchIncident,
    NotUnderstood,
    parse_staff_reply,
)
from routing.retention import purge
from routing.tables import Acknowledgement, Checkin
from routing.texts import HELP, auto_reply, fits

DEFENDER = "+447700900123"
DUBLIN = ZoneInfo("Europe/Dublin")
DURESS = 'checkins:\n  duress_words: [sunflower, "blue kite"]\n'


@pytest.fixture
def world(make_world):
    return make_world(config=DURESS)


def checkins(world: World) -> list[Checkin]:
    with Session(world.rt.engine) as s:
        return list(s.exec(select(Checkin).order_by(Checkin.id)).all())


def kinds(world: World, incident: int) -> list[str]:
    return [e.kind for e in world.events(incident)]


def to_defender(world: World) -> list[str]:
    return [m.body for m in world.fake.messages if DEFENDER in m.to]


# --- parsing (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("CHECKIN 17 18:00", CheckinSpec(clock=(18, 0, 0))),
        ("checkin17 18.30", CheckinSpec(clock=(18, 30, 0))),
        ("Check-in #17: 6pm", CheckinSpec(clock=(18, 0, 0))),
        ("check in 17 by 9:05", CheckinSpec(clock=(9, 5, 0))),
        ("CHECKIN 17 2h", CheckinSpec(after=timedelta(hours=2))),
        ("CHECKIN 17 in 45 min", CheckinSpec(after=timedelta(minutes=45))),
        ("CHECKIN 17 30s", CheckinSpec(after=timedelta(seconds=30))),
        ("CHECKIN 17 1 hour 30 minutes", CheckinSpec(after=timedelta(minutes=90))),
        ("CHECKIN 17 every 6h", CheckinSpec(every=timedelta(hours=6))),
        ("CHECKIN 17 EVERY 6 H, notify", CheckinSpec(every=timedelta(hours=6), notify=True)),
        ("CHECKIN 17 2h notify", CheckinSpec(after=timedelta(hours=2), notify=True)),
        ("CHECKIN 17 today 9:00", CheckinSpec(clock=(9, 0, 0), day_offset=0)),
        ("CHECKIN 17 tomorrow 09:00", CheckinSpec(clock=(9, 0, 0), day_offset=1)),
        ("CHECKIN 17 2026-12-24 18:00", CheckinSpec(clock=(18, 0, 0), on=date(2026, 12, 24))),
        ("CHECKIN 17 OFF", CheckinSpec(off=True)),
        ("checkin 17 off.", CheckinSpec(off=True)),
    ],
)
def test_checkin_reads_every_form_staff_write(text, spec):
    assert parse_staff_reply(text) == Command(
        "checkin", 17, parse_staff_reply(text).text, checkin=spec
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("CHECKIN 17", "needs a time"),
        ("CHECKIN", "needs an incident number"),
        ("CHECKIN 18:00", "incident number first"),
        ("CHECKIN 17 soon", "is no time"),
        ("CHECKIN 17 18", "is no time"),  # an hour or a duration? neither is guessed
        ("CHECKIN 17 25:00", "is no time"),
        ("CHECKIN 17 13pm", "is no time"),
        ("CHECKIN 17 every", "every needs a duration"),
        ("CHECKIN 17 2026-02-30 18:00", "is no date"),
        ("CHECKIN 17 9999999999999999h", "too long"),
        ("CHECKIN 17 OFF notify", "takes no notify"),
    ],
)
def test_checkin_refuses_what_it_cannot_read_and_says_what_works(text, says):
    parsed = parse_staff_reply(text)
    assert isinstance(parsed, NotUnderstood) and says in parsed.reason, parsed


def test_checkin_numbers_are_bounded_like_every_command():
    assert isinstance(parse_staff_reply("CHECKIN 99999999999 2h"), NoSuchIncident)


def test_help_names_checkin_and_still_fits_one_sms():
    assert "CHECKIN 17 2h" in HELP and fits(HELP)


# --- the deadline (pure, injected clock) --------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_time_of_day_is_the_next_one_in_the_rotas_zone():
    spec = CheckinSpec(clock=(18, 0, 0))
    # 17:00 IST on a summer day: today's 18:00 IST is 17:00 UTC
    assert deadline(spec, at("2026-07-01T16:00+00:00"), DUBLIN) == at("2026-07-01T17:00+00:00")
    # 18:00 itself, or later: tomorrow's
    assert deadline(spec, at("2026-07-01T17:00+00:00"), DUBLIN) == at("2026-07-02T17:00+00:00")


def test_18_00_on_the_evening_the_clocks_go_back_is_18_00_gmt():
    spec = CheckinSpec(clock=(18, 0, 0))
    # Saturday 24 Oct 2026, 20:00 IST (19:00 UTC); the clocks go back at 02:00 IST on Sunday
    saturday_evening = at("2026-10-24T19:00+00:00")
    due = deadline(spec, saturday_evening, DUBLIN)
    assert due == at("2026-10-25T18:00+00:00")  # 18:00 GMT: 23 h later, not 22 h
    assert due.astimezone(DUBLIN).strftime("%H:%M %Z") == "18:00 GMT"
    # just after midnight, still in summer time: the same evening
    assert deadline(spec, at("2026-10-24T23:30+00:00"), DUBLIN) == at("2026-10-25T18:00+00:00")
    # and a duration is plain elapsed time across the change
    assert deadline(CheckinSpec(after=timedelta(hours=24)), saturday_evening, DUBLIN) == at(
        "2026-10-25T19:00+00:00"
    )


def test_a_time_the_clocks_skip_is_an_hour_later_by_the_new_clock():
    # 29 Mar 2026: 01:00 GMT becomes 02:00 IST; 01:30 does not happen that night
    due = deadline(CheckinSpec(clock=(1, 30, 0)), at("2026-03-28T22:00+00:00"), DUBLIN)
    assert due == at("2026-03-29T01:30+00:00")
    assert due.astimezone(DUBLIN).strftime("%H:%M %Z") == "02:30 IST"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (CheckinSpec(clock=(9, 0, 0), day_offset=0), "09:00 GMT today has passed"),
        (CheckinSpec(clock=(18, 0, 0), on=date(2026, 11, 2)), "has passed"),
        (CheckinSpec(after=timedelta(0)), "at least 5s away"),
        (CheckinSpec(after=timedelta(seconds=4)), "at least 5s away"),
        (CheckinSpec(after=timedelta(days=8)), "at most 7 days"),
        (CheckinSpec(clock=(18, 0, 0), on=date(2026, 12, 24)), "at most 7 days"),
    ],
)
def test_a_deadline_in_the_past_too_soon_or_too_far_is_refused(spec, reason):
    with pytest.raises(Refused, match=reason):
        deadline(spec, at("2026-11-03T10:00+00:00"), DUBLIN)
    assert deadline(
        CheckinSpec(clock=(18, 0, 0), day_offset=0), at("2026-11-03T10:00+00:00"), DUBLIN
    ) == at("2026-11-03T18:00+00:00")


@pytest.mark.parametrize(
    ("body", "duress"),
    [
        ("all good, the sunflower is fine", True),
        ("SUNFLOWER!", True),
        ("Sünflöwer", True),  # accents ignored
        ("ｓｕｎｆｌｏｗｅｒ", True),  # full-width letters fold too (NFKD)
        ("we saw a Blue   Kite today", True),  # a phrase, any spacing
        ("sunflowers everywhere", False),  # whole words only
        ("blue kites", False),
        ("all fine", False),
    ],
)
def test_duress_words_match_whole_words_ignoring_case_and_accents(body, duress):
    assert has_duress_word(body, ("sunflower", "blue kite")) is duress


def test_duress_words_are_validated_with_one_line(tmp_path):
    def load(extra: str):
        (tmp_path / "config.yaml").write_text(
            'hotline:\n  number: "+35312100489"\nrota_file: rota.yaml\n' + extra
        )
        return load_settings(
            {
                "HOTLINE_CONFIG": str(tmp_path / "config.yaml"),
                "HOTLINE_INSTANCE_DIR": str(tmp_path / "i"),
            }
        )

    assert load(DURESS).duress_words == ("sunflower", "blue kite")
    assert load("").duress_words == ()
    for extra, says in [
        ("checkins:\n  duress_word: [x]\n", "did you mean 'checkins.duress_words'"),
        ("checkins:\n  duress_words: sunflower\n", "expected a list of words"),
        ('checkins:\n  duress_words: ["a"]\n', "is not a word"),
        ('checkins:\n  duress_words: ["sun;flower"]\n', "is not a word"),
        ("checkins:\n  duress_words: [Tournesol, tournesöl]\n", "repeats 'Tournesol'"),
    ]:
        with pytest.raises(SettingsError, match=says) as info:
            load(extra)
        assert "\n" not in str(info.value)


# --- the engine, with a moved clock -------------------------------------------------------


def test_checkin_is_confirmed_in_the_rotas_zone_and_listed_by_status(world):
    world.text(DEFENDER, "they are watching the house")
    amina = world.staff_phone("amina")
    answer = world.text(amina, "CHECKIN 1 18:00")
    # 10:00 UTC on 3 Nov is 10:00 GMT in Dublin
    assert answer.startswith("#1: check-in by 18:00 GMT today.")
    assert "CHECKIN 1 OFF cancels" in answer and len(answer) <= 160
    [checkin] = checkins(world)
    assert checkin.due_at == datetime(2026, 11, 3, 18, 0, tzinfo=UTC) and checkin.set_by == "amina"
    assert "check-in 18:00 GMT today" in world.text(amina, "STATUS")
    world.text(amina, "RESOLVE 1")
    assert world.text(amina, "STATUS") == "#1 resolved, check-in 18:00 GMT today"


def test_the_taker_hears_when_someone_else_sets_or_cancels_a_checkin(world):
    world.text(DEFENDER, "help")
    world.text(world.staff_phone("amina"), "ACK 1")
    ben = world.staff_phone("ben")
    world.text(ben, "CHECKIN 1 18:00")
    world.text(ben, "CHECKIN 1 OFF")
    assert world.sms_to("amina")[-2:] == [
        "#1: Ben O. set a check-in by 18:00 GMT today.",
        "#1: Ben O. switched its check-in off.",
    ]
    world.text(world.staff_phone("amina"), "CHECKIN 1 2h")
    assert len(world.sms_to("amina")) == 3, "the taker told of their own command"


def test_checkin_says_why_it_cannot_be_set(world):
    amina = world.staff_phone("amina")
    assert world.text(amina, "CHECKIN 5 2h") == "No incident #5. STATUS lists open ones."
    world.call("anonymous")
    assert "number was withheld" in world.text(amina, "CHECKIN 1 2h")
    world.text(DEFENDER, "help")
    assert "has passed" in world.text(amina, "CHECKIN 2 today 9:00")
    assert "at least 5s away" in world.text(amina, "CHECKIN 2 2s")
    world.text(amina, "RESOLVE 2")
    world.advance(days=91)
    purge(world.rt, 90)
    assert "personal data was erased" in world.text(amina, "CHECKIN 2 2h")
    assert checkins(world) == []


def test_a_message_before_the_deadline_keeps_a_one_off_checkin(world):
    world.text(DEFENDER, "help")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    world.text(amina, "CHECKIN 1 2h")
    world.advance(minutes=119)
    world.text(DEFENDER, "I am home")
    world.advance(hours=3)
    world.settle()
    [checkin] = checkins(world)
    assert checkin.status == "kept"
    assert world.incident(1).status == "acknowledged"
    assert not [t for t in world.sms_to("amina") if "MISSED" in t]
    assert "checkin_kept" in kinds(world, 1)
    assert not [t for t in world.sms_to("amina") if "checked in" in t], "a note nobody asked for"


@pytest.mark.parametrize("contact", ["sms", "whatsapp", "call"])
def test_each_contact_moves_a_standing_checkin_and_notes_it_when_asked(world, contact):
    world.text(DEFENDER, "crossing the border tomorrow")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    answer = world.text(amina, "CHECKIN 1 every 6h notify")
    assert answer.startswith("#1: standing check-in every 6h, next by 16:00 GMT today;")
    world.advance(hours=5)
    if contact == "call":
        world.call(DEFENDER)
    else:
        world.text(("whatsapp:" if contact == "whatsapp" else "") + DEFENDER, "ok")
    [checkin] = checkins(world)
    assert checkin.status == "active" and checkin.due_at == world.now + timedelta(hours=6)
    label = {"sms": "SMS", "whatsapp": "WhatsApp", "call": "Call"}[contact]
    assert world.sms_to("amina")[-1] == (
        f"#1: the defender checked in ({label}, 15:00 GMT today). Next by 21:00 GMT today."
    )
    world.advance(hours=5, minutes=59)  # past the first deadline, before the moved one
    world.settle()
    assert not [t for t in world.sms_to("amina") if "MISSED" in t]
    world.advance(minutes=1)
    world.settle()
    assert world.sms_to("amina")[-1].startswith("MISSED CHECK-IN #1")


def test_a_missed_checkin_reopens_a_resolved_incident_and_pages_level_one_never_early(world):
    world.text(DEFENDER, "released, going home")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    answer = world.text(amina, "CHECKIN 1 2h")
    world.text(amina, "RESOLVE 1")
    assert "reopens" not in answer  # it was open when set
    sent_to_defender = to_defender(world)
    due = checkins(world)[0].due_at
    world.now = due - timedelta(milliseconds=1)
    # the job scheduled for the deadline may start early (RQ keeps whole seconds): it claims
    # nothing; nor does the sweeper
    assert miss(world.rt, checkins(world)[0].id) is False
    world.settle()
    assert not [t for t in world.sms_to("amina") if "MISSED" in t], "paged before the deadline"
    assert world.incident(1).status == "resolved"
    world.now = due
    world.settle()
    assert world.sms_to("amina")[-1] == (
        "MISSED CHECK-IN #1 SMS +44*****123: last contact 10:00 GMT today. ACK 1 | PASS 1"
    )
    incident = world.incident(1)
    assert (incident.status, incident.resolved_at, incident.resolved_by) == ("open", None, None)
    assert incident.next_step == 1 and incident.next_step_at == due + timedelta(minutes=5)
    assert kinds(world, 1)[-3:] == ["checkin_missed", "reopened", "paged"]
    assert checkins(world)[0].status == "missed"
    # the chain runs on as for a new incident: level 2 after level 1's wait, same alarm
    world.advance(minutes=5)
    world.settle()
    assert world.sms_to("chen")[-1].startswith("MISSED CHECK-IN #1")
    assert to_defender(world) == sent_to_defender, "the defender was sent something"


def test_a_missed_checkin_on_a_taken_incident_can_be_taken_again(world):
    world.text(DEFENDER, "help")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    world.text(amina, "CHECKIN 1 30s")
    world.advance(seconds=30)
    world.settle()
    incident = world.incident(1)
    assert (incident.status, incident.acknowledged_by) == ("open", None)
    with Session(world.rt.engine) as s:
        assert s.get(Acknowledgement, 1) is None
    assert world.text(world.staff_phone("chen"), "ACK 1").startswith("You took #1.")
    assert world.incident(1).acknowledged_by == "chen"
    world.advance(minutes=30)
    world.settle()
    assert not [t for t in world.sms_to("chen") if "MISSED" in t], "paged after the ack"


def test_a_contact_after_the_deadline_does_not_undo_the_miss(world):
    world.text(DEFENDER, "help")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    world.text(amina, "CHECKIN 1 30s")
    world.advance(seconds=31)
    world.text(DEFENDER, "sorry, late", settle=False)  # before the worker ran the deadline
    world.settle()
    assert checkins(world)[0].status == "missed"
    missed = world.sms_to("amina")[-1]
    assert missed.startswith("MISSED CHECK-IN #1 SMS +44*****123: last contact 10:00:31")


def test_checkin_off_cancels_and_a_new_one_replaces_the_old(world):
    world.text(DEFENDER, "help")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    world.text(amina, "CHECKIN 1 1h")
    assert "Replaces the one due 11:00 GMT today" in world.text(amina, "CHECKIN 1 2h")
    assert world.text(amina, "CHECKIN 1 OFF") == "#1: check-in off (it was due 12:00 GMT today)."
    assert world.text(amina, "CHECKIN 1 OFF") == "#1 has no check-in. CHECKIN 1 2h sets one."
    world.advance(hours=3)
    world.settle()
    assert [c.status for c in checkins(world)] == ["replaced", "off"]
    assert world.incident(1).status == "acknowledged"


def test_duress_on_an_open_incident_pages_level_one_at_once_and_looks_like_any_message(world):
    world.text(DEFENDER, "arrested at the airport")
    amina = world.staff_phone("amina")
    world.text(amina, "CHECKIN 1 every 1h")
    world.advance(minutes=2)
    normal = world.text(DEFENDER, "still here")
    before = to_defender(world)
    duress = world.text(DEFENDER, "All fine, the Sunflower is blooming")
    assert duress == normal  # what a message joining an incident gets, nothing more
    assert to_defender(world) == before
    assert world.sms_to("amina")[-1].startswith('DURESS #1 SMS +44*****123: "All fine')
    assert checkins(world)[0].status == "active", "a duress message is no safe check-in"
    assert "duress" in kinds(world, 1)


def test_duress_on_a_taken_incident_reaches_the_taker_and_level_one(world):
    world.text(DEFENDER, "help")
    chen = world.staff_phone("chen")  # level 2: not paged by level 1
    world.text(chen, "ACK 1")
    world.text(chen, "CHECKIN 1 every 6h")
    assert world.text(DEFENDER, "blue kite") is None  # as any message to a taken incident
    assert world.sms_to("amina")[-1].startswith("DURESS #1 SMS")
    told = world.sms_to("chen")
    assert told[-2].startswith("#1 +44*****123: blue kite")  # the usual relay
    assert told[-1].startswith("DURESS #1 SMS")
    incident = world.incident(1)
    assert incident.status == "open" and incident.acknowledged_by is None


def test_duress_after_resolve_opens_the_usual_new_incident_paged_as_duress(world):
    world.text(DEFENDER, "help")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    world.text(amina, "CHECKIN 1 every 6h")
    world.text(amina, "RESOLVE 1")
    reply = world.text(DEFENDER, "sunflower")
    assert reply == auto_reply("en")  # what any first message of a new incident gets
    [page] = [t for t in world.sms_to("amina") if "#2" in t]
    assert page.startswith('DURESS #2 SMS +44*****123: "sunflower"')
    assert [c.incident_id for c in checkins(world)] == [2], "the check-in follows the defender"
    assert "checkin_moved" in kinds(world, 1) and "checkin_moved" in kinds(world, 2)


def test_duress_words_mean_nothing_without_a_checkin(world):
    world.text(DEFENDER, "sunflower")
    assert world.sms_to("amina")[0].startswith("#1 SMS")
    assert "duress" not in kinds(world, 1)


def test_purge_ends_the_checkins_of_erased_incidents_only(world):
    other = "+447700900456"
    world.text(DEFENDER, "help")
    world.text(other, "help too")
    amina = world.staff_phone("amina")
    world.text(amina, "CHECKIN 1 every 1w")
    world.text(amina, "RESOLVE 1")
    world.advance(hours=1)
    world.text(amina, "CHECKIN 2 3d")  # open: never erased
    purge(world.rt, 0)  # everything resolved until now
    assert [(c.incident_id, c.status) for c in checkins(world)] == [(2, "active")]
    assert kinds(world, 1)[-1] == "checkin_off"
    world.advance(days=8)
    world.settle()
    missed = [t.body for t in world.fake.messages if "MISSED" in t.body]
    assert missed and all(t.startswith("MISSED CHECK-IN #2") for t in missed)


def test_the_log_shows_checkins(world, capsys):
    world.text(DEFENDER, "help")
    world.text(world.staff_phone("amina"), "CHECKIN 1 18:00")
    list_incidents(world.settings, status="all", as_json=True)
    [row] = json.loads(capsys.readouterr().out)
    assert row["checkin_due"] == "2026-11-03T18:00:00+00:00"
    show_incident(world.settings, 1, as_json=False)
    shown = capsys.readouterr().out
    assert "check-in due 2026-11-03T18:00:00+00:00" in shown
    assert "checkin_set      amina      one-off by 2026-11-03T18:00:00+00:00" in shown
    world.text(world.staff_phone("amina"), "CHECKIN 1 OFF")
    list_incidents(world.settings, status="all", as_json=True)
    assert json.loads(capsys.readouterr().out)[0]["checkin_due"] is None
    show_incident(world.settings, 1, as_json=True)
    [checkin] = json.loads(capsys.readouterr().out)["checkins"]
    assert (checkin["status"], checkin["set_by"]) == ("off", "amina")


def test_a_web_incident_is_kept_safe_by_a_message_on_its_receipt_page(world):
    from routing import webform

    sent = webform.submit(world.rt, "they follow me after the trial", None)
    world.settle()
    amina = world.staff_phone("amina")
    world.text(amina, f"ACK {sent.incident_id}")
    answer = world.text(amina, f"CHECKIN {sent.incident_id} every 2h")
    assert answer.startswith(f"#{sent.incident_id}: standing check-in every 2h"), answer
    world.advance(minutes=110)
    webform.write_more(world.rt, webform.find(world.rt, sent.receipt), "still fine")
    world.advance(minutes=100)  # past the first deadline, within 2 h of the message
    world.settle()
    assert not [t for t in world.sms_to("amina") if "MISSED" in t]
    world.advance(minutes=21)  # 2 h after the message: missed
    world.settle()
    missed = f"MISSED CHECK-IN #{sent.incident_id}"
    assert [t for t in world.sms_to("amina") if t.startswith(missed)]


def test_alarms_in_a_surge_reach_level_one_by_themselves_ahead_of_any_digest(world):
    amina = world.staff_phone("amina")
    world.text(DEFENDER, "detained soon")  # #1
    world.text(amina, "CHECKIN 1 every 6h")
    world.text("+447700900456", "they follow me")  # #2
    for n in range(4):  # #3 to #6: #5 is amina's fifth page, #6 starts her digest
        world.text(f"+4477009007{n}", f"raid {n}")
    world.text(amina, "CHECKIN 2 5s")
    sent = len(world.sms_to("amina"))
    for n in range(4, 8):  # #7 to #10 join it; it is held for its delay
        world.text(f"+4477009007{n}", f"raid {n}")
    world.text(DEFENDER, "all fine, the sunflower is blooming")  # duress on #1
    world.advance(seconds=6)  # #2's check-in is missed; the digest is still held
    world.settle()
    world.advance(seconds=10)  # the digest's delay is over
    world.settle()
    after = world.sms_to("amina")[sent:]
    alarms = [sms for sms in after if sms.startswith(("DURESS", "MISSED CHECK-IN"))]
    assert [alarm.split(" ")[:3] for alarm in alarms] == [
        ["DURESS", "#1", "SMS"],
        ["MISSED", "CHECK-IN", "#2"],
    ], alarms
    # each by itself, and ahead of the digest, which holds the surge and nothing else
    [digest] = [sms for sms in after if sms.startswith("Hotline surge")]
    assert after.index(alarms[-1]) < after.index(digest)
    assert digest.startswith("Hotline surge: 5 more new incident(s) for you: #6 #7 #8 #9 #10.")


def test_a_malformed_checkin_gets_its_reason_after_the_help_limit_is_spent(world):
    world.text(DEFENDER, "help")
    amina = world.staff_phone("amina")
    for _ in range(3):  # no command at all: the hourly limit on error replies is spent
        assert world.text(amina, "thanks!").startswith("Not understood")
    assert not world.text(amina, "thanks!")  # silence now, so two bots cannot loop
    reply = world.text(amina, "CHECKIN 1 25:00")
    assert reply and "is no time" in reply, "a recognised command always gets its reason"


def test_a_defender_writing_hundreds_of_times_makes_one_note_not_hundreds(world):
    world.text(DEFENDER, "crossing the border tomorrow")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 1")
    world.text(amina, "CHECKIN 1 every 6h notify")
    for n in range(30):  # within a minute
        world.text(DEFENDER, f"ok {n}")
        world.advance(seconds=2)
    notes = [t for t in world.sms_to("amina") if "checked in" in t]
    assert len(notes) == 1, "one note, not one per message"
    assert kinds(world, 1).count("checkin_kept") == 30, "every contact is logged all the same"
    world.advance(minutes=10)
    world.text(DEFENDER, "still ok")
    assert len([t for t in world.sms_to("amina") if "checked in" in t]) == 2
