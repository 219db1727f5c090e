"""Sending an outbox row: claim it (the claim condition), hand it to Twilio with no
transaction open, record the answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select

from routing.datakeys import unseal
from routing.locks import lock_incident
from routing.notifier import Outbound, SendError
from routing.outbox.common import (
    CLAIM_FRESH_S,
    MAX_ATTEMPTS,
    NOTIFY_TIMEOUT_S,
    STALE_SUBMIT,
    TABLES,
    Outcome,
    backoff,
    moves_forward,
    outcome_of,
    page_of,
    priority_of,
    set_status,
)
from routing.runtime import Runtime, flow_url
from routing.tables import Call, Incident, Message, Page
from routing.uow import unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """A row this process has claimed, with what the network call needs (decrypted)."""

    kind: str
    row_id: int
    purpose: str
    to: str
    body: str  # a message's text, or a call's flow URL
    channel: str
    attempts: int
    # when the transaction that wrote the row claimed it (add_message claim_now), else None
    claimed_at: datetime | None = None

    def fresh(self, now: datetime) -> bool:
        """Whether a claim made when the row was written may still be sent as it is."""
        return self.claimed_at is not None and now - self.claimed_at <= timedelta(
            seconds=CLAIM_FRESH_S
        )


def claim(rt: Runtime, kind: str, row_id: int, renewing: Claimed | None = None) -> Claimed | None:
    """Claim a due row for sending, or None: not due, not ours, or no longer wanted (then it
    is marked cancelled). Commits before returning: the send happens outside. `renewing`: the
    claim the row was written with, gone stale (`Claimed.fresh`): still ours when nobody
    claimed the row since, and then checked like any claim."""
    table = TABLES[kind]
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        incident_id = session.exec(
            select(table.incident_id).where(table.id == row_id, table.direction == "out")
        ).first()
        # the incident first, as an ACK locks it: the check below and the ACK serialise
        incident = lock_incident(session, incident_id) if incident_id else None
        row = session.exec(select(table).where(table.id == row_id).with_for_update()).first()
        if row is None or row.direction != "out":
            return None
        renewal = (
            renewing is not None
            and row.status == "submitting"
            and row.attempts == renewing.attempts
        )
        if not (renewal or _due(row, now)):
            return None
        page = page_of(session, kind, row)
        if not _still_wanted(row, page, incident):
            set_status(row, page, "cancelled", now)
            return None
        set_status(row, page, "submitting", now)  # the page too: an ACK now stands its person down
        if not renewal:
            row.attempts += 1
        if kind == "message":
            body, channel = unseal(rt.vault, row, "body") or "", row.channel
        else:
            body, channel = _call_url(rt, row, page), "voice"
        return Claimed(
            kind,
            row.id,
            row.purpose,
            unseal(rt.vault, row, "address") or "",
            body,
            channel,
            row.attempts,
        )


def _due(row: Message | Call, now: datetime) -> bool:
    if row.status == "pending":
        return True
    if row.status in ("retrying", "held"):
        return row.next_attempt_at is not None and row.next_attempt_at <= now
    return row.status == "submitting" and row.updated_at <= now - STALE_SUBMIT


def _still_wanted(row: Message | Call, page: Page | None, incident: Incident | None) -> bool:
    """A page (by SMS or call) only while its incident is open; a bridge while unresolved."""
    if page is not None:
        return incident is not None and incident.status == "open"
    if row.purpose == "bridge":
        return incident is not None and incident.status != "resolved"
    return True


def _call_url(rt: Runtime, call: Call, page: Page | None) -> str:
    if call.purpose == "notify" and page is not None:
        return flow_url(rt, "/twilio/voice/notify", incident=call.incident_id, page=page.id)
    return flow_url(rt, "/twilio/voice/bridge", incident=call.incident_id)


def transmit(rt: Runtime, claimed: Claimed) -> Outbound:
    """The network call, with no transaction open. Raises SendError."""
    if claimed.kind == "message":
        return rt.notifier.send_message(
            to=claimed.to,
            from_=sender_for(rt, claimed.channel),
            body=claimed.body,
            # our id in the URL: the callback may come before we record Twilio's sid
            status_callback=rt.callback_url(f"/twilio/status?message={claimed.row_id}"),
        )
    return rt.notifier.place_call(
        to=claimed.to,
        from_=rt.settings.number,
        url=claimed.body,
        status_callback=rt.callback_url(f"/twilio/status?call={claimed.row_id}"),
        machine_detection=claimed.purpose == "notify",
        timeout=NOTIFY_TIMEOUT_S,
    )


def sender_for(rt: Runtime, channel: str) -> str:
    """The hotline's own address on a channel: every outbound message comes from it."""
    if channel == "whatsapp" and rt.settings.whatsapp:
        return rt.settings.whatsapp
    return rt.settings.number


def record(
    rt: Runtime, claimed: Claimed, result: Outbound | None, error: SendError | None
) -> Outcome:
    """Record what the network call returned (`result`) or raised (`error`)."""
    kind, table, now = claimed.kind, TABLES[claimed.kind], rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        row = session.exec(select(table).where(table.id == claimed.row_id).with_for_update()).one()
        page = page_of(session, kind, row)
        failed = False
        if error is not None:
            row.error_code = error.code
            if error.permanent or row.attempts >= MAX_ATTEMPTS:
                log.warning("%s %s (%s) failed for good: %s", kind, row.id, row.purpose, error)
                set_status(row, page, "failed", now)
                failed = True
            else:
                row.status, row.updated_at = "retrying", now
                row.next_attempt_at = now + backoff(row.attempts)
                if page is not None:
                    page.status, page.updated_at = "retrying", now
                log.warning(
                    "%s %s: %s; retry %d at %s",
                    kind,
                    row.id,
                    error,
                    row.attempts,
                    row.next_attempt_at.time().isoformat("seconds"),
                )
                uow.send(kind, row.id, priority_of(row.purpose), at=row.next_attempt_at)
        else:
            row.sid = row.sid or result.sid
            status = result.status or "queued"
            if moves_forward(kind, row.status, status):
                set_status(row, page, status, now)
        return outcome_of(kind, row, page, failed)
