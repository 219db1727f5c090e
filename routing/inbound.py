"""The one entry point for an inbound SMS/WhatsApp message (called by the webhook)."""

from __future__ import annotations

import logging

from sqlmodel import Session

from routing.incidents import Inbound, parse_inbound, store_inbound, thread_message
from routing.runtime import Runtime
from routing.staff import handle_staff_message
from routing.tables import Message

log = logging.getLogger(__name__)


def receive_message(rt: Runtime, form) -> str | None:  # noqa: ANN001
    """Store, then route, one inbound message. Returns the text of an immediate reply
    (TwiML <Message>) or None. Raises BadWebhook for a form Twilio would not send.

    The message is committed before anything else; if routing fails after that, the error is
    logged and the sweeper threads the stored message, so the defender is never lost.
    """
    inbound = parse_inbound(form)
    staff = _staff_sender(rt, inbound)
    message_id = store_inbound(rt, inbound, purpose="command" if staff else "defender",
                               staff_id=staff.id if staff else None)
    if message_id is None:
        return None  # a repeated delivery: everything was done the first time
    try:
        if staff is not None:
            reply = handle_staff_message(rt, staff, inbound.body)
            _record_reply(rt, message_id, inbound, staff.id, reply)
            return reply
        return thread_message(rt, message_id).auto_reply
    except Exception:
        log.exception("message %s stored but not routed; the sweeper will retry", message_id)
        return None


def _staff_sender(rt: Runtime, inbound: Inbound):  # noqa: ANN202
    try:
        rota = rt.rota.current()
    except Exception:
        log.exception("no rota: treating the sender as a defender")
        return None
    return rota.staff_by_phone(inbound.e164)


def _record_reply(rt: Runtime, message_id: int, inbound: Inbound, staff_id: str,
                  reply: str | None) -> None:
    now = rt.clock()
    with Session(rt.engine) as session:
        command = session.get(Message, message_id)
        command.status, command.updated_at = "handled", now
        if reply:
            session.add(Message(
                direction="out", channel=inbound.channel, purpose="confirm", staff_id=staff_id,
                address_hash=command.address_hash, address_enc=command.address_enc,
                body_enc=rt.vault.encrypt(reply), status="sent", created_at=now, updated_at=now,
            ))
        session.commit()
