"""What the console's buttons do: each composes the very SMS command a staff member would
text (`ACK 17`, `R17 text`, `CHECKIN 17 2h` …) and hands it to routing.commands, the door SMS
uses, so the console and SMS cannot disagree about what an action does. Also internal notes,
the coordinators' break-glass reveal, and the audit log's reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, select

from oncall import Staff
from routing import outbox
from routing.access import audit
from routing.commands import handle_staff_message
from routing.datakeys import seal, unseal
from routing.locks import lock_incident
from routing.runtime import Runtime
from routing.tables import Event, Note
from routing.uow import unit_of_work

# the console's buttons, as the SMS commands they are (README "Staff SMS commands")
COMMANDS = {
    "ack": "ACK {n}",
    "pass": "PASS {n}",
    "resolve": "RESOLVE {n}",
    "call": "CALL {n}",
    "reply": "R{n} {text}",
    "checkin": "CHECKIN {n} {text}",
    "block": "BLOCK {n}",
    "unblock": "UNBLOCK {n}",
    "silent": "SILENT {n}",
}
NEEDS_TEXT = ("reply", "checkin")
NEEDS_FRESH = ("unblock",)  # a passkey again first (routing.access.FRESH)
MAX_NOTE = 5000


def act(rt: Runtime, staff: Staff, action: str, number: int, text: str = "") -> str:
    """Carry out a console button as the SMS command it is; returns the confirming words the
    SMS would have carried. Audited as `console_action` with the action's name."""
    if action not in COMMANDS:
        return f"Unknown action {action!r}."
    text = " ".join(text.split()) if action == "checkin" else text.strip()
    if action in NEEDS_TEXT and not text:
        return "Write something first." if action == "reply" else "Say when, e.g. 18:00 or 2h."
    with unit_of_work(rt) as uow:
        audit(uow.session, rt.clock(), staff.id, "console_action", number, action)
    answer = handle_staff_message(rt, staff, COMMANDS[action].format(n=number, text=text))
    return answer or "Not understood."


def add_note(rt: Runtime, staff: Staff, number: int, text: str) -> str:
    """An internal note on incident `number`, sealed under its key; never sent."""
    text = text.strip()
    if not text:
        return "The note is empty: nothing saved."
    if len(text) > MAX_NOTE:
        return f"A note holds at most {MAX_NOTE} characters: nothing saved."
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, number)
        if incident is None or incident.purged_at is not None or incident.key_id is None:
            return f"#{number} is erased or does not exist: nothing saved."
        note = Note(incident_id=number, staff_id=staff.id, created_at=now, key_id=incident.key_id)
        seal(uow.session, rt.vault, note, body=text)
        uow.session.add(note)
        audit(uow.session, now, staff.id, "note_added", number)
    return f"Note saved on #{number}."


def reveal(rt: Runtime, coordinator: Staff, number: int, reason: str) -> tuple[str | None, str]:
    """Break glass: a coordinator sees the defender's number. (number or None, what to say).
    The reason is kept as a sealed note; every other coordinator is told by SMS."""
    reason = " ".join(reason.split())
    if len(reason) < 10:
        return None, "Give the reason (10 characters or more): it is kept with the incident."
    now = rt.clock()
    rota = rt.rota.current()
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, number)
        if incident is None or incident.key_id is None:
            return None, f"#{number} is erased or does not exist."
        number_text = unseal(rt.vault, incident, "defender")
        note = Note(
            incident_id=number, staff_id=coordinator.id, created_at=now, key_id=incident.key_id
        )
        seal(uow.session, rt.vault, note, body=f"Number revealed. Reason: {reason}")
        uow.session.add(note)
        audit(uow.session, now, coordinator.id, "number_revealed", number)
        others = [c for c in rota.coordinators if c != coordinator.id]
        outbox.alert(
            uow,
            rota,
            others,
            f"Hotline: {coordinator.name} revealed the defender's number of #{number} in the "
            "console. The reason is in the incident's notes.",
        )
    return number_text, f"Told {len(others)} other coordinator(s) by SMS."


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    actor: str
    kind: str
    incident_id: int | None
    detail: str


def audit_log(
    rt: Runtime, *, since: datetime | None = None, limit: int = 500, console_only: bool = False
) -> list[AuditRow]:
    """The newest audit events first (who, what, when; events carry no content)."""
    with Session(rt.engine) as session:
        query = select(Event).order_by(Event.id.desc()).limit(limit)
        if since is not None:
            query = query.where(Event.at >= since)
        if console_only:
            query = query.where(
                or_(Event.kind.like("console_%"), Event.kind.in_(("note_added", "number_revealed")))
            )
        return [
            AuditRow(e.at, e.actor, e.kind, e.incident_id, e.detail)
            for e in session.exec(query).all()
        ]
