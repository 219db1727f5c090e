"""Writing to the outbox: a message or a call, in the transaction of the change that caused it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from oncall import Rota
from routing.datakeys import seal
from routing.outbox.common import URGENT, priority_of
from routing.outbox.send import Claimed
from routing.tables import Call, Incident, Message
from routing.uow import UnitOfWork

log = logging.getLogger(__name__)


def add_message(
    uow: UnitOfWork,
    *,
    to: str,
    body: str,
    purpose: str,
    incident_id: int | None = None,
    staff_id: str | None = None,
    held_until: datetime | None = None,
    claim_now: bool = False,
    urgent: bool = False,
) -> Message:
    """Add an outbound message to the unit of work; it is sent after the commit (or, when
    `held_until` is given, held until then). The channel follows the address.

    `claim_now`: the caller has checked the claim condition under the lock a claim takes (a
    page: its step holds the incident's lock and found it open). In a worker with a sender
    free, the message is then written claimed and handed to that sender as it is: a claim
    is a transaction of its own, one fewer between a step and its page. `urgent`: an alarm's
    page (DURESS, MISSED CHECK-IN), which leaves ahead of every other send."""
    rt, now = uow.rt, uow.rt.clock()
    claimed = (
        claim_now
        and held_until is None
        and rt.dispatch is not None
        and rt.pool is not None
        and rt.pool.has_room(uow.claimed_sends)
    )
    uow.claimed_sends += claimed
    channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
    message = Message(
        incident_id=incident_id,
        direction="out",
        channel=channel,
        purpose=purpose,
        staff_id=staff_id,
        address_hash=rt.vault.lookup_hash(to),
        status="submitting" if claimed else "held" if held_until else "pending",
        attempts=1 if claimed else 0,
        next_attempt_at=held_until,
        created_at=now,
        updated_at=now,
        key_id=_incident_key(uow, incident_id),
    )
    seal(uow.session, rt.vault, message, address=to, body=body)
    uow.session.add(message)
    uow.session.flush()
    uow.send(
        "message",
        message.id,
        URGENT if urgent else priority_of(purpose),
        at=held_until,
        claimed=Claimed("message", message.id, purpose, to, body, channel, 1, claimed_at=now)
        if claimed
        else None,
    )
    return message


def alert(uow: UnitOfWork, rota: Rota, staff_ids: Iterable[str], text: str) -> None:
    """Text `text` as an alert to each of `staff_ids` the rota has (the fallback contacts,
    the coordinators)."""
    for staff_id in staff_ids:
        if staff_id in rota.staff:
            add_message(
                uow, to=rota.staff[staff_id].phone, body=text, purpose="alert", staff_id=staff_id
            )


def add_call(uow: UnitOfWork, *, to: str, purpose: str, incident_id: int, staff_id: str) -> Call:
    """Add an outbound call (`notify`: a page by phone; `bridge`: CALL n) to the unit of
    work; it is placed after the commit."""
    rt, now = uow.rt, uow.rt.clock()
    call = Call(
        incident_id=incident_id,
        direction="out",
        purpose=purpose,
        staff_id=staff_id,
        address_hash=rt.vault.lookup_hash(to),
        status="pending",
        created_at=now,
        updated_at=now,
        key_id=_incident_key(uow, incident_id),
    )
    seal(uow.session, rt.vault, call, address=to)
    uow.session.add(call)
    uow.session.flush()
    uow.send("call", call.id, priority_of(purpose))
    return call


def _incident_key(uow: UnitOfWork, incident_id: int | None) -> str | None:
    """The data key of what is written for `incident_id` (its own, so that its purge erases
    this too); None (a key of its own) for a message of no incident."""
    incident = uow.session.get(Incident, incident_id) if incident_id is not None else None
    return incident.key_id if incident is not None else None
