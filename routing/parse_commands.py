"""Staff SMS commands: parsing only (pure, no I/O).

Tolerant of case, spaces and punctuation: `ACK 17`, `ack17`, `A 17`, `ack #17.`, `R17 on my way`.
Carrier opt-out words are never commands: they belong to the carrier and Twilio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from oncall import parse_duration

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "CANCEL", "END", "QUIT", "UNSUBSCRIBE", "OPTOUT", "REVOKE"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN"})
OPTED_OUT_EVENT = "defender_opted_out"  # the event of a defender who texted an opt-out word


def is_opt_out(body: str) -> bool:
    """True for a carrier opt-out word alone ("Stop!", "end"): the carrier blocks our SMS
    to the sender from then on."""
    return re.sub(r"[\W_]+", "", body or "").upper() in OPT_OUT_WORDS


# verb -> canonical command; order matters only for readability
VERBS = {
    "ACK": "ack",
    "A": "ack",
    "ACKNOWLEDGE": "ack",
    "REPLY": "reply",
    "R": "reply",
    "CALL": "call",
    "C": "call",
    "PASS": "pass",
    "P": "pass",
    "DECLINE": "pass",
    "RESOLVE": "resolve",
    "RESOLVED": "resolve",
    "DONE": "resolve",
    "CLOSE": "resolve",
    "STATUS": "status",
    "S": "status",
    "LIST": "status",
    "HELP": "help",
    "H": "help",
    "?": "help",
    "INFO": "help",
    "BLOCK": "block",
    "SILENT": "silent",
    "UNBLOCK": "unblock",
    "CHECKIN": "checkin",
}
# Incident numbers are 32-bit in every database we run on: a larger one names no incident.
MAX_INCIDENT = 2**31 - 1
NEEDS_NUMBER = {"reply", "call", "pass", "resolve", "block", "unblock", "silent", "checkin"}
TAKES_TEXT = {"reply"}
TAKES_RANGE = {"block", "unblock"}  # BLOCK 40-120: a flood, cleared at once
MAX_RANGE = 1000
_RANGE = re.compile(r"\s*(?:-|–|\.\.|TO)\s*(\d{1,10})\s*", re.IGNORECASE)

_PATTERN = re.compile(
    r"""^[\s\W_]*            # leading punctuation or spaces
        (?P<verb>[A-Za-z]+|\?)
        [\s.:,;#\-]*          # separators, e.g. "ACK #17", "R-17:"
        (?P<number>\d+)?
        (?P<rest>.*)$""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Command:
    """A recognised staff command. `incident` is None where the reply named none."""

    name: str
    incident: int | None = None
    text: str = ""
    last: int | None = None  # BLOCK 40-120: the range's last incident
    checkin: CheckinSpec | None = None  # CHECKIN's when (see parse_checkin)


@dataclass(frozen=True)
class OptOut:
    word: str


@dataclass(frozen=True)
class OptIn:
    word: str


@dataclass(frozen=True)
class NotUnderstood:
    reason: str

    @property
    def recognised(self) -> bool:
        """The command word was one of ours, used wrongly (`CHECKIN 17 25:00`): its reason is
        always answered, since a malformed command must never meet silence. Only text that is
        no command at all counts toward the hourly limit on error replies."""
        return self.reason != "empty" and not self.reason.startswith("unknown command")


@dataclass(frozen=True)
class NoSuchIncident:
    """A command naming a number past MAX_INCIDENT: answered as an unknown incident."""

    number: str  # as typed, shortened for the reply

    @property
    def reply(self) -> str:
        return f"No incident #{self.number}. STATUS lists open ones."


@dataclass(frozen=True)
class CheckinSpec:
    """What `CHECKIN n ...` asked for; routing.checkins.deadline turns it into an instant.

    Exactly one of: `off`; `after` (a duration from now: "2h"); `every` (a standing check-in:
    "every 6h"); `clock` (hour, minute, second) alone ("18:00": the next such time in the
    rota's zone) or with `day_offset` ("today 18:00": 0, "tomorrow 9:00": 1) or `on` (an
    explicit date): those two may name a time already past.
    """

    off: bool = False
    after: timedelta | None = None
    every: timedelta | None = None
    clock: tuple[int, int, int] | None = None
    day_offset: int | None = None
    on: date | None = None
    notify: bool = False


Parsed = Command | OptOut | OptIn | NotUnderstood | NoSuchIncident


def parse_staff_reply(body: str) -> Parsed:
    """Classify a staff member's SMS. Never raises."""
    stripped = _CHECK_IN.sub(r"\1CHECKIN", (body or "").strip(), count=1)
    bare = re.sub(r"[\W_]+", "", stripped).upper()
    if bare in OPT_OUT_WORDS:
        return OptOut(bare)
    if bare in OPT_IN_WORDS:
        return OptIn(bare)
    match = _PATTERN.match(stripped)
    if not match:
        return NotUnderstood("empty")
    verb = match["verb"].upper()
    name = VERBS.get(verb)
    if name is None:
        # "ack17" arrives as verb "ack" + number; "ACKNOWLEDGED" and friends by prefix
        return NotUnderstood(f"unknown command {verb[:12]!r}")
    digits = match["number"]
    if digits and (len(digits) > 10 or int(digits) > MAX_INCIDENT):
        # never int() a thousand digits, never send an overflowing number to the database
        return NoSuchIncident(digits if len(digits) <= 12 else digits[:12] + "...")
    number = int(digits) if digits else None
    rest = match["rest"].strip()
    if name == "checkin":
        if number is None:
            return NotUnderstood("CHECKIN needs an incident number, e.g. CHECKIN 17 2h")
        spec = parse_checkin(rest)
        if isinstance(spec, NotUnderstood):
            return spec
        return Command(name, number, rest, checkin=spec)
    if name in TAKES_TEXT:
        rest = rest.lstrip(":.,;- ").strip()
        if number is None:
            return NotUnderstood("reply needs an incident number")
        if not rest:
            return NotUnderstood("reply needs a text")
        return Command(name, number, rest)
    if name in TAKES_RANGE and number is not None and (span := _RANGE.fullmatch(rest)):
        last = int(span[1])
        if last < number or last - number >= MAX_RANGE:
            return NotUnderstood(f"{verb} takes a range of at most {MAX_RANGE}, e.g. {verb} 40-120")
        return Command(name, number, last=min(last, MAX_INCIDENT))
    if name == "status" and number is None and rest.upper() == "NEW":
        return Command(name, text="new")
    if rest and re.sub(r"[\W_]+", "", rest):
        return NotUnderstood(f"unexpected words after {verb}")
    if name in NEEDS_NUMBER and number is None:
        return NotUnderstood(f"{verb} needs an incident number")
    if name in {"status", "help"} and number is not None:
        return NotUnderstood(f"{verb} takes no number")
    return Command(name, number)


# "check in 17", "Check-in 17": one verb
_CHECK_IN = re.compile(r"^([\s\W_]*)check[\s_\-]*in(?=[\s\W_\d]|$)", re.IGNORECASE)
_UNIT_WORDS = {
    "seconds": "s",
    "second": "s",
    "secs": "s",
    "sec": "s",
    "minutes": "m",
    "minute": "m",
    "mins": "m",
    "min": "m",
    "hours": "h",
    "hour": "h",
    "hrs": "h",
    "hr": "h",
    "days": "d",
    "day": "d",
    "weeks": "w",
    "week": "w",
}
_CLOCK = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?(?::(\d{2}))?\s*(am|pm)?")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
CHECKIN_USAGE = "e.g. CHECKIN 17 18:00, 2h, every 6h or OFF"
MAX_DIGITS = 6  # no amount in a check-in needs more: never int() a thousand digits


def parse_checkin(rest: str) -> CheckinSpec | NotUnderstood:
    """Parse what follows `CHECKIN n`: `18:00`, `6pm`, `2h`, `1h30m`, `45 min`, `in 2h`,
    `by 18:00`, `today 18:00`, `tomorrow 9:00`, `2026-12-24 18:00`, `every 6h`, `OFF`; the
    word `notify` anywhere asks for a note at each contact. Bounds (too soon, too far, in the
    past) need a clock: routing.checkins.deadline checks them. Never raises."""
    if re.match(r"[:.]\d{2}", rest):  # "CHECKIN 18:00": the number was the hour
        return NotUnderstood("CHECKIN needs the incident number first, e.g. CHECKIN 17 18:00")
    words = re.sub(r"[,;!?]+", " ", rest.lower()).split()
    words = [w.strip(".:#") if not _DATE.fullmatch(w) else w for w in words]
    words = [w for w in words if w]
    notify = any(w in ("notify", "notifyme") for w in words)
    words = [w for w in words if w not in ("notify", "notifyme", "me")]
    if any(len(digits) > MAX_DIGITS for digits in re.findall(r"\d+", " ".join(words))):
        return NotUnderstood(f"CHECKIN: that number is too long ({CHECKIN_USAGE})")
    if not words:
        return NotUnderstood(f"CHECKIN needs a time ({CHECKIN_USAGE})")
    if words in (["off"], ["cancel"], ["stop"], ["none"], ["end"]):
        return NotUnderstood("CHECKIN OFF takes no notify") if notify else CheckinSpec(off=True)
    if words[0] in ("in", "at", "by", "until", "before"):
        words = words[1:]
    if words and words[0] in ("every", "each"):
        every = _duration(words[1:])
        if every is None:
            return NotUnderstood(f"CHECKIN every needs a duration, e.g. every 6h ({CHECKIN_USAGE})")
        return CheckinSpec(every=every, notify=notify)
    after = _duration(words)
    if after is not None:
        return CheckinSpec(after=after, notify=notify)
    day_offset, on = None, None
    if words and words[0] in ("today", "tonight", "tomorrow"):
        day_offset, words = (1 if words[0] == "tomorrow" else 0), words[1:]
    elif words and _DATE.fullmatch(words[0]):
        year, month, day = (int(part) for part in _DATE.fullmatch(words[0]).groups())
        try:
            on = date(year, month, day)
        except ValueError:
            return NotUnderstood(f"CHECKIN: {words[0]} is no date")
        words = words[1:]
    if words and words[0] in ("at", "by"):
        words = words[1:]
    clock = _clock(" ".join(words))
    if clock is None:
        return NotUnderstood(f"CHECKIN: {' '.join(words)[:20]!r} is no time ({CHECKIN_USAGE})")
    return CheckinSpec(clock=clock, day_offset=day_offset, on=on, notify=notify)


def _duration(words: list[str]) -> timedelta | None:
    """`2h`, `2 h`, `2 hours`, `1h30m`, `1 hour 30 min`; None when it is no duration."""
    if not words:
        return None
    text = " ".join(_UNIT_WORDS.get(w, w) for w in words)
    text = re.sub(r"(\d)\s+([a-z])", r"\1\2", text).replace(" ", "")
    try:
        return parse_duration(text)
    except (ValueError, OverflowError):
        return None


def _clock(text: str) -> tuple[int, int, int] | None:
    """`18:00`, `18.00`, `9:05:30`, `6pm`, `6:30 pm`; None when it is no time of day. A bare
    number without am/pm is no time ("18" could be an incident or a duration)."""
    match = _CLOCK.fullmatch(text.strip())
    if not match:
        return None
    hour, minute, second, half = match.groups()
    if minute is None and half is None:
        return None
    hour, minute, second = int(hour), int(minute or 0), int(second or 0)
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second
