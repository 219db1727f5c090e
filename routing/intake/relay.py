"""Relays: a defender's further words, passed on to whoever took their incident."""

from __future__ import annotations

from routing import outbox
from routing.datakeys import unseal
from routing.directory import staff_phone
from routing.masking import show_number
from routing.runtime import Runtime
from routing.tables import Incident, Message
from routing.texts import relay_text
from routing.uow import UnitOfWork, unit_of_work


def media_note(message: Message) -> str:
    if not message.media_count:
        return ""
    return f" [{message.media_count} attachment(s): {message.media_types}]"


def relay_in_uow(uow: UnitOfWork, incident: Incident, body: str) -> None:
    """Pass a defender's words on to whoever took their incident."""
    rt = uow.rt
    phone = staff_phone(rt, incident.acknowledged_by)
    if not phone:
        return
    sender = show_number(unseal(rt.vault, incident, "defender"), rt.settings.reveal_numbers)
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
        relay_in_uow(uow, incident, body)
    return True
