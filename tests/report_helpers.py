"""A week of the line for `hotline report` to show, made through the real engine.

`seed_week(world)` drives tests/engine_world.py's engine (its clock moved back to a few days
before the real now, since `hotline report` counts back from the real clock) through six
incidents in the window on all four channels, taken at known levels after known times, a
missed check-in, a duress alarm, the duplicate `checkin_missed` event of a miss raised on a
newer incident, and one incident from long before the window. `Seeded` holds the figures a
reader works out by hand from that story, and everything of the defenders the report must
never show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from engine_world import World
from sqlalchemy import update
from sqlmodel import Session

import oncall
from routing import voice, webform
from routing.intake import VoiceCall
from routing.masking import mask_number, mask_numbers_in
from routing.tables import Checkin

DUBLIN = ZoneInfo("Europe/Dublin")
DURESS = "checkins:\n  duress_words: [sunflower]\n"
OLD = "+447700900111"  # 37 days before: outside --since 30d
SMS = "+447700900123"
WHATSAPP = "+447700900456"
CALLER = "+447700900789"
TRAVELLER = "+447700900654"  # two incidents, and the miss raised on the newer one
WEB_CONTACT = "Signal +44 7700 900321 after dark"
# every word of five letters or more in these is one the report must never contain
BODIES = {
    "old": "Wolverine zeppelin confiscated",
    "sms": "Kestrel marmalade raided",
    "whatsapp": "Zanzibar lighthouse detention",
    "whatsapp_duress": "sunflower blooming",
    "web": "Ochre pelican tribunal",
    "traveller": "Quokka checkpoint harbour",
    "traveller_again": "Xylophone caravan intercepted",
}


@dataclass
class Seeded:
    """What the report must say about `seed_week`'s story, and what it must not."""

    day0: date  # three days before today, in Dublin: #2 opens then
    days: dict[date, dict[str, int]] = field(default_factory=dict)
    hours: dict[tuple[int, int], int] = field(default_factory=dict)  # (weekday, hour): count
    forbidden: set[str] = field(default_factory=set)


def on_call(world: World, level: int) -> str:
    """The phone of the first person of `level` (1-based) at the world's time."""
    return oncall.who_is_on_call(world.rt.rota.current(), world.now)[level - 1].staff[0].phone


def number_forms(e164: str) -> set[str]:
    """Every way a defender's number might be written, masked as the log shows it too."""
    parsed = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return {
        e164,
        e164.lstrip("+"),
        national,
        national.replace(" ", ""),
        international,
        str(parsed.national_number),
        mask_number(e164),
        mask_number("whatsapp:" + e164),
        "whatsapp:" + e164,
    }


def seed_week(world: World) -> Seeded:
    """Drive the story (see the module docstring); returns what the report must show."""
    day0 = datetime.now(DUBLIN).date() - timedelta(days=3)
    seeded = Seeded(day0)

    def opening(channel: str, day: int, hour: int, minute: int = 0) -> None:
        """The clock to `day` after day0, `hour`:`minute` in Dublin, where an incident on
        `channel` opens: counted by day and by weekday and hour."""
        world.now = at_utc(day0, day, hour, minute)
        local = world.now.astimezone(DUBLIN)
        counted = seeded.days.setdefault(local.date(), {})
        counted[channel] = counted.get(channel, 0) + 1
        key = (local.weekday(), local.hour)
        seeded.hours[key] = seeded.hours.get(key, 0) + 1

    # long before the window: an SMS taken after 45 s (none of it may count)
    world.now = datetime.now(UTC) - timedelta(days=37)
    world.text(OLD, BODIES["old"], settle=False)
    world.advance(seconds=9)
    world.settle()
    world.advance(seconds=36)
    world.text(on_call(world, 1), "ACK 1")
    world.text(on_call(world, 1), "RESOLVE 1")

    # #2 SMS, day 0 10:00: paged after 2 s, taken at level 1 after 60 s; then a check-in in
    # 30 s that is missed: reopened, paged, taken again (the first ack is what counts)
    opening("sms", 0, 10)
    world.text(SMS, BODIES["sms"], settle=False)
    world.advance(seconds=2)
    world.settle()
    world.advance(seconds=58)
    world.text(on_call(world, 1), "ACK 2")
    world.text(on_call(world, 1), "CHECKIN 2 30s")
    world.advance(seconds=31)
    world.settle()  # missed: MISSED CHECK-IN #2 pages level 1
    world.advance(seconds=30)
    world.text(on_call(world, 1), "ACK 2")
    world.text(on_call(world, 1), "RESOLVE 2")

    # #3 WhatsApp, day 1 11:00: paged after 1 s, level 2 after 5 min, taken there 60 s later;
    # a standing check-in, and the defender's duress word
    opening("whatsapp", 1, 11)
    world.text("whatsapp:" + WHATSAPP, BODIES["whatsapp"], settle=False)
    world.advance(seconds=1)
    world.settle()
    world.advance(minutes=5)
    world.settle()
    world.advance(seconds=60)
    world.text(on_call(world, 2), "ACK 3")
    world.text(on_call(world, 2), "CHECKIN 3 every 1h")
    world.advance(minutes=10)
    world.text("whatsapp:" + WHATSAPP, BODIES["whatsapp_duress"])  # DURESS #3
    world.text(on_call(world, 1), "ACK 3")
    world.text(on_call(world, 1), "CHECKIN 3 OFF")
    world.text(on_call(world, 1), "RESOLVE 3")

    # #4 a call, day 1 12:00: rung through, level 1 presses 1 after 20 s: never paged
    opening("voice", 1, 12)
    plan = voice.answer_call(world.rt, VoiceCall(world.sid("CA"), CALLER))
    world.advance(seconds=20)
    assert (
        voice.screen(world.rt, plan.incident_id, on_call(world, 1), "1", world.sid("CA"))
        == "accept"
    )
    world.advance(minutes=10)
    world.text(on_call(world, 1), "RESOLVE 4")

    # #5 the web form, day 2 13:00: paged after 3 s, nobody takes it, resolved after 12 min
    opening("web", 2, 13)
    sent = webform.submit(world.rt, BODIES["web"], WEB_CONTACT)
    assert sent.incident_id == 5
    world.advance(seconds=3)
    world.settle()
    for _ in range(4):
        world.advance(minutes=3)
        world.settle()
    world.text(on_call(world, 1), "RESOLVE 5")

    # #6 SMS, day 2 14:00: paged after 4 s, taken at level 1 after 40 s, a check-in by the
    # hour, resolved; #7 the same person at 14:30, paged after 5 s, never taken. Their message
    # moved the check-in to #7 and kept it; put back on #6, active (the rare leftover that
    # routing.checkins.miss provides for), its miss is raised on #7 and written on both
    # incidents: one miss, two `checkin_missed` events
    opening("sms", 2, 14)
    world.text(TRAVELLER, BODIES["traveller"], settle=False)
    world.advance(seconds=4)
    world.settle()
    world.advance(seconds=36)
    world.text(on_call(world, 1), "ACK 6")
    world.text(on_call(world, 1), "CHECKIN 6 1h")
    world.text(on_call(world, 1), "RESOLVE 6")
    opening("sms", 2, 14, 30)
    world.text(TRAVELLER, BODIES["traveller_again"], settle=False)
    world.advance(seconds=5)
    world.settle()
    with Session(world.rt.engine) as session:
        session.exec(
            update(Checkin)
            .where(Checkin.incident_id == 7)
            .values(incident_id=6, status="active", ended_at=None)
        )
        session.commit()
    world.now = at_utc(day0, 2, 15, 1)
    world.settle()
    world.text(on_call(world, 1), "RESOLVE 7")

    seeded.forbidden = _forbidden(world)
    return seeded


def at_utc(day0: date, day: int, hour: int, minute: int) -> datetime:
    local = datetime(day0.year, day0.month, day0.day, hour, minute, tzinfo=DUBLIN)
    return (local + timedelta(days=day)).astimezone(UTC)


def _forbidden(world: World) -> set[str]:
    """Every form of every defender's number and contact line, every word they wrote, and
    the staff's numbers (staff are named in the report, never with their phones)."""
    words = set()
    for number in (OLD, SMS, WHATSAPP, CALLER, TRAVELLER, "+447700900321"):
        words |= number_forms(number)
    for person in world.rt.rota.current().staff.values():
        words |= number_forms(person.phone)
    words |= {WEB_CONTACT, mask_numbers_in(WEB_CONTACT), "7700900", "*****"}
    for body in BODIES.values():
        words |= {word.lower() for word in body.split() if len(word) >= 5}
    return words


def cli_env(world: World) -> dict[str, str]:
    """The environment `hotline` needs to read the world's settings and database."""
    settings = world.settings
    return {
        "HOTLINE_CONFIG": str(settings.config_path),
        "HOTLINE_INSTANCE_DIR": str(settings.instance_dir),
        "DATABASE_URL": settings.database_url,
        "HOTLINE_SECRET_KEY": settings.secret_keys[0],
    }
