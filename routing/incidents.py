"""Incidents: a defender's messages stored and threaded; acknowledged; resolved.

Every inbound message is committed on its own before any routing, so nothing a defender sent
is lost when a later step fails; the sweeper threads any message left without an incident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from routing import jobs
from routing.commands import OPT_IN_WORDS, OPT_OUT_WORDS
from routing.delivery import queue_message
from routing.language import guess_language
from routing.locks import lock_incident
from routing.masking import show_number
from routing.runtime import Runtime
from routing.safety import sender_hashes, was_silenced
from routing.tables import Acknowledgement, Block, Event, Incident, Message, Page
from routing.texts import auto_reply, relay_text

log = logging.getLogger(__name__)


class BadWebhook(ValueError):
    """A webhook form that cannot be what Twilio sends (missing sid, unparseable sender)."""


@dataclass(frozen=True)
class Inbound:
    sid: str
    address: str  # "+353861234567" or "whatsapp:+353861234567": where replies go
    e164: str
    channel: str  # sms | whatsapp
    body: str
    media_types: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        """The body, or a note of media for a picture-only message (never its URL)."""
        media = f"[{len(self.media_types)} attachment(s): {', '.join(self.media_types)}]"
        if self.media_types and self.body:
            return f"{self.body} {media}"
        return self.body or (media if self.media_types else "")


def parse_inbound(form) -> Inbound:  # noqa: ANN001
    """Read Twilio's message webhook form. Raises BadWebhook when it cannot be Twilio's."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    raw_from = (form.get("From") or "").strip()
    if not sid or not raw_from:
        raise BadWebhook("MessageSid and From are required")
    channel = "whatsapp" if raw_from.startswith("whatsapp:") else "sms"
    e164 = normalise(raw_from.removeprefix("whatsapp:"))
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError as exc:
        raise BadWebhook("NumMedia is not a number") from exc
    media = tuple(form.get(f"MediaContentType{i}") or "unknown" for i in range(min(count, 10)))
    address = f"whatsapp:{e164}" if channel == "whatsapp" else e164
    return Inbound(sid=sid, address=address, e164=e164, channel=channel,
                   body=(form.get("Body") or "")[:5000], media_types=media)


def normalise(number: str) -> str:
    """E.164 for a sender Twilio gave us. Short codes and alphanumeric senders stay as they are.
    Raises BadWebhook on an empty sender."""
    number = number.strip()
    if not number:
        raise BadWebhook("empty sender")
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def store_inbound(rt: Runtime, inbound: Inbound, *, purpose: str,
                  staff_id: str | None = None) -> int | None:
    """Commit the message as received. Returns its id, or None for a repeated delivery."""
    now = rt.clock()
    message = Message(
        direction="in", channel=inbound.channel, purpose=purpose, sid=inbound.sid,
        staff_id=staff_id, address_hash=rt.vault.lookup_hash(inbound.address),
        address_enc=rt.vault.encrypt(inbound.address), body_enc=rt.vault.encrypt(inbound.body),
        media_count=len(inbound.media_types), media_types=",".join(inbound.media_types),
        status="received", created_at=now, updated_at=now,
    )
    try:
        with Session(rt.engine, expire_on_commit=False) as session:
            session.add(message)
            session.commit()
            return message.id
    except IntegrityError:
        log.info("repeated delivery of message %s ignored", inbound.sid)
        return None


@dataclass(frozen=True)
class Threaded:
    incident_id: int | None
    opened: bool
    auto_reply: str | None = None


def thread_message(rt: Runtime, message_id: int) -> Threaded:
    """Attach a stored defender message to its incident, opening one (and starting escalation)
    when the sender has none unresolved. Idempotent."""
    for _attempt in range(3):
        try:
            return _thread_once(rt, message_id)
        except IntegrityError:
            # another message of the same sender opened the incident first: join it
            continue
    raise RuntimeError(f"could not thread message {message_id}")


def _thread_once(rt: Runtime, message_id: int) -> Threaded:
    now = rt.clock()
    relay_ids: list[int] = []
    with Session(rt.engine, expire_on_commit=False) as session:
        message = session.exec(
            select(Message).where(Message.id == message_id).with_for_update()
        ).one()
        if message.incident_id is not None or message.status != "received":
            return Threaded(message.incident_id, opened=False)
        address = rt.vault.decrypt(message.address_enc)
        body = rt.vault.decrypt(message.body_enc) or ""
        hashes = rt.vault.lookup_hashes(address)
        if is_blocked(session, hashes, now):
            message.status = "blocked"
            session.add(Event(at=now, kind="blocked_message", actor="system",
                              detail=f"message {message.id}"))
            session.commit()
            return Threaded(None, opened=False)
        incident = session.exec(
            select(Incident).where(Incident.defender_hash.in_(hashes),
                                   Incident.status != "resolved").with_for_update()
        ).first()
        bare = "".join(ch for ch in body.upper() if ch.isalnum())
        if incident is None and bare in OPT_OUT_WORDS | OPT_IN_WORDS:
            message.status = "opt_out" if bare in OPT_OUT_WORDS else "opt_in"
            session.commit()
            return Threaded(None, opened=False)
        opened = incident is None
        if opened:
            incident = Incident(
                channel=message.channel,
                language=guess_language(body, rt.settings.languages),
                defender_hash=rt.vault.lookup_hash(address), defender_enc=message.address_enc,
                opened_at=now, next_step=0, next_step_at=now,
                silent=was_silenced(session, sender_hashes(rt.vault, address)),
            )
            session.add(incident)
            session.flush()
            session.add(Event(incident_id=incident.id, at=now, kind="opened", actor="defender",
                              detail=f"{message.channel} message"))
        else:
            session.add(Event(incident_id=incident.id, at=now, kind="message", actor="defender",
                              detail=f"{message.channel} message"))
            if incident.status == "acknowledged" and incident.acknowledged_by:
                relay_ids.append(_queue_relay(rt, session, incident, body, message))
        message.incident_id, message.status = incident.id, "threaded"
        incident.last_inbound_at = now
        if message.channel == "whatsapp" and incident.channel != "whatsapp":
            # answer on the channel the defender last used
            incident.channel, incident.defender_enc = "whatsapp", message.address_enc
        reply = None
        if opened and rt.settings.auto_reply and not incident.silent:
            reply = auto_reply(incident.language)
            session.add(Message(
                incident_id=incident.id, direction="out", channel=message.channel,
                purpose="auto_reply", address_hash=message.address_hash,
                address_enc=message.address_enc, body_enc=rt.vault.encrypt(reply),
                status="sent", created_at=now, updated_at=now,
            ))
        session.commit()
        incident_id = incident.id
    if opened:
        jobs.schedule_step(rt, incident_id, 0, now)
    for relay_id in relay_ids:
        jobs.schedule_delivery(rt, relay_id)
    return Threaded(incident_id, opened=opened, auto_reply=reply)


def _queue_relay(rt: Runtime, session: Session, incident: Incident, body: str,
                 message: Message) -> int:
    from routing.staff import staff_phone

    sender = show_number(rt.vault.decrypt(incident.defender_enc), rt.settings.reveal_numbers)
    media = f" [{message.media_count} attachment(s): {message.media_types}]" \
        if message.media_count else ""
    relay = queue_message(
        session, rt, to=staff_phone(rt, incident.acknowledged_by), purpose="relay",
        incident_id=incident.id, staff_id=incident.acknowledged_by,
        body=relay_text(incident.id, sender, body + media),
    )
    return relay.id


def is_blocked(session: Session, hashes: list[str], now) -> bool:  # noqa: ANN001
    return session.exec(
        select(Block.id).where(Block.address_hash.in_(hashes), Block.expires_at > now)
    ).first() is not None


@dataclass(frozen=True)
class AckOutcome:
    result: str  # acked | already_yours | taken | resolved | not_found
    incident_id: int
    by: str | None = None


def acknowledge(rt: Runtime, incident_id: int, staff_id: str, via: str) -> AckOutcome:
    """Take an incident. Exactly one staff member wins; escalation stops at the commit and
    everyone else paged is told who took it."""
    now = rt.clock()
    with Session(rt.engine, expire_on_commit=False) as session:
        incident, closed = _lock_unresolved(session, incident_id)
        if closed is not None:
            return closed
        if incident.status == "acknowledged":
            same = incident.acknowledged_by == staff_id
            return AckOutcome("already_yours" if same else "taken", incident_id,
                              incident.acknowledged_by)
        incident.status, incident.acknowledged_at = "acknowledged", now
        incident.acknowledged_by = staff_id
        incident.next_step = incident.next_step_at = None
        session.add(Acknowledgement(incident_id=incident_id, staff_id=staff_id, via=via, at=now))
        session.add(Event(incident_id=incident_id, at=now, kind="acknowledged", actor=staff_id,
                          detail=f"via {via}"))
        _cancel_pending_pages(session, incident_id)
        standdown = _stand_down(rt, session, incident_id, staff_id,
                                f"#{incident_id} taken by {staff_name(rt, staff_id)}. "
                                "No action needed.")
        try:
            session.commit()
        except IntegrityError:  # lost an ack race on a database without row locks
            session.rollback()
            return acknowledge(rt, incident_id, staff_id, via)
    for message_id in standdown:
        jobs.schedule_delivery(rt, message_id)
    return AckOutcome("acked", incident_id, staff_id)


def _lock_unresolved(session: Session,
                     incident_id: int) -> tuple[Incident | None, AckOutcome | None]:
    """The incident under its row lock, or the outcome to answer when it is missing or closed."""
    incident = lock_incident(session, incident_id)
    if incident is None:
        return None, AckOutcome("not_found", incident_id)
    if incident.status == "resolved":
        return incident, AckOutcome("resolved", incident_id, incident.resolved_by)
    return incident, None


def resolve(rt: Runtime, incident_id: int, staff_id: str) -> AckOutcome:
    """Close an incident; staff still being paged for it are stood down."""
    now = rt.clock()
    with Session(rt.engine, expire_on_commit=False) as session:
        incident, closed = _lock_unresolved(session, incident_id)
        if closed is not None:
            return closed
        was_open = incident.status == "open"
        incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, staff_id
        incident.next_step = incident.next_step_at = None
        session.add(Event(incident_id=incident_id, at=now, kind="resolved", actor=staff_id))
        standdown: list[int] = []
        if was_open:
            _cancel_pending_pages(session, incident_id)
            standdown = _stand_down(rt, session, incident_id, staff_id,
                                    f"#{incident_id} resolved by {staff_name(rt, staff_id)}. "
                                    "No action needed.")
        session.commit()
    for message_id in standdown:
        jobs.schedule_delivery(rt, message_id)
    return AckOutcome("acked", incident_id, staff_id)


def _cancel_pending_pages(session: Session, incident_id: int) -> None:
    session.exec(
        update(Message)
        .where(Message.incident_id == incident_id, Message.purpose == "page",
               Message.status.in_(("pending", "retrying")))
        .values(status="cancelled")
    )
    session.exec(
        update(Page).where(Page.incident_id == incident_id,
                           Page.status.in_(("pending", "retrying"))).values(status="cancelled")
    )


def _stand_down(rt: Runtime, session: Session, incident_id: int, taker: str,
                text: str) -> list[int]:
    """Queue `text` to everyone paged for the incident whose page went out, except `taker`."""
    paged = session.exec(
        select(Page.staff_id).where(
            Page.incident_id == incident_id, Page.staff_id != taker,
            # bundled pages reached their person as a digest: no stand-down per incident
            Page.status.not_in(("cancelled", "skipped", "failed", "undelivered", "bundled")),
        ).distinct()
    ).all()
    from routing.staff import staff_phone

    ids = []
    for staff_id in sorted(set(paged)):
        phone = staff_phone(rt, staff_id)
        if phone:
            ids.append(queue_message(session, rt, to=phone, body=text, purpose="standdown",
                                     incident_id=incident_id, staff_id=staff_id).id)
    return ids


def staff_name(rt: Runtime, staff_id: str | None) -> str:
    try:
        person = rt.rota.current().staff.get(staff_id or "")
    except Exception:  # a name is nice to have; the id does when the rota is unavailable
        person = None
    return person.name if person else (staff_id or "someone")
