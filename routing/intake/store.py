"""Storing a contact: the row that records it, written once (a repeated delivery changes
nothing), and the answer a defender's message gets before it is threaded.

A busy web process stores a message with the others arriving at the same moment
(routing.groupcommit) and leaves the threading to a worker.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from routing import jobqueue
from routing.datakeys import data_key, where
from routing.groupcommit import GroupCommit
from routing.identity import Party, has_unresolved, is_blocked, person_hashes, was_silenced
from routing.intake.contacts import Contact, Received, TextMessage, VoiceCall, WebMessage
from routing.language import guess_language
from routing.parse_commands import is_opt_out
from routing.runtime import Runtime
from routing.tables import ANSWERED, Call, DataKey, Message
from routing.texts import auto_reply
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


def stored_once(uow: UnitOfWork, row: Message | Call, key: DataKey, contact: Contact) -> bool:
    """Write `row`, which records `contact`, with its data `key`. False for a repeated
    delivery (its sid is stored already): then nothing is written and the transaction is
    rolled back."""
    uow.session.add(key)
    uow.session.add(row)
    try:
        uow.session.flush()
    except IntegrityError:
        log.info("repeated delivery of %s %s ignored", contact.kind, contact.sid)
        uow.rollback()
        return False
    return True


def store_and_answer(rt: Runtime, message: TextMessage, who: Party) -> Received:
    """Store a defender's message and decide its answer, threading nothing yet."""
    row, key = stored_row(rt, message, who, None)
    with unit_of_work(rt) as uow:
        if not stored_once(uow, row, key, message):
            return Received(None, incident_id=incident_of(rt, message))
        reply = _answer(uow, who, message)
        if reply is not None:
            row.status = ANSWERED
    return Received(row.id, auto_reply=reply, to_thread=True)


def _answer(uow: UnitOfWork, who: Party, message: TextMessage) -> str | None:
    """The auto-reply to answer `message` with, read as the threading will decide it: when
    it opens an incident (no block, none unresolved) that is not silent. A contact of the
    same person committed in between can make the threading join an incident after all:
    the defender then has one auto-reply more, which the threading records as sent."""
    rt, session = uow.rt, uow.session
    if not rt.settings.auto_reply or is_opt_out(message.body):
        return None
    hashes = person_hashes(rt.vault, who.key)
    with session.no_autoflush:  # the one row written is this message
        if is_blocked(session, hashes, rt.clock()) or has_unresolved(session, hashes):
            return None
        if who.identified and was_silenced(session, hashes):
            return None
    return auto_reply_to(rt, message.body)


def auto_reply_to(rt: Runtime, body: str) -> str:
    """The auto-reply to a first message `body`: in the language its incident will have."""
    return auto_reply(language_of(rt, body))


def language_of(rt: Runtime, body: str) -> str:
    return guess_language(body, rt.settings.languages) if body else rt.settings.default_language


def store_for_a_worker(rt: Runtime, message: TextMessage, who: Party) -> Received:
    """Store a defender's message with the others this process receives at the same time
    (routing.groupcommit), and ask a worker to thread it."""
    try:
        key = data_key(rt.vault)
        row_id = _group_commit(rt).insert(_message_fields(rt, message, who, None, key.id), key)
    except IntegrityError:
        log.info("repeated delivery of message %s ignored", message.sid)
        return Received(None, incident_id=incident_of(rt, message))
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
    rt: Runtime, message: TextMessage | WebMessage, who: Party, staff_id: str | None, key_id: str
) -> dict:
    """The columns of the row that records `message` as received, sealed under `key_id`."""
    now, media = rt.clock(), json.dumps(message.media_urls) if message.media_urls else None
    return dict(
        direction="in",
        channel=message.channel,
        purpose="command" if staff_id else "defender",
        sid=message.sid,
        staff_id=staff_id,
        **_sender_fields(rt, message, who, Message, key_id),
        body_enc=rt.vault.seal(key_id, where(Message, "body"), message.body),
        media_count=len(message.media_types),
        media_types=",".join(message.media_types),
        media_enc=rt.vault.seal(key_id, where(Message, "media"), media),
        key_id=key_id,
        status="received",
        created_at=now,
        updated_at=now,
    )


def stored_row(
    rt: Runtime, contact: Contact, who: Party, staff_id: str | None
) -> tuple[Message | Call, DataKey]:
    """The row that records `contact` as received, and the data key of its own it is sealed
    under (routing.datakeys): neither is added to a session yet."""
    key = data_key(rt.vault)
    if isinstance(contact, TextMessage | WebMessage):
        return Message(**_message_fields(rt, contact, who, staff_id, key.id)), key
    now = rt.clock()
    call = Call(
        direction="in",
        purpose="defender",
        sid=contact.sid,
        **_sender_fields(rt, contact, who, Call, key.id),
        status="ringing",
        created_at=now,
        updated_at=now,
        key_id=key.id,
    )
    return call, key


def _sender_fields(rt: Runtime, contact: Contact, who: Party, table: type, key_id: str) -> dict:
    """Who a received contact came from, as its row keeps it: hashed and sealed."""
    shown = who.address or contact.sender  # what the log keeps: "anonymous" stays as it came
    return dict(
        address_hash=rt.vault.lookup_hash(shown),
        address_enc=rt.vault.seal(key_id, where(table, "address"), shown),
    )


def incident_of(rt: Runtime, contact: Contact) -> int | None:
    table = Call if isinstance(contact, VoiceCall) else Message
    with unit_of_work(rt) as uow:
        return uow.session.exec(select(table.incident_id).where(table.sid == contact.sid)).first()
