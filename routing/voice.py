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

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

import oncall
from routing import jobs
from routing.incidents import acknowledge, is_blocked
from routing.locks import lock_incident
from routing.runtime import Runtime
from routing.tables import Call, Event, Incident

log = logging.getLogger(__name__)

DIAL_TIMEOUT_S = 20  # ring each level this long
SCREEN_TIMEOUT_S = 8  # a staff member has this long to press 1 once they pick up
VOICEMAIL_MAX_S = 120
MENU_TIMEOUT_S = 5
MAX_NUMBERS = 10  # Twilio dials at most ten <Number>s at once
WITHHELD = frozenset({"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"})
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
    return timedelta(seconds=MENU_TIMEOUT_S + 10 + len(rota.escalation) * per_level
                     + VOICEMAIL_MAX_S + 60)


def caller_address(raw_from: str) -> str | None:
    """E.164 of a caller, or None when the number is withheld ("anonymous", or one of the
    placeholder numbers Twilio puts in From for anonymous, restricted, blocked or unknown)."""
    try:
        parsed = phonenumbers.parse(raw_from.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 in WITHHELD or not phonenumbers.is_possible_number(parsed):
        return None
    return e164


def open_call(rt: Runtime, call_sid: str, raw_from: str, *, hold: timedelta | None) -> int | None:
    """Store an inbound call and open or join its caller's incident; idempotent by CallSid.

    `hold`: how long escalation waits for the live flow (None: page at once, as the fallback
    does). Returns the incident id, or None for a blocked caller.
    """
    for _attempt in range(3):
        try:
            return _open_once(rt, call_sid, raw_from, hold)
        except IntegrityError:
            continue  # a racing delivery of the same call, or of the same caller: join it
    raise RuntimeError(f"could not store call {call_sid}")


def _open_once(rt: Runtime, call_sid: str, raw_from: str, hold: timedelta | None) -> int | None:
    now = rt.clock()
    address = caller_address(raw_from)
    # a withheld number cannot be threaded with anything: one incident per call
    key = address or f"withheld:{call_sid}"
    with Session(rt.engine, expire_on_commit=False) as session:
        known = session.exec(select(Call).where(Call.sid == call_sid)).first()
        if known is not None:
            return known.incident_id
        hashes = rt.vault.lookup_hashes(key)
        if is_blocked(session, hashes, now):
            session.add(Event(at=now, kind="blocked_call", actor="system"))
            session.commit()
            return None
        incident = session.exec(
            select(Incident).where(Incident.defender_hash.in_(hashes),
                                   Incident.status != "resolved").with_for_update()
        ).first()
        if incident is None:
            incident = Incident(
                channel="voice", language=rt.settings.default_language,
                defender_hash=rt.vault.lookup_hash(key), defender_enc=rt.vault.encrypt(address),
                opened_at=now, next_step=0, next_step_at=now + (hold or timedelta(0)),
            )
            session.add(incident)
            session.flush()
            session.add(Event(incident_id=incident.id, at=now, kind="opened", actor="defender",
                              detail="voice call"))
        else:
            session.add(Event(incident_id=incident.id, at=now, kind="call", actor="defender",
                              detail="voice call"))
        incident.last_inbound_at = now
        session.add(Call(incident_id=incident.id, direction="in", purpose="defender",
                         sid=call_sid, address_hash=rt.vault.lookup_hash(key),
                         address_enc=rt.vault.encrypt(address), status="ringing",
                         created_at=now, updated_at=now))
        session.commit()
        return incident.id


def answer_call(rt: Runtime, form) -> Plan:  # noqa: ANN001
    """The first step of an inbound call. A repeated CallSid gets the same plan again and
    opens nothing new. Raises routing.incidents.BadWebhook when CallSid is missing."""
    from routing.incidents import BadWebhook

    call_sid = (form.get("CallSid") or "").strip()
    if not call_sid:
        raise BadWebhook("CallSid is required")
    rota = rt.rota.current()
    incident_id = open_call(rt, call_sid, form.get("From") or "", hold=ring_hold(rota))
    if incident_id is None:
        return Hangup(rt.settings.default_language)
    if len(rt.settings.languages) > 1:
        return Menu(incident_id, tuple(rt.settings.languages))
    return next_ring(rt, incident_id, 1)


def choose_language(rt: Runtime, incident_id: int, digits: str) -> Plan:
    """Menu choice (1-based, in settings.languages order); anything else keeps the default."""
    languages = rt.settings.languages
    choice = int(digits) if digits.isdigit() and 1 <= int(digits) <= len(languages) else None
    if choice is not None:
        with Session(rt.engine) as session:
            incident = lock_incident(session, incident_id)
            if incident is not None and incident.status != "resolved":
                incident.language = languages[choice - 1]
                session.add(Event(incident_id=incident_id, at=rt.clock(), kind="language",
                                  actor="defender", detail=f"menu: {incident.language}"))
            session.commit()
    return next_ring(rt, incident_id, 1)


def next_ring(rt: Runtime, incident_id: int, level: int) -> Plan:
    """Ring the first level from `level` on with anyone on call, or take a voicemail."""
    with Session(rt.engine) as session:
        incident = session.get(Incident, incident_id)
        language = incident.language if incident else rt.settings.default_language
    if incident is None:
        return Voicemail(None, language)
    levels = oncall.who_is_on_call(rt.rota.current(), rt.clock(), language)
    for on_call in levels[level - 1:]:
        phones = tuple(dict.fromkeys(person.phone for person in on_call.staff))[:MAX_NUMBERS]
        if phones:  # an empty level is skipped, not rung
            return Ring(incident_id, on_call.number, phones, language, stay_on_line=level > 1)
    return Voicemail(incident_id, language)


def screen(rt: Runtime, incident_id: int, called: str, digits: str | None,
           leg_sid: str | None) -> str:
    """A staff phone picked up the defender's call. Returns "prompt" (no key yet), "accept"
    (pressed 1: acknowledged and bridged) or "decline" (anything else: hang that leg up, so a
    personal voicemail can never take the call)."""
    if digits is None:
        return "prompt"
    if digits != "1":
        return "decline"
    staff = rt.rota.current().staff_by_phone(caller_address(called) or called)
    now = rt.clock()
    if leg_sid:
        try:
            with Session(rt.engine) as session:
                session.add(Call(incident_id=incident_id, direction="out", purpose="screen",
                                 sid=leg_sid, staff_id=staff.id if staff else None,
                                 address_hash=rt.vault.lookup_hash(called),
                                 address_enc=rt.vault.encrypt(called), status="accepted",
                                 created_at=now, updated_at=now))
                session.commit()
        except IntegrityError:
            pass  # a repeated key press: already recorded
    if staff is not None:
        # the person who chose to take the call owns the incident, from this moment
        acknowledge(rt, incident_id, staff.id, via="voice")
    else:
        log.warning("incident %s: call accepted by a number not in the rota", incident_id)
    return "accept"


def dial_result(rt: Runtime, incident_id: int, level: int, form) -> Plan:  # noqa: ANN001
    """The end of ringing one level: done when someone accepted, else the next level."""
    with Session(rt.engine) as session:
        incident = session.get(Incident, incident_id)
        language = incident.language if incident else rt.settings.default_language
    if (form.get("CallStatus") or "").lower() in CALLER_GONE:
        release_hold(rt, incident_id, "caller_hung_up", "the caller hung up while ringing")
        return Hangup(language)
    dial_status = (form.get("DialCallStatus") or "").lower()
    accepted = _accepted_by(rt, incident_id, form.get("DialCallSid"))
    if dial_status in ("completed", "answered") and accepted is not None:
        if accepted:
            acknowledge(rt, incident_id, accepted, via="voice")
        return Hangup(language)
    return next_ring(rt, incident_id, level + 1)


def _accepted_by(rt: Runtime, incident_id: int, leg_sid: str | None) -> str | None:
    """Staff id ("" when unknown) of the leg that pressed 1, or None when nobody did: a
    personal voicemail that picked up counts as no answer."""
    with Session(rt.engine) as session:
        query = select(Call).where(Call.incident_id == incident_id, Call.purpose == "screen",
                                   Call.status == "accepted")
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
    with Session(rt.engine) as session:
        incident = lock_incident(session, incident_id)
        if (incident is None or incident.status != "open" or incident.next_step != 0
                or incident.first_paged_at is not None or incident.next_step_at is None
                or incident.next_step_at <= now):
            session.rollback()
            return False
        incident.next_step_at = now
        session.add(Event(incident_id=incident_id, at=now, kind=kind, actor="defender",
                          detail=detail))
        session.commit()
    jobs.schedule_step(rt, incident_id, 0, now)
    return True


def incident_language(rt: Runtime, incident_id: int | None) -> str:
    if incident_id is None:
        return rt.settings.default_language
    with Session(rt.engine) as session:
        incident = session.get(Incident, incident_id)
    return incident.language if incident else rt.settings.default_language
