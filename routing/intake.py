"""The one intake: every call and message a defender sends comes in here.

Every channel hands routing a typed, validated contact (webhooks parse Twilio's forms; routing
never sees one): a `TextMessage` (SMS, MMS, WhatsApp), a `VoiceCall`, or a `WebMessage` (the
secure web form, routing.web). `receive` stores it
first, then resolves the person behind it (routing.identity) and opens or joins their
incident in a savepoint of the same transaction, so nothing a defender sent is lost when the
threading fails.

A defender's text message is answered before it is threaded: the webhook stores it, decides
from reads alone whether its answer carries the auto-reply (a new incident's, as `_thread`
would), commits, and answers; the threading runs once the answer is out
(`thread_after_answer`, webhooks.messages). The row's status says what its answer carried
(`ANSWERED`), so whoever threads it, that webhook or the sweeper after a crash, records that
auto-reply as sent instead of sending another.

A busy web process stores a message and leaves the threading to a worker (`defer`): storing
is a fifth of the work, so a surge is taken in at the rate the database can write rows, and
the worker threads the backlog in batches (`thread_batch`). Anything stored but not threaded
(deferred, a failure in threading, or the fallback URL, which only stores) is threaded by a
worker or the sweeper (`thread`); the defender's auto-reply then goes out through the outbox,
since the webhook that could have carried it has answered.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from routing import checkins, jobqueue, outbox
from routing.commands import OPTED_OUT_EVENT, is_opt_out
from routing.directory import staff_phone
from routing.groupcommit import GroupCommit
from routing.identity import (
    Party,
    has_unresolved,
    is_blocked,
    party,
    person_hashes,
    unresolved_incident,
    was_silenced,
)
from routing.language import guess_language
from routing.masking import show_number
from routing.runtime import Runtime
from routing.tables import ANSWERED, UNTHREADED, Call, Event, Incident, Message
from routing.texts import auto_reply, relay_text
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)
FLOOD_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class TextMessage:
    """An SMS, MMS or WhatsApp message as Twilio delivered it (already validated)."""

    sid: str
    sender: str  # Twilio's From: "+4477…" or "whatsapp:+4477…"
    body: str
    media_types: tuple[str, ...] = field(default_factory=tuple)
    media_urls: tuple[str, ...] = field(default_factory=tuple)  # kept encrypted, for staff

    @property
    def channel(self) -> str:
        return "whatsapp" if self.sender.startswith("whatsapp:") else "sms"

    @property
    def kind(self) -> str:
        return "message"


@dataclass(frozen=True)
class VoiceCall:
    """A call to the hotline number (already validated)."""

    sid: str
    sender: str  # Twilio's From: "+4477…", "anonymous", "client:…"

    @property
    def channel(self) -> str:
        return "voice"

    @property
    def kind(self) -> str:
        return "call"


@dataclass(frozen=True)
class WebMessage:
    """A message written on the secure web form (already validated by the web edge).

    `sid`: our own id for it (`WB…`, unique: a repeated submission is not a thing, but the
    store is the same); `sender`: the conversation's key, `web:<random>` (routing.identity).
    """

    sid: str
    sender: str
    body: str
    media_types: tuple[str, ...] = field(default_factory=tuple)
    media_urls: tuple[str, ...] = field(default_factory=tuple)

    @property
    def channel(self) -> str:
        return "web"

    @property
    def kind(self) -> str:
        return "message"


Contact = TextMessage | VoiceCall | WebMessage


@dataclass(frozen=True)
class Received:
    """What the intake did. `row_id` None: a repeated delivery, nothing done again."""

    row_id: int | None
    incident_id: int | None = None
    opened: bool = False
    blocked: bool = False
    auto_reply: str | None = None  # what the webhook answers with (TwiML <Message>)
    to_thread: bool = False  # stored only: thread it once the answer is out


def receive(
    rt: Runtime,
    contact: Contact,
    *,
    staff_id: str | None = None,
    route: bool = True,
    hold: timedelta | None = None,
    schedule: bool = True,
    defer: bool = False,
    who: Party | None = None,
) -> Received:
    """Store `contact`, then (with `route`) open or join its person's incident.

    `staff_id`: the message is a staff member's command: stored, never threaded. `hold`: how
    long a new incident's escalation waits (a live call being rung through). `schedule`:
    False keeps Redis out of it (the fallback URL); the sweeper then runs the first step.
    `who`: the person behind it (`party`), when the caller has found them already.
    A defender's text message is stored only, and threaded after the webhook's answer
    (`to_thread`, the module's docstring); with `defer` (a busy web process) a worker threads
    it instead (routing.jobqueue.wake_threading; without Redis, the sweeper does).
    A repeated delivery (same sid) returns the first delivery's incident and does nothing.

    Any other contact (a call, a web form message) is threaded before its answer, which
    needs the incident. One transaction: the contact is written first, and the threading
    runs in a savepoint after it. When threading fails, only the savepoint is undone: the
    contact is committed as received and the sweeper threads it (a caller on the line is
    answered by the voice step's voicemail: the error is raised for a call, after the
    commit). One commit instead of two keeps the webhook short (and, on SQLite, takes the
    write lock once).
    """
    who = who or party(contact.sender, contact.channel, contact.sid)
    routed = staff_id is None and route
    if routed and isinstance(contact, TextMessage):
        if defer:
            return _store_for_a_worker(rt, contact, who)
        return _store_and_answer(rt, contact, who)
    row = _stored_row(rt, contact, who, staff_id)
    failure: Exception | None = None
    with unit_of_work(rt) as uow:
        if not _stored_once(uow, row, contact):
            return Received(None, incident_id=_incident_of(rt, contact))
        received = Received(row.id)
        if routed:
            body = contact.body if isinstance(contact, TextMessage | WebMessage) else ""
            try:
                received = _thread_in_savepoints(uow, contact.kind, row, who, body, hold, schedule)
            except Exception as exc:
                failure = exc
                log.exception(
                    "%s %s stored but not routed; the sweeper will retry", contact.kind, row.id
                )
    if failure is not None and isinstance(contact, VoiceCall):
        raise failure  # the caller is on the line: the voice step answers with the voicemail
    return received


def _stored_once(uow: UnitOfWork, row: Message | Call, contact: Contact) -> bool:
    """Write `row`, which records `contact`. False for a repeated delivery (its sid is
    stored already): then nothing is written and the transaction is rolled back."""
    uow.session.add(row)
    try:
        uow.session.flush()
    except IntegrityError:
        log.info("repeated delivery of %s %s ignored", contact.kind, contact.sid)
        uow.rollback()
        return False
    return True


def _store_and_answer(rt: Runtime, message: TextMessage, who: Party) -> Received:
    """Store a defender's message and decide its answer, threading nothing yet."""
    row = Message(**_message_fields(rt, message, who, None))
    with unit_of_work(rt) as uow:
        if not _stored_once(uow, row, message):
            return Received(None, incident_id=_incident_of(rt, message))
        reply = _answer(uow, who, message)
        if reply is not None:
            row.status = ANSWERED
    return Received(row.id, auto_reply=reply, to_thread=True)


def _answer(uow: UnitOfWork, who: Party, message: TextMessage) -> str | None:
    """The auto-reply to answer `message` with, read as `_thread` will decide it: when it
    opens an incident (no block, none unresolved) that is not silent. A contact of the
    same person committed in between can make the threading join an incident after all:
    the defender then has one auto-reply more, which `_thread` records as sent."""
    rt, session = uow.rt, uow.session
    if not rt.settings.auto_reply or is_opt_out(message.body):
        return None
    hashes = person_hashes(rt.vault, who.key)
    with session.no_autoflush:  # the one row written is this message
        if is_blocked(session, hashes, rt.clock()) or has_unresolved(session, hashes):
            return None
        if who.identified and was_silenced(session, hashes):
            return None
    return _auto_reply_to(rt, message.body)


def _auto_reply_to(rt: Runtime, body: str) -> str:
    """The auto-reply to a first message `body`: in the language its incident will have."""
    return auto_reply(_language_of(rt, body))


def _language_of(rt: Runtime, body: str) -> str:
    return guess_language(body, rt.settings.languages) if body else rt.settings.default_language


def _store_for_a_worker(rt: Runtime, message: TextMessage, who: Party) -> Received:
    """Store a defender's message with the others this process receives at the same time
    (routing.groupcommit), and ask a worker to thread it."""
    try:
        row_id = _group_commit(rt).insert(_message_fields(rt, message, who, None))
    except IntegrityError:
        log.info("repeated delivery of message %s ignored", message.sid)
        return Received(None, incident_id=_incident_of(rt, message))
    return Received(row_id)


def _group_commit(rt: Runtime) -> GroupCommit:
    """This process's group commit of deferred messages (one per runtime)."""
    with rt.local_lock:
        group = rt.local.get("message_group_commit")
        if group is None:
            group = rt.local["message_group_commit"] = GroupCommit(
                rt, Message.__table__, lambda ids: jobqueue.wake_threading(rt, "message", *ids)
            )
        return group


def _message_fields(
    rt: Runtime, message: TextMessage | WebMessage, who: Party, staff_id: str | None
) -> dict:
    """The columns of the row that records `message` as received."""
    now = rt.clock()
    return dict(
        direction="in",
        channel=message.channel,
        purpose="command" if staff_id else "defender",
        sid=message.sid,
        staff_id=staff_id,
        **_sender_fields(rt, message, who),
        body_enc=rt.vault.encrypt(message.body),
        media_count=len(message.media_types),
        media_types=",".join(message.media_types),
        media_enc=rt.vault.encrypt(json.dumps(message.media_urls)) if message.media_urls else None,
        status="received",
        created_at=now,
        updated_at=now,
    )


def _stored_row(rt: Runtime, contact: Contact, who: Party, staff_id: str | None) -> Message | Call:
    """The row that records `contact` as received."""
    if isinstance(contact, TextMessage | WebMessage):
        return Message(**_message_fields(rt, contact, who, staff_id))
    now = rt.clock()
    return Call(
        direction="in",
        purpose="defender",
        sid=contact.sid,
        **_sender_fields(rt, contact, who),
        status="ringing",
        created_at=now,
        updated_at=now,
    )


def _sender_fields(rt: Runtime, contact: Contact, who: Party) -> dict:
    """Who a received contact came from, as its row keeps it: hashed and encrypted."""
    shown = who.address or contact.sender  # what the log keeps: "anonymous" stays as it came
    return dict(address_hash=rt.vault.lookup_hash(shown), address_enc=rt.vault.encrypt(shown))


def _incident_of(rt: Runtime, contact: Contact) -> int | None:
    table = Call if isinstance(contact, VoiceCall) else Message
    with unit_of_work(rt) as uow:
        return uow.session.exec(select(table.incident_id).where(table.sid == contact.sid)).first()


def thread(
    rt: Runtime, kind: str, row_id: int, *, hold: timedelta | None = None, schedule: bool = True
) -> Received:
    """Attach a stored defender contact to its person's incident, opening one (and starting
    escalation) when they have none unresolved. Idempotent: the sweeper's way in."""
    with unit_of_work(rt) as uow:
        return _thread_stored(uow, kind, row_id, hold, schedule)


def thread_after_answer(rt: Runtime, row_id: int) -> None:
    """Thread a defender's message the webhook has answered (`Received.to_thread`). A
    failure is logged and left to the sweeper: the message is stored."""
    try:
        thread(rt, "message", row_id)
    except Exception:
        log.exception("message %s answered but not threaded; the sweeper will retry", row_id)


def thread_batch(rt: Runtime, keys: list[tuple[str, int]]) -> int:
    """Thread stored contacts (`(kind, row_id)`, as `thread`) in one transaction, each in a
    savepoint of its own (`_thread_in_savepoints`): one that fails is undone alone and left
    for the sweeper. Returns how many were threaded. A worker's way in for what busy
    webhooks deferred."""
    done = 0
    with unit_of_work(rt) as uow:
        for kind, row_id in sorted(keys):
            try:
                done += _thread_stored(uow, kind, row_id, None, True).row_id is not None
            except Exception:
                log.exception("%s %s not threaded; the sweeper will retry", kind, row_id)
    return done


def _thread_stored(
    uow: UnitOfWork, kind: str, row_id: int, hold: timedelta | None, schedule: bool
) -> Received:
    rt = uow.rt
    table = Message if kind == "message" else Call
    row = uow.session.exec(select(table).where(table.id == row_id).with_for_update()).first()
    if row is None:
        return Received(None)
    if (
        row.incident_id is not None
        or row.status not in (*UNTHREADED, "ringing")
        or (kind == "message" and row.purpose != "defender")
    ):
        return Received(row_id, row.incident_id)
    channel = row.channel if kind == "message" else "voice"
    who = party(rt.vault.decrypt(row.address_enc) or "", channel, row.sid or str(row.id))
    body = (rt.vault.decrypt(row.body_enc) or "") if kind == "message" else ""
    return _thread_in_savepoints(uow, kind, row, who, body, hold, schedule)


def _thread_in_savepoints(
    uow: UnitOfWork,
    kind: str,
    row: Message | Call,
    who: Party,
    body: str,
    hold: timedelta | None,
    schedule: bool,
) -> Received:
    for _attempt in range(3):
        try:
            with uow.savepoint():
                return _thread(uow, kind, row, who, body, hold, schedule)
        except IntegrityError:
            # another contact of the same person opened the incident first: join it
            continue
    raise RuntimeError(f"could not thread {kind} {row.id}")


def _thread(
    uow: UnitOfWork,
    kind: str,
    row: Message | Call,
    who: Party,
    body: str,
    hold: timedelta | None,
    schedule: bool,
) -> Received:
    """Thread `row` (stored, not yet threaded, in `uow`) from `who`, who said `body`.
    A new incident's auto-reply goes out through the outbox, unless the webhook's answer
    has carried it already (`ANSWERED`)."""
    rt, session, now = uow.rt, uow.session, uow.rt.clock()
    channel = row.channel if kind == "message" else "voice"
    hashes = person_hashes(rt.vault, who.key)
    answered = kind == "message" and row.status == ANSWERED
    if is_blocked(session, hashes, now):
        if answered:
            _record_answer(uow, row, None, body)
        row.status = "blocked"
        session.add(
            Event(at=now, kind=f"blocked_{kind}", actor="system", detail=f"{kind} {row.id}")
        )
        return Received(row.id, blocked=True)
    incident = unresolved_incident(session, hashes)
    opened = incident is None
    if opened:
        incident = _open(uow, who, channel, body, hold)
    else:
        session.add(
            Event(
                incident_id=incident.id,
                at=now,
                kind=kind,
                actor="defender",
                detail=f"{channel} {'message' if kind == 'message' else 'call'}",
            )
        )
        if kind == "message" and incident.status == "acknowledged":
            _relay_to_taker(uow, incident, body + _media_note(row))
    row.incident_id = incident.id
    opted_out = kind == "message" and is_opt_out(body)
    if opted_out:
        # the carrier now refuses our SMS to them, but a defender in danger who typed
        # "Stop" must still reach a human: staff are told to call (routing.escalation)
        session.add(
            Event(
                incident_id=incident.id,
                at=now,
                kind=OPTED_OUT_EVENT,
                actor="defender",
                detail="texted a carrier opt-out word",
            )
        )
    if kind == "message":
        row.status = "threaded"
    if not opened:  # a new incident was written with it
        incident.last_inbound_at = now
    # a contact keeps their check-in; a duress word in it raises the alarm (quietly: the
    # defender gets exactly what any message gets, below)
    checkins.on_contact(
        uow,
        incident,
        hashes,
        kind=kind,
        channel=channel,
        body=body,
        opened=opened,
        schedule=schedule,
    )
    if (
        who.address is not None
        and not opened
        and rt.vault.decrypt(incident.defender_enc) != who.address
    ):
        # replies and relays go out on the channel the person last used
        incident.defender_enc = rt.vault.encrypt(who.address)
    if answered:
        _record_answer(uow, row, incident.id, body)
    # a web conversation has no phone to text: its page says a person will answer there
    elif (
        opened
        and kind == "message"
        and rt.settings.auto_reply
        and not incident.silent
        and not opted_out
        and channel != "web"
        and who.address is not None
    ):
        # (a withheld sender has nowhere to be texted)
        outbox.add_message(
            uow,
            to=who.address,
            body=auto_reply(incident.language),
            purpose="auto_reply",
            incident_id=incident.id,
        )
    if opened and schedule:
        uow.schedule_step(incident.id, 0, incident.next_step_at)
    return Received(row.id, incident.id, opened=opened)


def _record_answer(uow: UnitOfWork, row: Message, incident_id: int | None, body: str) -> None:
    """Log the auto-reply the webhook answered `row` with (TwiML) as a message sent, at the
    moment it was answered."""
    uow.session.add(
        Message(
            incident_id=incident_id,
            direction="out",
            channel=row.channel,
            purpose="auto_reply",
            address_hash=row.address_hash,
            address_enc=row.address_enc,
            body_enc=uow.rt.vault.encrypt(_auto_reply_to(uow.rt, body)),
            status="sent",
            created_at=row.created_at,
            updated_at=row.created_at,
        )
    )


def _open(uow: UnitOfWork, who: Party, channel: str, body: str, hold: timedelta | None) -> Incident:
    rt, session, now = uow.rt, uow.session, uow.rt.clock()
    language = _language_of(rt, body)
    incident = Incident(
        channel=channel,
        language=language,
        defender_hash=rt.vault.lookup_hash(who.key),
        defender_enc=rt.vault.encrypt(who.address),
        opened_at=now,
        last_inbound_at=now,
        next_step=0,
        next_step_at=now + (hold or timedelta(0)),
        silent=who.identified and was_silenced(session, person_hashes(rt.vault, who.key)),
    )
    session.add(incident)
    session.flush()
    what = "message" if channel != "voice" else "call"
    session.add(
        Event(
            incident_id=incident.id,
            at=now,
            kind="opened",
            actor="defender",
            detail=f"{channel} {what}" if channel != "voice" else "voice call",
        )
    )
    _watch_for_a_flood(uow, incident.id)
    return incident


def _watch_for_a_flood(uow: UnitOfWork, newest: int) -> None:
    """Tell the fallback contacts once when new incidents cross the flood threshold.

    Pages already fold into digests per person (routing.bundling); this says that the line
    as a whole is under a flood (a mass arrest, or someone drowning the real emergencies),
    with what staff can do about it.
    """
    rt, session, now = uow.rt, uow.session, uow.rt.clock()
    threshold = rt.settings.flood_threshold
    # no autoflush (it cost as much as the queries): `_open` has just flushed the new
    # incident, and with it any flood event an earlier open of this transaction added
    with session.no_autoflush:
        recent = session.exec(
            select(func.count(Incident.id)).where(Incident.opened_at > now - FLOOD_WINDOW)
        ).one()
        if recent < threshold:
            return
        told = session.exec(
            select(Event.id).where(Event.kind == "flood", Event.at > now - FLOOD_WINDOW)
        ).first()
    if told is not None:
        return
    minutes = int(FLOOD_WINDOW.total_seconds() // 60)
    session.add(
        Event(
            incident_id=newest,
            at=now,
            kind="flood",
            actor="system",
            detail=f"{recent} new incidents in {minutes} min",
        )
    )
    try:
        rota = rt.rota.current()
    except Exception:
        log.exception("flood: rota unavailable, fallback contacts not told")
        return
    text = (
        f"Hotline FLOOD: {recent} new incidents in {minutes} min (newest #{newest}). "
        "Pages to each of you fold into digests. STATUS NEW lists the newest; "
        "BLOCK 40-120 blocks and closes a range, UNBLOCK 40-120 undoes it."
    )
    for contact in rota.fallback:
        if contact in rota.staff:
            outbox.add_message(
                uow, to=rota.staff[contact].phone, body=text, purpose="alert", staff_id=contact
            )


def _media_note(message: Message) -> str:
    if not message.media_count:
        return ""
    return f" [{message.media_count} attachment(s): {message.media_types}]"


def _relay_to_taker(uow: UnitOfWork, incident: Incident, body: str) -> None:
    """Pass a defender's words on to whoever took their incident."""
    rt = uow.rt
    phone = staff_phone(rt, incident.acknowledged_by)
    if not phone:
        return
    sender = show_number(rt.vault.decrypt(incident.defender_enc), rt.settings.reveal_numbers)
    outbox.add_message(
        uow,
        to=phone,
        purpose="relay",
        incident_id=incident.id,
        staff_id=incident.acknowledged_by,
        body=relay_text(incident.id, sender, body),
    )


def relay_to_taker(rt: Runtime, incident_id: int, body: str) -> bool:
    """Relay `body` (a voicemail note, a transcript) to whoever took the incident.
    Returns False when nobody has taken it."""
    with unit_of_work(rt) as uow:
        incident = uow.session.get(Incident, incident_id)
        if incident is None or incident.status != "acknowledged" or not incident.acknowledged_by:
            return False
        _relay_to_taker(uow, incident, body)
    return True
