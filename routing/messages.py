"""An inbound message, from whoever it is: a staff member's command or a defender's words."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from oncall import Staff
from routing import intake
from routing.commands import handle_staff_message
from routing.datakeys import seal, unseal
from routing.identity import Party, is_phone_number, party
from routing.intake import TextMessage
from routing.runtime import Runtime
from routing.tables import Message
from routing.uow import unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What the webhook answers a message with, and what is left to do after.

    `reply`: the text of an immediate reply (TwiML <Message>) or None. `then`: run it once
    the answer is out (threading a defender's message, intake.thread_after_answer); None
    when nothing is left.
    """

    reply: str | None = None
    then: Callable[[], None] | None = None


def receive_message(rt: Runtime, message: TextMessage, *, defer: bool = False) -> Answer:
    """Store, then route, one inbound message.

    The message is committed before anything else; if routing fails after that, the error is
    logged and the sweeper threads the stored message, so the defender is never lost. A
    defender's message is answered first and threaded after (`Answer.then`); with `defer` (a
    busy web process) it is stored and a worker threads it. A staff command is always carried
    out here, since its answer is the reply.
    """
    who = party(message.sender, message.channel, message.sid)
    staff = staff_sender(rt, who)
    if staff is None:
        if defer:
            intake.store_for_a_worker(rt, message, who)
            return Answer()
        received = intake.answer_then_thread(rt, message, who)
        if received.row_id is None:
            return Answer()  # a repeated delivery: all done the first time
        return Answer(received.auto_reply, partial(intake.thread_after_answer, rt, received.row_id))
    received = intake.store_command(rt, message, who, staff.id)
    if received.row_id is None:
        return Answer()
    try:
        reply = handle_staff_message(rt, staff, message.body)
    except Exception:
        log.exception("staff command %s stored but not carried out", received.row_id)
        return Answer()
    _record_reply(rt, received.row_id, staff.id, reply)
    return Answer(reply)


def store_message(rt: Runtime, message: TextMessage) -> None:
    """Store one inbound message and nothing more (the fallback URL): a staff command is kept
    for the log, a defender's message is threaded by the sweeper."""
    who = party(message.sender, message.channel, message.sid)
    staff = staff_sender(rt, who)
    if staff is None:
        intake.store_only(rt, message, who)
    else:
        intake.store_command(rt, message, who, staff.id)


def staff_sender(rt: Runtime, who: Party) -> Staff | None:
    """The staff member texting as `who`, or None (a defender, or no rota)."""
    if not is_phone_number(who.key):
        return None
    try:
        rota = rt.rota.current()
    except Exception:
        log.exception("no rota: treating the sender as a defender")
        return None
    return rota.staff_by_phone(who.key)


def _record_reply(rt: Runtime, message_id: int, staff_id: str, reply: str | None) -> None:
    now = rt.clock()
    with unit_of_work(rt) as uow:
        command = uow.session.get(Message, message_id)
        command.status, command.updated_at = "handled", now
        if reply:
            confirm = Message(
                direction="out",
                channel=command.channel,
                purpose="confirm",
                staff_id=staff_id,
                address_hash=command.address_hash,
                status="sent",
                created_at=now,
                updated_at=now,
            )
            address = unseal(rt.vault, command, "address")
            seal(uow.session, rt.vault, confirm, address=address, body=reply)
            uow.session.add(confirm)
