"""Staff SMS commands: parsing only (pure, no I/O).

Tolerant of case, spaces and punctuation: `ACK 17`, `ack17`, `A 17`, `ack #17.`, `R17 on my way`.
Carrier opt-out words are never commands: they belong to the carrier and Twilio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "CANCEL", "END", "QUIT", "UNSUBSCRIBE", "OPTOUT",
                           "REVOKE"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN"})
OPTED_OUT_EVENT = "defender_opted_out"  # the event of a defender who texted an opt-out word


def is_opt_out(body: str) -> bool:
    """True for a carrier opt-out word alone ("Stop!", "end"): the carrier blocks our SMS
    to the sender from then on."""
    return re.sub(r"[\W_]+", "", body or "").upper() in OPT_OUT_WORDS


# verb -> canonical command; order matters only for readability
VERBS = {
    "ACK": "ack", "A": "ack", "ACKNOWLEDGE": "ack",
    "REPLY": "reply", "R": "reply",
    "CALL": "call", "C": "call",
    "PASS": "pass", "P": "pass", "DECLINE": "pass",
    "RESOLVE": "resolve", "RESOLVED": "resolve", "DONE": "resolve", "CLOSE": "resolve",
    "STATUS": "status", "S": "status", "LIST": "status",
    "HELP": "help", "H": "help", "?": "help", "INFO": "help",
    "BLOCK": "block",
    "SILENT": "silent",
    "UNBLOCK": "unblock",
}
# Incident numbers are 32-bit in every database we run on: a larger one names no incident.
MAX_INCIDENT = 2**31 - 1
NEEDS_NUMBER = {"reply", "call", "pass", "resolve", "block", "unblock", "silent"}
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

    @property
    def numbers(self) -> range:
        """The incidents named: one, or a range."""
        if self.incident is None:
            return range(0)
        return range(self.incident, (self.last or self.incident) + 1)


@dataclass(frozen=True)
class OptOut:
    word: str


@dataclass(frozen=True)
class OptIn:
    word: str


@dataclass(frozen=True)
class NotUnderstood:
    reason: str


@dataclass(frozen=True)
class NoSuchIncident:
    """A command naming a number past MAX_INCIDENT: answered as an unknown incident."""

    number: str  # as typed, shortened for the reply

    @property
    def reply(self) -> str:
        return f"No incident #{self.number}. STATUS lists open ones."


Parsed = Command | OptOut | OptIn | NotUnderstood | NoSuchIncident


def parse_staff_reply(body: str) -> Parsed:
    """Classify a staff member's SMS. Never raises."""
    stripped = (body or "").strip()
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
        return NoSuchIncident(digits if len(digits) <= 12 else digits[:12] + "…")
    number = int(digits) if digits else None
    rest = match["rest"].strip()
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
            return NotUnderstood(f"{verb} takes a range of at most {MAX_RANGE}, e.g. "
                                 f"{verb} 40-120")
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
