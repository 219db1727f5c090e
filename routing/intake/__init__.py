"""The one intake: every call and message a defender sends comes in here.

Every channel hands routing a typed, validated contact (webhooks parse Twilio's forms; routing
never sees one): a `TextMessage` (SMS, MMS, WhatsApp), a `VoiceCall`, or a `WebMessage` (the
secure web form, routing.webform). The intake stores it first (`store`), then resolves the
person behind it (routing.identity) and opens or joins their incident (`thread`), in a
savepoint of the same transaction, so nothing a defender sent is lost when the threading fails.

Each entry point below is named for what its caller means:

- `answer_then_thread`: a defender's text message, alone in its web process. Stored, answered
  (the answer carries the auto-reply when the message will open an incident: decided from
  reads alone), and threaded once the answer is out (`thread_after_answer`). The row's status
  says what its answer carried (`ANSWERED`), so whoever threads it, that webhook or the sweeper
  after a crash, records that auto-reply as sent instead of sending another.
- `store_for_a_worker`: the same message in a busy web process. Stored with the others
  arriving at the same moment (routing.groupcommit); a worker threads the backlog in batches
  (`thread_batch`). Storing is a fifth of the work, so a surge is taken in at the rate the
  database can write rows; the auto-reply then goes out through the outbox.
- `store_command`: a staff member's command: stored for the log, never threaded.
- `store_only`: the fallback URL's message: stored, and threaded by the sweeper (`thread`).
- `take_call` and `take_web_message`: threaded before their answer, which needs the incident.
- `take_late`: what reached Twilio while this server was down (routing.backfill), threaded
  at once and its new incident marked so.

A repeated delivery (the same sid) returns the first delivery's incident and does nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from routing.identity import Party, party
from routing.intake.contacts import Contact, Received, TextMessage, VoiceCall, WebMessage
from routing.intake.relay import relay_to_taker
from routing.intake.store import (
    incident_of,
    store_and_answer,
    store_for_a_worker,
    stored_once,
    stored_row,
)
from routing.intake.thread import thread, thread_after_answer, thread_batch, thread_in_savepoints
from routing.runtime import Runtime
from routing.tables import ARRIVED_WHILE_DOWN, Event
from routing.uow import unit_of_work

__all__ = [
    "Contact",
    "Received",
    "TextMessage",
    "VoiceCall",
    "WebMessage",
    "answer_then_thread",
    "relay_to_taker",
    "store_command",
    "store_for_a_worker",
    "store_only",
    "take_call",
    "take_late",
    "take_web_message",
    "thread",
    "thread_after_answer",
    "thread_batch",
]

log = logging.getLogger(__name__)


def answer_then_thread(rt: Runtime, message: TextMessage, who: Party | None = None) -> Received:
    """Store a defender's message and decide its answer (`Received.auto_reply`); the caller
    threads it once the answer is out (`Received.to_thread`, `thread_after_answer`)."""
    return store_and_answer(rt, message, who or _sender(message))


def store_command(rt: Runtime, message: TextMessage, who: Party, staff_id: str) -> Received:
    """Store a staff member's command, as sent by `staff_id`; it is never threaded."""
    return _store(rt, message, who, staff_id=staff_id)


def store_only(rt: Runtime, contact: Contact, who: Party | None = None) -> Received:
    """Store a contact and nothing more (the fallback URL): the sweeper threads it."""
    return _store(rt, contact, who or _sender(contact))


def take_call(
    rt: Runtime, call: VoiceCall, *, hold: timedelta | None = None, schedule: bool = True
) -> Received:
    """Store a call and thread it at once: its answer needs the incident. `hold`: how long a
    new incident's escalation waits (the call is being rung through to staff). `schedule`:
    False keeps Redis out of it (the fallback URL); the sweeper then runs the first step.

    When threading fails, the call stays stored for the sweeper and the error is raised
    after the commit: the caller is on the line, and the voice step answers with voicemail."""
    return _store(rt, call, _sender(call), thread_it=True, hold=hold, schedule=schedule)


def take_late(rt: Runtime, contact: TextMessage | VoiceCall) -> Received:
    """A defender's contact that reached Twilio while this server was down (routing.backfill):
    stored and threaded at once; an incident it opens is marked ARRIVED_WHILE_DOWN in the same
    transaction, so its first page already says so."""
    return _store(rt, contact, _sender(contact), thread_it=True, late=True)


def take_web_message(rt: Runtime, message: WebMessage) -> Received:
    """Store a web form message and thread it at once: the receipt page shows its incident.
    When threading fails the message stays stored, and the sweeper threads it."""
    return _store(rt, message, _sender(message), thread_it=True)


def _sender(contact: Contact) -> Party:
    return party(contact.sender, contact.channel, contact.sid)


def _store(
    rt: Runtime,
    contact: Contact,
    who: Party,
    *,
    staff_id: str | None = None,
    thread_it: bool = False,
    hold: timedelta | None = None,
    schedule: bool = True,
    late: bool = False,
) -> Received:
    """One transaction: the contact is written first, and (`thread_it`) threaded in a
    savepoint after it. When threading fails, only the savepoint is undone: the contact is
    committed as received and the sweeper threads it. One commit instead of two keeps the
    webhook short (and, on SQLite, takes the write lock once)."""
    row, key = stored_row(rt, contact, who, staff_id)
    failure: Exception | None = None
    with unit_of_work(rt) as uow:
        if not stored_once(uow, row, key, contact):
            return Received(None, incident_id=incident_of(rt, contact))
        received = Received(row.id)
        if thread_it:
            body = getattr(contact, "body", "")
            try:
                received = thread_in_savepoints(uow, contact.kind, row, who, body, hold, schedule)
                if late and received.opened:
                    uow.session.add(
                        Event(
                            incident_id=received.incident_id,
                            at=rt.clock(),
                            kind=ARRIVED_WHILE_DOWN,
                            actor="system",
                            detail=contact.kind,
                        )
                    )
            except Exception as exc:
                failure = exc
                log.exception(
                    "%s %s stored but not routed; the sweeper will retry", contact.kind, row.id
                )
    if failure is not None and isinstance(contact, VoiceCall) and not late:
        raise failure  # the caller is on the line: the voice step answers with the voicemail
    return received
