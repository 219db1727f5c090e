"""Sending: an outbox row handed to Twilio, and what follows when it fails for good.

`deliver` claims, sends with no transaction open, and records (routing.outbox). A page that
fails escalates at once when nobody else of its step can still answer; a staff member whose
carrier refuses our SMS (21610) is marked unreachable by SMS; a staff member whose own reply or
CALL could not be sent is told at once, with the reason in words.
"""

from __future__ import annotations

import logging

from routing import outbox
from routing.directory import staff_phone
from routing.escalation import page_failed
from routing.notifier import OPTED_OUT, Outbound, SendError
from routing.outbox import Claimed, Outcome
from routing.runtime import Runtime
from routing.staffstate import mark_opted_out
from routing.uow import unit_of_work
from routing.voice import release_hold

log = logging.getLogger(__name__)

# outbound purposes whose `staff_id` is the person the row goes to
TO_STAFF = frozenset({"page", "notify", "digest", "relay", "standdown", "confirm", "alert"})
# outbound purposes a staff member asked for: they hear when it fails
ASKED_FOR = frozenset({"reply", "bridge"})
REASONS = {
    63016: "WhatsApp allows free-form replies only within 24 h of the defender's last message",
    21610: "the number has opted out of messages from the hotline (STOP)",
    21211: "the number is not a valid phone number",
    21614: "the number cannot receive SMS",
    21612: "the number cannot be reached from the hotline number",
    21408: "messages to that country are not enabled for the hotline",
    21217: "the number is not a valid phone number",
    21214: "the number cannot be called",
    13224: "the number is not a valid phone number",
}


def reason(code: int | None) -> str:
    """What a Twilio error code means for the person who asked for the send."""
    if code in REASONS:
        return REASONS[code]
    return f"Twilio refused it (error {code})" if code else "Twilio could not be reached"


def deliver(rt: Runtime, kind: str, row_id: int, claimed: Claimed | None = None) -> Outcome | None:
    """Send one outbox row if it is due and still wanted. Idempotent: a row someone else
    claimed, or one already sent, is left alone (None).

    `claimed`: the row as the transaction that wrote it claimed it (outbox.add_message
    `claim_now`). It is sent as it is when it comes while that claim is fresh, and claimed
    again, its claim condition checked anew, when it waited longer."""
    if claimed is None or not claimed.fresh(rt.clock()):
        claimed = outbox.claim(rt, kind, row_id, renewing=claimed)
    if claimed is None:
        return None
    result: Outbound | None = None
    error: SendError | None = None
    try:
        result = outbox.transmit(rt, claimed)
    except SendError as exc:
        error = exc
    outcome = outbox.record(rt, claimed, result, error)
    follow_up(rt, outcome)
    return outcome


def message_status(
    rt: Runtime, sid: str, status: str, error_code: int | None, message_id: int | None
) -> None:
    """A status callback of one of our messages."""
    follow_up(
        rt,
        outbox.record_status(rt, "message", sid, status, error_code=error_code, row_id=message_id),
    )


def call_status(
    rt: Runtime, sid: str, status: str, answered_by: str | None, call_id: int | None
) -> None:
    """A status callback of a call, ours or a defender's. A defender's call that ends before
    anyone took it releases its incident's escalation (routing.voice.release_hold)."""
    outcome = outbox.record_status(rt, "call", sid, status, answered_by=answered_by, row_id=call_id)
    follow_up(rt, outcome)
    if (
        outcome is not None
        and outcome.purpose == "defender"
        and outcome.incident_id
        and outcome.status in outbox.CALL_ENDED
    ):
        release_hold(
            rt, outcome.incident_id, "caller_hung_up", "the call ended before anyone took it"
        )


def follow_up(rt: Runtime, outcome: Outcome | None) -> None:
    """What a failure for good sets off. Nothing for anything else."""
    if outcome is None or not outcome.failed:
        return
    if outcome.error_code == OPTED_OUT and outcome.staff_id and outcome.purpose in TO_STAFF:
        mark_opted_out(rt, outcome.staff_id, reason="carrier refused SMS (21610)")
    if outcome.page_id is not None:
        page_failed(rt, outcome.page_id)
    if outcome.purpose in ASKED_FOR and outcome.staff_id:
        _tell_requester(rt, outcome)


def _tell_requester(rt: Runtime, outcome: Outcome) -> None:
    phone = staff_phone(rt, outcome.staff_id)
    if not phone:
        return
    n = outcome.incident_id
    if outcome.purpose == "reply":
        text = (
            f"#{n}: your reply was NOT delivered: {reason(outcome.error_code)}. "
            f"CALL {n} to reach them."
        )
    else:
        text = f"#{n}: the call to you could not be placed: {reason(outcome.error_code)}."
    with unit_of_work(rt) as uow:
        outbox.add_message(
            uow, to=phone, body=text, purpose="confirm", incident_id=n, staff_id=outcome.staff_id
        )
