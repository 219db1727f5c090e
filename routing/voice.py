"""A defender's call: stored, joined to their incident, rung through the levels, or voicemail.

The flow, one webhook per step (webhooks.voice renders each plan as TwiML):
  answer_call -> Menu (more than one language) -> choose_language -> Ring(level 1)
  -> dial_result: answered by someone who pressed 1 (screen) -> acknowledged, done;
                  else Ring(next level with staff) ... -> Voicemail -> recorded -> paged.

Escalation by SMS waits while the caller is being rung through: a new voice incident's cursor
is step 0 due after RING_HOLD (the longest the live flow can take), so a flow that dies (Twilio
stops calling back, a lost callback) still ends in pages from the sweeper. The hold is released
(step 0 due now) when the voicemail is recorded or the caller hangs up before anyone took it.
Nothing here touches Redis except scheduling that released step, which fails soft.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

import oncall
from routing import intake
from routing.datakeys import seal
from routing.identity import phone_number
from routing.incidents import acknowledge
from routing.intake import VoiceCall
from routing.locks import lock_incident
from routing.runtime import Runtime
from routing.tables import Call, Event, Incident
from routing.uow import unit_of_work

log = logging.getLogger(__name__)

DIAL_TIMEOUT_S = 20  # ring each level this long
SCREEN_TIMEOUT_S = 8  # a staff member has this long to press 1 once they pick up
VOICEMAIL_MAX_S = 120
MENU_TIMEOUT_S = 5
MAX_NUMBERS = 10  # Twilio dials at most ten <Number>s at once
CALLER_GONE = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class Menu:
    incident_id: int
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Ring:
    incident_id: int
    level: int
    phones: tuple[str, ...]
    language: str
    stay_on_line: bool = False  # say "please stay on the line" first (not on the first level)


@dataclass(frozen=True)
class Voicemail:
    incident_id: int | None
    language: str


@dataclass(frozen=True)
class Hangup:
    language: str
    thank_you: bool = False


Plan = Menu | Ring | Voicemail | Hangup


def ring_hold(rota: oncall.Rota) -> timedelta:
    """How long the live flow may keep the caller before SMS escalation must start anyway."""
    per_level = DIAL_TIMEOUT_S + SCREEN_TIMEOUT_S + 10
    return timedelta(
        seconds=MENU_TIMEOUT_S + 10 + len(rota.escalation) * per_level + VOICEMAIL_MAX_S + 60
    )


def answer_call(rt: Runtime, call: VoiceCall) -> Plan:
    """The first step of an inbound call: the call goes through the intake (stored, then its
    caller's incident opened or joined). A repeated CallSid gets the same plan again and
    opens nothing new."""
    rota = rt.rota.current()
    received = intake.take_call(rt, call, hold=ring_hold(rota))
    if received.incident_id is None:
        return Hangup(rt.settings.default_language)
    if len(rt.settings.languages) > 1:
        return Menu(received.incident_id, tuple(rt.settings.languages))
    return next_ring(rt, received.incident_id, 1)


def choose_language(rt: Runtime, incident_id: int, digits: str) -> Plan:
    """Menu choice (1-based, in settings.languages order); anything else keeps the default."""
    languages = rt.settings.languages
    choice = int(digits) if digits.isdigit() and 1 <= int(digits) <= len(languages) else None
    if choice is not None:
        with unit_of_work(rt) as uow:
            session = uow.session
            incident = lock_incident(session, incident_id)
            if incident is not None and incident.status != "resolved":
                incident.language = languages[choice - 1]
                session.add(
                    Event(
                        incident_id=incident_id,
                        at=rt.clock(),
                        kind="language",
                        actor="defender",
                        detail=f"menu: {incident.language}",
                    )
                )
    return next_ring(rt, incident_id, 1)


def next_ring(rt: Runtime, incident_id: int, level: int) -> Plan:
    """Ring the first level from `level` on with anyone on call, or take a voicemail."""
    with Session(rt.engine) as session:
        incident = session.get(Incident, incident_id)
        language = incident.language if incident else rt.settings.default_language
    if incident is None:
        return Voicemail(None, language)
    levels = oncall.who_is_on_call(rt.rota.current(), rt.clock(), language)
    for on_call in levels[level - 1 :]:
        phones = tuple(dict.fromkeys(person.phone for person in on_call.staff))[:MAX_NUMBERS]
        if phones:  # an empty level is skipped, not rung
            return Ring(incident_id, on_call.number, phones, language, stay_on_line=level > 1)
    return Voicemail(incident_id, language)


def screen(
    rt: Runtime, incident_id: int, called: str, digits: str | None, leg_sid: str | None
) -> str:
    """A staff phone picked up the defender's call. Returns "prompt" (no key yet), "accept"
    (pressed 1: acknowledged and bridged) or "decline" (anything else: hang that leg up, so a
    personal voicemail can never take the call)."""
    if digits is None:
        return "prompt"
    if digits != "1":
        return "decline"
    staff = rt.rota.current().staff_by_phone(phone_number(called) or called)
    now = rt.clock()
    if leg_sid:
        try:
            with unit_of_work(rt) as uow:
                session = uow.session
                leg = Call(
                    incident_id=incident_id,
                    direction="out",
                    purpose="screen",
                    sid=leg_sid,
                    staff_id=staff.id if staff else None,
                    address_hash=rt.vault.lookup_hash(called),
                    status="accepted",
                    created_at=now,
                    updated_at=now,
                )
                seal(session, rt.vault, leg, address=called)
                session.add(leg)
        except IntegrityError:
            pass  # a repeated key press: already recorded
    if staff is not None:
        # the person who chose to take the call owns the incident, from this moment
        acknowledge(rt, incident_id, staff.id, via="voice")
    else:
        log.warning("incident %s: call accepted by a number not in the rota", incident_id)
    return "accept"


@dataclass(frozen=True)
class DialOutcome:
    """How ringing one level ended, as Twilio reports it: the caller's call status (`CallStatus`,
    lowercase), the dial's (`DialCallStatus`), and the leg that answered (`DialCallSid`)."""

    call_status: str
    dial_status: str
    leg_sid: str | None = None


def dial_result(rt: Runtime, incident_id: int, level: int, outcome: DialOutcome) -> Plan:
    """The end of ringing one level: done when someone accepted, else the next level."""
    with Session(rt.engine) as session:
        incident = session.get(Incident, incident_id)
        language = incident.language if incident else rt.settings.default_language
    if outcome.call_status in CALLER_GONE:
        release_hold(rt, incident_id, "caller_hung_up", "the caller hung up while ringing")
        return Hangup(language)
    accepted = _accepted_by(rt, incident_id, outcome.leg_sid)
    if outcome.dial_status in ("completed", "answered") and accepted is not None:
        if accepted:
            acknowledge(rt, incident_id, accepted, via="voice")
        return Hangup(language)
    return next_ring(rt, incident_id, level + 1)


def _accepted_by(rt: Runtime, incident_id: int, leg_sid: str | None) -> str | None:
    """Staff id ("" when unknown) of the leg that pressed 1, or None when nobody did: a
    personal voicemail that picked up counts as no answer."""
    with Session(rt.engine) as session:
        query = select(Call).where(
            Call.incident_id == incident_id, Call.purpose == "screen", Call.status == "accepted"
        )
        if leg_sid:
            query = query.where(Call.sid == leg_sid)
        leg = session.exec(query.order_by(Call.id.desc())).first()
    return None if leg is None else (leg.staff_id or "")


def release_hold(rt: Runtime, incident_id: int, kind: str, detail: str) -> bool:
    """Start a voice incident's escalation now (voicemail left, or the caller hung up).

    Only moves a cursor still held at step 0 and never paged; anything else (acknowledged,
    already escalating) is left alone. Returns True when the hold was released.
    """
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, incident_id)
        if (
            incident is None
            or incident.status != "open"
            or incident.next_step != 0
            or incident.first_paged_at is not None
            or incident.next_step_at is None
            or incident.next_step_at <= now
        ):
            return False
        incident.next_step_at = now
        uow.session.add(
            Event(incident_id=incident_id, at=now, kind=kind, actor="defender", detail=detail)
        )
        uow.schedule_step(incident_id, 0, now)
    return True


def incident_language(rt: Runtime, incident_id: int | None) -> str:
    if incident_id is None:
        return rt.settings.default_language
    with Session(rt.engine) as session:
        incident = session.get(Incident, incident_id)
    return incident.language if incident else rt.settings.default_language
