"""Staff SMS commands: what each does and the one confirming SMS it earns.

Only numbers listed for staff in the rota get here (routing.inbound decides); the same text
from anyone else is a defender's message.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session, select

from oncall import Staff
from routing import jobs
from routing.commands import (
    Command,
    NoSuchIncident,
    NotUnderstood,
    OptIn,
    OptOut,
    parse_staff_reply,
)
from routing.delivery import queue_message
from routing.escalation import advance_now
from routing.incidents import AckOutcome, acknowledge, resolve, staff_name
from routing.locks import lock_incident
from routing.masking import show_number
from routing.runtime import Runtime
from routing.safety import block_command, silent_command, unblock_command
from routing.tables import Event, Incident, Page, StaffState
from routing.texts import CHANNEL_LABEL, HELP

log = logging.getLogger(__name__)
ERROR_REPLIES_PER_HOUR = 3  # so two bots answering each other can never loop for long
WHATSAPP_WINDOW = timedelta(hours=24)


def staff_phone(rt: Runtime, staff_id: str | None) -> str | None:
    try:
        person = rt.rota.current().staff.get(staff_id or "")
    except Exception:
        return None
    return person.phone if person else None


def handle_staff_message(rt: Runtime, staff: Staff, body: str) -> str | None:
    """Carry out a staff member's SMS. Returns the confirming reply, or None for no reply."""
    parsed = parse_staff_reply(body)
    if isinstance(parsed, OptOut):
        mark_opted_out(rt, staff.id, reason=f"texted {parsed.word}")
        return None  # the carrier confirms opt-outs; Twilio would refuse ours anyway
    if isinstance(parsed, OptIn):
        _set_opted_out(rt, staff.id, False, f"texted {parsed.word}")
        return "Welcome back: you will get hotline pages by SMS again."
    if isinstance(parsed, NoSuchIncident):
        return parsed.reply
    if isinstance(parsed, NotUnderstood):
        return _error_reply(rt, staff.id, f"Not understood ({parsed.reason}). {HELP}")
    handler = HANDLERS.get(parsed.name)
    if handler is None:
        return f"{parsed.name.upper()} is not available on this hotline. {HELP}"
    return handler(rt, staff, parsed)


def _ack(rt: Runtime, staff: Staff, command: Command) -> str:
    number = command.incident
    if number is None:
        waiting = _waiting_for(rt, staff.id)
        if not waiting:
            return "No incident is waiting for you. STATUS lists open ones."
        if len(waiting) > 1:
            listed = ", ".join(f"#{n}" for n in waiting[:6])
            return f"{len(waiting)} incidents wait: {listed}. Reply ACK {waiting[0]} to take one."
        number = waiting[0]
    outcome = acknowledge(rt, number, staff.id, via="ack")
    if outcome.result == "acked":
        return f"You took #{number}. R{number} text to reply, CALL {number}, RESOLVE {number}."
    return _explain(rt, outcome)


def _explain(rt: Runtime, outcome: AckOutcome) -> str:
    n = outcome.incident_id
    return {
        "not_found": f"No incident #{n}. STATUS lists open ones.",
        "resolved": f"#{n} is already resolved.",
        "taken": f"#{n} was already taken by {staff_name(rt, outcome.by)}.",
        "already_yours": f"#{n} is already yours. R{n} text to reply, RESOLVE {n} when done.",
    }[outcome.result]


def _reply(rt: Runtime, staff: Staff, command: Command) -> str:
    number = command.incident
    outcome = acknowledge(rt, number, staff.id, via="reply")
    if outcome.result in ("not_found", "resolved"):
        return _explain(rt, outcome)
    now = rt.clock()
    with Session(rt.engine, expire_on_commit=False) as session:
        incident = lock_incident(session, number)
        if (incident.channel == "whatsapp" and incident.last_inbound_at
                and now - incident.last_inbound_at > WHATSAPP_WINDOW):
            return (f"#{number}: WhatsApp allows replies only within 24 h of the defender's last "
                    f"message. CALL {number} instead.")
        to = rt.vault.decrypt(incident.defender_enc)
        channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
        message = queue_message(session, rt, to=to, body=command.text, purpose="reply",
                                channel=channel, incident_id=number, staff_id=staff.id)
        session.add(Event(incident_id=number, at=now, kind="replied", actor=staff.id,
                          detail=f"{channel} reply"))
        session.commit()
        message_id = message.id
    jobs.schedule_delivery(rt, message_id)
    sender = show_number(to, rt.settings.reveal_numbers)
    took = " You took it." if outcome.result == "acked" else ""
    return f"#{number}: reply sent to {sender} by {CHANNEL_LABEL[channel]}.{took}"


def _pass(rt: Runtime, staff: Staff, command: Command) -> str:
    number = command.incident
    if advance_now(rt, number, staff.id, "passed"):
        return f"#{number} passed: paging the next level now."
    with Session(rt.engine) as session:
        incident = session.get(Incident, number)
    if incident is None:
        return f"No incident #{number}. STATUS lists open ones."
    if incident.status == "acknowledged":
        return f"#{number} was already taken by {staff_name(rt, incident.acknowledged_by)}."
    return f"#{number} is already resolved."


def _resolve(rt: Runtime, staff: Staff, command: Command) -> str:
    outcome = resolve(rt, command.incident, staff.id)
    if outcome.result == "acked":
        return f"#{command.incident} resolved. Thank you."
    return _explain(rt, outcome)


def _call(rt: Runtime, staff: Staff, command: Command) -> str:
    from routing.staff_calls import request_call

    return request_call(rt, staff, command.incident)


def _status(rt: Runtime, staff: Staff, command: Command) -> str:
    now = rt.clock()
    with Session(rt.engine) as session:
        rows = session.exec(
            select(Incident).where(Incident.status != "resolved").order_by(Incident.id)
        ).all()
    if not rows:
        return "No open incidents."
    lines = []
    for incident in rows[:8]:
        age = int((now - incident.opened_at).total_seconds() // 60)
        who = (f"taken by {staff_name(rt, incident.acknowledged_by)}"
               if incident.status == "acknowledged" else "NOT TAKEN")
        lines.append(f"#{incident.id} {CHANNEL_LABEL.get(incident.channel, '')} {age}m {who}")
    more = f"\n+{len(rows) - 8} more" if len(rows) > 8 else ""
    return "\n".join(lines) + more


def _help(rt: Runtime, staff: Staff, command: Command) -> str:
    return HELP


def _waiting_for(rt: Runtime, staff_id: str) -> list[int]:
    """Open incidents this person was paged for, oldest first."""
    with Session(rt.engine) as session:
        rows = session.exec(
            select(Incident.id).join(Page, Page.incident_id == Incident.id)
            .where(Page.staff_id == staff_id, Incident.status == "open")
            .distinct().order_by(Incident.id)
        ).all()
    return list(rows)


def _error_reply(rt: Runtime, staff_id: str, text: str) -> str | None:
    """`text`, unless this number already had its share of error replies this hour."""
    now = rt.clock()
    with Session(rt.engine) as session:
        state = session.get(StaffState, staff_id) or StaffState(staff_id=staff_id)
        if state.error_window_start is None or now - state.error_window_start > timedelta(hours=1):
            state.error_window_start, state.error_replies = now, 0
        state.error_replies += 1
        session.add(state)
        session.commit()
        allowed = state.error_replies <= ERROR_REPLIES_PER_HOUR
    if not allowed:
        log.info("error reply to %s suppressed (over %d this hour)", staff_id,
                 ERROR_REPLIES_PER_HOUR)
    return text if allowed else None


def mark_opted_out(rt: Runtime, staff_id: str, reason: str) -> None:
    """Record that SMS can no longer reach this person and tell the fallback contacts once."""
    if not _set_opted_out(rt, staff_id, True, reason):
        return
    try:
        rota = rt.rota.current()
    except Exception:
        log.exception("rota unavailable: fallback contacts not told that %s went dark", staff_id)
        return
    name = staff_name(rt, staff_id)
    person = rota.staff.get(staff_id)
    calls = "They get calls only." if person and "call" in person.notify else \
        "They cannot be paged until they text START."
    text = f"Hotline alert: {name}'s pager went dark ({reason}). {calls}"
    ids = []
    with Session(rt.engine) as session:
        for contact in rota.fallback:
            if contact != staff_id and contact in rota.staff:
                ids.append(queue_message(session, rt, to=rota.staff[contact].phone, body=text,
                                         purpose="alert", staff_id=contact).id)
        session.commit()
    for message_id in ids:
        jobs.schedule_delivery(rt, message_id)


def _set_opted_out(rt: Runtime, staff_id: str, value: bool, reason: str) -> bool:
    """Returns True when the flag changed."""
    now = rt.clock()
    with Session(rt.engine) as session:
        state = session.get(StaffState, staff_id)
        if state is None:
            if not value:
                return False
            state = StaffState(staff_id=staff_id)
        elif state.opted_out == value:
            return False
        state.opted_out, state.opted_out_at = value, now if value else None
        session.add(state)
        session.add(Event(at=now, kind="staff_opted_out" if value else "staff_opted_in",
                          actor=staff_id, detail=reason))
        session.commit()
    log.warning("staff %s %s (%s)", staff_id, "opted out" if value else "opted back in", reason)
    return True


HANDLERS = {
    "ack": _ack, "reply": _reply, "pass": _pass, "resolve": _resolve, "call": _call,
    "status": _status, "help": _help,
    "block": block_command, "unblock": unblock_command, "silent": silent_command,
}
