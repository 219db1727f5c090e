"""One outbox for everything the hotline sends: SMS, WhatsApp messages and calls.

An outbound row (a `Message` or a `Call`) is written `pending` in the transaction of the state
change that caused it, and goes:

    pending -> submitting (claimed: attempt counted, committed before the network call)
    or written submitting (claimed by the transaction that wrote it: `add_message` claim_now)
            -> Twilio's statuses, only ever forward (a callback may come before or after we
               record the API's answer: both merge)
            or retrying (a transient failure; due again at `next_attempt_at`)
            or failed (permanent, or out of attempts)
            or cancelled (at its claim, the incident it was for no longer wanted it)
    held -> submitting (a surge digest, due at `next_attempt_at`: routing.bundling)

The network call runs with no transaction open and no lock held. What must hold at send time
is a claim condition, checked under the incident's row lock, the lock an ACK takes: a page or
a notification call leaves only while its incident is still open, retries included; a CALL
bridge only while it is unresolved. A page claimed before an ACK commits has been handed to
Twilio, and the ACK stands its person down. A page its step wrote claimed (under that same
lock, in a worker with a sender free) leaves as it is if a sender takes it within
CLAIM_FRESH_S, and is claimed again otherwise: the moment it is handed over stays within a
tenth of a second of the check.

Failures are classified once, by the transport (routing.notifier.SendError: permanent or
transient). This module records them; what follows a failure (escalate, tell the staff member
who asked for the send) is the caller's (routing.sending).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case
from sqlmodel import Session, select

from routing.locks import lock_incident
from routing.notifier import Outbound, SendError
from routing.runtime import Runtime, flow_url
from routing.tables import Call, Incident, Message, Page
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
STALE_SUBMIT = timedelta(seconds=30)  # a claim older than this died with its worker
# A row written claimed (add_message claim_now) is sent as it is only this soon after: later,
# it is claimed again, and its claim condition checked anew.
CLAIM_FRESH_S = 0.1
NOTIFY_TIMEOUT_S = 25  # ring a staff phone this long before Twilio gives up
# Lower goes first: a page is what someone is waiting for.
PRIORITY = {
    "page": 0,
    "notify": 0,
    "digest": 1,
    "bridge": 1,
    "reply": 1,
    "relay": 1,
    "alert": 1,
    "standdown": 2,
    "confirm": 2,
    "auto_reply": 2,
}
LOWEST = 3

MESSAGE_RANK = {
    "pending": 0,
    "retrying": 0,
    "held": 0,
    "submitting": 1,
    "accepted": 2,
    "scheduled": 2,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "read": 6,
    "canceled": 7,
    "cancelled": 7,
}
CALL_RANK = {
    "pending": 0,
    "retrying": 0,
    "submitting": 1,
    "queued": 2,
    "initiated": 3,
    "ringing": 4,
    "in-progress": 5,
    "answered": 5,
    "accepted": 5,
    "completed": 6,
    "busy": 6,
    "failed": 6,
    "no-answer": 6,
    "canceled": 6,
    "cancelled": 6,
}
MESSAGE_FAILED = frozenset({"failed", "undelivered"})
CALL_ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
TABLES = {"message": Message, "call": Call}
RANKS = {"message": MESSAGE_RANK, "call": CALL_RANK}


def priority_of(purpose: str) -> int:
    return PRIORITY.get(purpose, LOWEST)


def backoff(attempt: int) -> timedelta:
    """1 s, 2 s, 4 s, 8 s, 16 s: five retries within half a minute."""
    return timedelta(seconds=min(2 ** (attempt - 1), 30))


# --- writing ------------------------------------------------------------------------------


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
) -> Message:
    """Add an outbound message to the unit of work; it is sent after the commit (or, when
    `held_until` is given, held until then). The channel follows the address.

    `claim_now`: the caller has checked the claim condition under the lock a claim takes (a
    page: its step holds the incident's lock and found it open). In a worker with a sender
    free, the message is then written claimed and handed to that sender as it is: a claim
    is a transaction of its own, one fewer between a step and its page."""
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
        address_enc=rt.vault.encrypt(to),
        body_enc=rt.vault.encrypt(body),
        status="submitting" if claimed else "held" if held_until else "pending",
        attempts=1 if claimed else 0,
        next_attempt_at=held_until,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(message)
    uow.session.flush()
    uow.send(
        "message",
        message.id,
        priority_of(purpose),
        at=held_until,
        claimed=Claimed("message", message.id, purpose, to, body, channel, 1, claimed_at=now)
        if claimed
        else None,
    )
    return message


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
        address_enc=rt.vault.encrypt(to),
        status="pending",
        created_at=now,
        updated_at=now,
    )
    uow.session.add(call)
    uow.session.flush()
    uow.send("call", call.id, priority_of(purpose))
    return call


# --- sending ------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Outcome:
    """What a send or a status callback did. `failed`: the row failed for good just now."""

    kind: str
    row_id: int
    purpose: str
    status: str
    incident_id: int | None = None
    staff_id: str | None = None
    page_id: int | None = None
    failed: bool = False
    error_code: int | None = None


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
            _set(row, page, "cancelled", now)
            return None
        _set(row, page, "submitting", now)  # the page too: an ACK now stands its person down
        if not renewal:
            row.attempts += 1
        if kind == "message":
            body, channel = rt.vault.decrypt(row.body_enc) or "", row.channel
        else:
            body, channel = _call_url(rt, row, page), "voice"
        return Claimed(
            kind,
            row.id,
            row.purpose,
            rt.vault.decrypt(row.address_enc) or "",
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
                _set(row, page, "failed", now)
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
            if _forward(kind, row.status, status):
                _set(row, page, status, now)
        return _outcome(kind, row, page, failed)


def _forward(kind: str, old: str, new: str) -> bool:
    ranks = RANKS[kind]
    return ranks.get(new, 2) > ranks.get(old, -1)


def _set(row: Message | Call, page: Page | None, status: str, now: datetime) -> None:
    row.status, row.updated_at = status, now
    if page is None:
        return
    if row.__class__ is Call:
        # a call in progress is a page in progress; how it ends decides the page
        status = {
            "queued": "calling",
            "initiated": "calling",
            "ringing": "calling",
            "in-progress": "calling",
            "answered": "calling",
        }.get(status, status)
        if page.status in ("answered", "cancelled") and status != "cancelled":
            return
    page.status, page.updated_at = status, now
    page.error_code = row.error_code


def _outcome(kind: str, row: Message | Call, page: Page | None, failed: bool) -> Outcome:
    return Outcome(
        kind,
        row.id,
        row.purpose,
        row.status,
        row.incident_id,
        row.staff_id,
        page.id if page else None,
        failed,
        row.error_code,
    )


def page_of(session: Session, kind: str, row: Message | Call) -> Page | None:
    """The page a row carries (a digest carries many and mirrors none of them)."""
    if kind == "message":
        if row.purpose != "page":
            return None
        return session.exec(select(Page).where(Page.message_id == row.id)).first()
    if row.purpose != "notify":
        return None
    return session.exec(select(Page).where(Page.call_id == row.id)).first()


# --- status callbacks ---------------------------------------------------------------------


def record_status(
    rt: Runtime,
    kind: str,
    sid: str,
    status: str,
    *,
    error_code: int | None = None,
    answered_by: str | None = None,
    row_id: int | None = None,
) -> Outcome | None:
    """Apply a status callback. Unknown sids and backward moves change nothing (None).

    `row_id` is our id from the callback URL: a callback that comes before we recorded
    Twilio's sid finds its row by it. A message that fails, or a notification call that ends
    without a key pressed, fails its page (`Outcome.failed`).
    """
    table, status, now = TABLES[kind], status.lower(), rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        row = session.exec(select(table).where(table.sid == sid).with_for_update()).first()
        if row is None and row_id is not None:
            row = session.exec(select(table).where(table.id == row_id).with_for_update()).first()
            if row is None or row.direction != "out" or row.sid not in (None, sid):
                return None
            row.sid = sid
        if row is None:
            return None
        if kind == "call" and answered_by and not row.answered_by:
            row.answered_by = answered_by
        if not _forward(kind, row.status, status) or status not in RANKS[kind]:
            return None
        if kind == "message" and status in MESSAGE_FAILED:
            row.error_code = error_code or row.error_code
        page = page_of(session, kind, row)
        page_before = page.status if page is not None else None
        _set(row, page, status, now)
        failed = False
        if kind == "message":
            failed = page is not None and status in MESSAGE_FAILED
        elif (
            status in CALL_ENDED
            and page is not None
            and page_before not in ("answered", "cancelled")
        ):
            # ended without a key press: nobody took the page by this call
            page.status, page.updated_at, failed = "failed", now, True
        return _outcome(kind, row, page, failed)


# --- the sweeper's view -------------------------------------------------------------------


def overdue(
    session: Session, now: datetime, grace: timedelta, limit: int = 200
) -> list[tuple[str, int, int]]:
    """(kind, id, priority) of rows a sender should have claimed by now, most urgent first."""
    found: list[tuple[str, int, int]] = []
    for kind, table in TABLES.items():
        urgency = case(*[(table.purpose == p, n) for p, n in PRIORITY.items()], else_=LOWEST)
        rows = session.exec(
            select(table.id, urgency)
            .where(
                table.direction == "out",
                ((table.status == "pending") & (table.created_at <= now - grace))
                | (table.status.in_(("retrying", "held")) & (table.next_attempt_at <= now - grace))
                | ((table.status == "submitting") & (table.updated_at <= now - STALE_SUBMIT)),
            )
            .order_by(urgency, table.id)
            .limit(limit)
        ).all()
        found += [(kind, row_id, urgency_value) for row_id, urgency_value in rows]
    return sorted(found, key=lambda item: item[2])
