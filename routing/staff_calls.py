"""Calls to staff: notification calls of a page (1 takes it, 2 passes) and CALL bridges.

Both are placed through the outbox (routing.outbox). A notification call answered by a machine,
or in which no key is pressed, is not an acknowledgement: its page fails when the call ends
(routing.outbox.record_status). A bridge connects a staff member to the defender with the
hotline number as caller ID on both legs, so neither sees the other's personal number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session, select

from oncall import Staff
from routing import outbox
from routing.datakeys import unseal
from routing.directory import staff_name
from routing.escalation import advance_now
from routing.identity import phone_number
from routing.incidents import acknowledge, tell_taker
from routing.runtime import Runtime
from routing.tables import Call, Event, Incident, Page
from routing.uow import unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaffCallPlan:
    """What a staff member hears. kind: prompt | machine | closed | acked | taken | passed
    (notification calls); prompt | connect | closed | withheld | not_staff (bridges)."""

    kind: str
    incident_id: int
    channel: str = ""
    language: str = ""
    voicemail: bool = False
    by: str = ""  # who took or closed it (a name)
    dial: str | None = None  # the defender's number, for connect only


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")


def notify_call(
    rt: Runtime,
    incident_id: int,
    page_id: int,
    digits: str | None,
    answered_by: str | None,
    call_sid: str | None,
) -> StaffCallPlan:
    """A notification call was answered (digits None) or a key was pressed."""
    if is_machine(answered_by):
        _note_answered_by(rt, call_sid, answered_by)
        return StaffCallPlan("machine", incident_id)
    with Session(rt.engine, expire_on_commit=False) as session:
        incident = session.get(Incident, incident_id)
        page = session.get(Page, page_id)
    if incident is None or page is None or page.incident_id != incident_id:
        return StaffCallPlan("closed", incident_id)
    plan = StaffCallPlan(
        "prompt",
        incident_id,
        incident.channel,
        incident.language,
        voicemail=_has_voicemail(rt, incident_id),
    )
    if incident.status != "open" and digits is None:
        who = incident.acknowledged_by or incident.resolved_by
        return StaffCallPlan("closed", incident_id, by=staff_name(rt, who))
    if digits == "1":
        _mark_page_answered(rt, page_id)
        outcome = acknowledge(rt, incident_id, page.staff_id, via="call")
        if outcome.result in ("acked", "already_yours"):
            return StaffCallPlan(
                "acked", incident_id, incident.channel, incident.language, voicemail=plan.voicemail
            )
        return StaffCallPlan("taken", incident_id, by=staff_name(rt, outcome.by))
    if digits == "2":
        _mark_page_answered(rt, page_id)
        if advance_now(rt, incident_id, page.staff_id, "passed", "by notification call"):
            return StaffCallPlan("passed", incident_id)
        return StaffCallPlan("closed", incident_id)
    return plan


def _has_voicemail(rt: Runtime, incident_id: int) -> bool:
    with Session(rt.engine) as session:
        return (
            session.exec(
                select(Call.id).where(
                    Call.incident_id == incident_id, Call.recording_sid.is_not(None)
                )
            ).first()
            is not None
        )


def _mark_page_answered(rt: Runtime, page_id: int) -> None:
    """A key was pressed: this page reached its person (its call's end fails nothing)."""
    with unit_of_work(rt) as uow:
        session = uow.session
        page = session.exec(select(Page).where(Page.id == page_id).with_for_update()).first()
        if page is not None and page.status != "answered":
            page.status, page.updated_at = "answered", rt.clock()


def _note_answered_by(rt: Runtime, call_sid: str | None, answered_by: str | None) -> None:
    if not call_sid:
        return
    with unit_of_work(rt) as uow:
        session = uow.session
        call = session.exec(select(Call).where(Call.sid == call_sid).with_for_update()).first()
        if call is not None and not call.answered_by:
            call.answered_by = answered_by


def request_call(rt: Runtime, staff: Staff, incident_id: int) -> str:
    """CALL 17: call this staff member now and connect them to the defender. Acknowledges
    the incident for them, as a REPLY does. Returns the confirming SMS."""
    outcome = acknowledge(rt, incident_id, staff.id, via="call")
    if outcome.result == "not_found":
        return f"No incident #{incident_id}. STATUS lists open ones."
    if outcome.result == "resolved":
        return f"#{incident_id} is already resolved."
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident = uow.session.get(Incident, incident_id)
        if _dialable(rt, incident) is None and incident.channel == "web":
            return (
                f"#{incident_id} came by the web form: there is no number to call. "
                f"R{incident_id} text answers on their page."
            )
        if _dialable(rt, incident) is None:
            return (
                f"#{incident_id}: the defender's number is withheld or cannot be called. "
                f"R{incident_id} text replies by SMS where possible."
            )
        outbox.add_call(
            uow, to=staff.phone, purpose="bridge", incident_id=incident_id, staff_id=staff.id
        )
        tell_taker(uow, incident, staff.id, "is calling the defender")
        uow.session.add(
            Event(incident_id=incident_id, at=now, kind="call_requested", actor=staff.id)
        )
    took = " You took it." if outcome.result == "acked" else ""
    return (
        f"Calling you now for #{incident_id}: answer and press 1 to be connected to the "
        f"defender.{took}"
    )


def _dialable(rt: Runtime, incident: Incident | None) -> str | None:
    """The defender's number as a phone can dial it, or None (withheld, none)."""
    if incident is None or incident.defender_enc is None:
        return None
    address = unseal(rt.vault, incident, "defender") or ""
    number = address.removeprefix("whatsapp:")
    return number if number.startswith("+") else None


def bridge_call(rt: Runtime, incident_id: int, called: str, digits: str | None) -> StaffCallPlan:
    """A staff member answered a CALL (or chose to call back from a notification call)."""
    staff = rt.rota.current().staff_by_phone(phone_number(called) or called)
    if staff is None:
        return StaffCallPlan("not_staff", incident_id)
    with Session(rt.engine) as session:
        incident = session.get(Incident, incident_id)
    if incident is None or incident.status == "resolved":
        return StaffCallPlan("closed", incident_id)
    number = _dialable(rt, incident)
    if number is None:
        return StaffCallPlan("withheld", incident_id)
    if digits is None:
        return StaffCallPlan("prompt", incident_id, incident.channel, incident.language)
    if digits != "1":
        return StaffCallPlan("closed", incident_id)
    with unit_of_work(rt) as uow:
        session = uow.session
        session.add(
            Event(
                incident_id=incident_id,
                at=rt.clock(),
                kind="bridged",
                actor=staff.id,
                detail="staff connected to the defender by call",
            )
        )
    return StaffCallPlan("connect", incident_id, incident.channel, incident.language, dial=number)
