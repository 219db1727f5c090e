"""Staff SMS commands: what each does and the one confirming SMS it earns.

Only numbers listed for staff in the rota get here (routing.messages decides); the same text
from anyone else is a defender's message.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from oncall import Staff
from routing import checkins, outbox
from routing.datakeys import unseal
from routing.directory import staff_name
from routing.display import clean_text
from routing.escalation import advance_now
from routing.history import first_words_of, gist
from routing.identity import is_web
from routing.incidents import AckOutcome, acknowledge, resolve, tell_taker
from routing.locks import lock_incident
from routing.masking import show_number
from routing.parse_commands import (
    Command,
    NoSuchIncident,
    NotUnderstood,
    OptIn,
    OptOut,
    parse_staff_reply,
)
from routing.runtime import Runtime
from routing.safety import block_command, silent_command, unblock_command
from routing.staff_calls import request_call
from routing.staffstate import mark_opted_in, mark_opted_out
from routing.tables import Event, Incident, Page, StaffState
from routing.texts import CHANNEL_LABEL, HELP
from routing.uow import UnitOfWork, unit_of_work
from routing.webconversation import post_reply

log = logging.getLogger(__name__)
ERROR_REPLIES_PER_HOUR = 3  # so two bots answering each other can never loop for long
WHATSAPP_WINDOW = timedelta(hours=24)
MAX_REPLY = 1600  # Twilio refuses longer SMS and WhatsApp bodies (error 21617)


def handle_staff_message(rt: Runtime, staff: Staff, body: str) -> str | None:
    """Carry out a staff member's SMS. Returns the confirming reply, or None for no reply."""
    parsed = parse_staff_reply(body)
    if isinstance(parsed, OptOut):
        mark_opted_out(rt, staff.id, reason=f"texted {parsed.word}")
        return None  # the carrier confirms opt-outs; Twilio would refuse ours anyway
    if isinstance(parsed, OptIn):
        mark_opted_in(rt, staff.id, f"texted {parsed.word}")
        return "Welcome back: you will get hotline pages by SMS again."
    if isinstance(parsed, NoSuchIncident):
        return parsed.reply
    if isinstance(parsed, NotUnderstood):
        reply = f"Not understood ({parsed.reason}). {HELP}"
        return reply if parsed.recognised else _error_reply(rt, staff.id, reply)
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
    if len(command.text) > MAX_REPLY:
        return (
            f"#{number}: not sent: your reply has {len(command.text)} characters and one "
            f"message carries at most {MAX_REPLY}. Send it as R{number} in parts."
        )
    outcome = acknowledge(rt, number, staff.id, via="reply")
    if outcome.result in ("not_found", "resolved"):
        return _explain(rt, outcome)
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, number)
        to = unseal(rt.vault, incident, "defender")
        if to is None:
            return (
                f"#{number}: the defender's number is withheld or erased; nothing can "
                "reach them from here."
            )
        if is_web(to):
            return _reply_on_web(uow, incident, staff.id, command.text, outcome.result)
        channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
        if (
            channel == "whatsapp"
            and incident.last_inbound_at
            and now - incident.last_inbound_at > WHATSAPP_WINDOW
        ):
            return (
                f"#{number}: WhatsApp allows replies only within 24 h of the defender's last "
                f"message. CALL {number} instead."
            )
        outbox.add_message(
            uow, to=to, body=command.text, purpose="reply", incident_id=number, staff_id=staff.id
        )
        tell_taker(uow, incident, staff.id, f'replied to the defender: "{command.text[:60]}"')
        uow.session.add(
            Event(
                incident_id=number,
                at=now,
                kind="replied",
                actor=staff.id,
                detail=f"{channel} reply",
            )
        )
    sender = show_number(to, rt.settings.reveal_numbers)
    took = " You took it." if outcome.result == "acked" else ""
    return f"#{number}: reply sent to {sender} by {CHANNEL_LABEL[channel]}.{took}"


def _reply_on_web(
    uow: UnitOfWork, incident: Incident, staff_id: str, text: str, result: str
) -> str:
    """R17 on a web form incident: the reply waits on the defender's receipt page."""
    post_reply(uow, incident, text, staff_id)
    tell_taker(uow, incident, staff_id, f'replied on the web form: "{text[:60]}"')
    uow.session.add(
        Event(
            incident_id=incident.id,
            at=uow.rt.clock(),
            kind="replied",
            actor=staff_id,
            detail="web reply",
        )
    )
    took = " You took it." if result == "acked" else ""
    return (
        f"#{incident.id}: reply posted on the web form; the defender reads it with their "
        f"receipt. Nothing sent by SMS.{took}"
    )


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
    return request_call(rt, staff, command.incident)


STATUS_LINES = 8
STATUS_NEW_LINES = 5


def _status(rt: Runtime, staff: Staff, command: Command) -> str:
    """STATUS: the oldest unresolved incidents; STATUS NEW: the newest, with first words (in
    a flood the newest are what staff need to see first)."""
    now = rt.clock()
    newest = command.text == "new"
    unresolved = Incident.status != "resolved"
    with Session(rt.engine) as session:
        total = session.exec(select(func.count(Incident.id)).where(unresolved)).one()
        order = Incident.id.desc() if newest else Incident.id
        rows = session.exec(
            select(Incident)
            .where(unresolved)
            .order_by(order)
            .limit(STATUS_NEW_LINES if newest else STATUS_LINES)
        ).all()
        said = first_words_of(rt, session, [i.id for i in rows]) if newest else {}
        words = {number: gist(text, 30) for number, text in said.items()}
        notes = checkins.status_notes(rt, session)
        resolved_noted = (
            set(
                session.exec(
                    select(Incident.id).where(
                        Incident.id.in_(list(notes)), Incident.status == "resolved"
                    )
                ).all()
            )
            if notes
            else set()
        )
    if not rows and not notes:
        return "No open incidents."
    lines = []
    for incident in rows:
        age = int((now - incident.opened_at).total_seconds() // 60)
        who = (
            f"taken by {staff_name(rt, incident.acknowledged_by)}"
            if incident.status == "acknowledged"
            else "NOT TAKEN"
        )
        said = (
            f' "{clean_text(words[incident.id], one_line=True)}"' if words.get(incident.id) else ""
        )
        lines.append(
            f"#{incident.id} {CHANNEL_LABEL.get(incident.channel, '')} {age}m {who}"
            f"{said}" + notes.pop(incident.id, "")
        )
    lines += [
        f"#{number} resolved,{note}"
        for number, note in sorted(notes.items())
        if number in resolved_noted
    ]
    more = f"\n+{total - len(rows)} more" if total > len(rows) else ""
    return "\n".join(lines) + more


def _help(rt: Runtime, staff: Staff, command: Command) -> str:
    return HELP


def _waiting_for(rt: Runtime, staff_id: str) -> list[int]:
    """Open incidents this person was paged for, oldest first."""
    with Session(rt.engine) as session:
        rows = session.exec(
            select(Incident.id)
            .join(Page, Page.incident_id == Incident.id)
            .where(Page.staff_id == staff_id, Incident.status == "open")
            .distinct()
            .order_by(Incident.id)
        ).all()
    return list(rows)


def _error_reply(rt: Runtime, staff_id: str, text: str) -> str | None:
    """`text`, unless this number already had its share of error replies this hour."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        state = session.get(StaffState, staff_id) or StaffState(staff_id=staff_id)
        if state.error_window_start is None or now - state.error_window_start > timedelta(hours=1):
            state.error_window_start, state.error_replies = now, 0
        state.error_replies += 1
        session.add(state)
        allowed = state.error_replies <= ERROR_REPLIES_PER_HOUR
    if not allowed:
        log.info(
            "error reply to %s suppressed (over %d this hour)", staff_id, ERROR_REPLIES_PER_HOUR
        )
    return text if allowed else None


HANDLERS = {
    "ack": _ack,
    "reply": _reply,
    "pass": _pass,
    "resolve": _resolve,
    "call": _call,
    "status": _status,
    "help": _help,
    "block": block_command,
    "unblock": unblock_command,
    "silent": silent_command,
    "checkin": checkins.checkin_command,
}
