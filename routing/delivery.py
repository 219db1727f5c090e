"""Outbound messages: queued as rows, claimed, sent once, their outcome recorded.

The lifecycle of an outbound `Message`: `pending` (row written with its transaction) ->
`submitting` (claimed by one worker, attempt counted, committed before the HTTP call) ->
Twilio's `queued`/`sent`/`delivered`, or `retrying` (transient error, with `next_attempt_at`),
`held` (a surge digest waiting for `next_attempt_at`, see routing.bundling),
`failed` (permanent), `cancelled` (a page whose incident was acknowledged meanwhile).

A page is sent while holding the incident's row lock (`SELECT … FOR UPDATE` on PostgreSQL, the
`BEGIN IMMEDIATE` write lock on SQLite), and only if the incident is still open; an ack takes
the same lock, so no page leaves after an ack is committed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session, select

from routing.locks import lock_incident
from routing.notifier import SendError
from routing.runtime import Runtime
from routing.tables import Message, Page

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
STALE_SUBMIT = timedelta(seconds=30)  # a claim older than this died with its worker
STATUS_RANK = {
    "pending": 0, "retrying": 0, "held": 0, "submitting": 1,
    "accepted": 2, "scheduled": 2, "queued": 2,
    "sending": 3, "sent": 4, "delivered": 5, "undelivered": 5, "failed": 5, "read": 6,
    "canceled": 7, "cancelled": 7,
}
FAILED = frozenset({"failed", "undelivered"})


def backoff(attempt: int) -> timedelta:
    """1 s, 2 s, 4 s, 8 s, 16 s: five retries within half a minute."""
    return timedelta(seconds=min(2 ** (attempt - 1), 30))


def queue_message(session: Session, rt: Runtime, *, to: str, body: str, purpose: str,
                  channel: str = "sms", incident_id: int | None = None,
                  staff_id: str | None = None) -> Message:
    """Add a pending outbound message to `session`; send it with schedule_delivery after
    commit (routing.jobs)."""
    now = rt.clock()
    message = Message(
        incident_id=incident_id, direction="out", channel=channel, purpose=purpose,
        staff_id=staff_id, address_hash=rt.vault.lookup_hash(to),
        address_enc=rt.vault.encrypt(to), body_enc=rt.vault.encrypt(body), status="pending",
        created_at=now, updated_at=now,
    )
    session.add(message)
    session.flush()
    return message


def sender_for(rt: Runtime, channel: str) -> str:
    """The hotline's own address on a channel: every outbound message comes from it."""
    if channel == "whatsapp" and rt.settings.whatsapp:
        return rt.settings.whatsapp
    return rt.settings.number


def deliver_message(rt: Runtime, message_id: int) -> None:
    """Send one pending outbound message. Idempotent: anything but a due, unclaimed (or
    stale) message is left alone."""
    if not _claim(rt, message_id):
        return
    failed_page = None
    with Session(rt.engine, expire_on_commit=False) as session:
        # held across the send, so a status callback racing our commit waits for the sid
        message = session.exec(
            select(Message).where(Message.id == message_id).with_for_update()
        ).one()
        page = _page_of(session, message)
        if page is not None:
            incident = lock_incident(session, page.incident_id)
            if incident.status != "open":
                _set_status(message, page, "cancelled", rt)
                session.commit()
                return
        try:
            result = rt.notifier.send_message(
                to=rt.vault.decrypt(message.address_enc),
                from_=sender_for(rt, message.channel),
                body=rt.vault.decrypt(message.body_enc),
                # our id in the URL: the callback may beat the commit of Twilio's sid
                status_callback=rt.callback_url(f"/twilio/status?message={message.id}"),
            )
        except SendError as exc:
            message.error_code = exc.code
            if exc.permanent or message.attempts >= MAX_ATTEMPTS:
                log.warning("message %s to %s failed for good: %s", message.id,
                            message.staff_id or "defender", exc)
                _set_status(message, page, "failed", rt)
                failed_page = page
            else:
                message.status = "retrying"
                message.next_attempt_at = rt.clock() + backoff(message.attempts)
                log.warning("message %s: %s; retry %d at %s", message.id, exc,
                            message.attempts, message.next_attempt_at.time().isoformat("seconds"))
        else:
            message.sid = message.sid or result.sid
            if STATUS_RANK.get(result.status, 2) > STATUS_RANK.get(message.status, -1):
                _set_status(message, page, result.status, rt)
        session.commit()
        retry_at = message.next_attempt_at if message.status == "retrying" else None
    if retry_at is not None:
        from routing.jobs import schedule_delivery

        schedule_delivery(rt, message_id, at=retry_at)
    if failed_page is not None:
        from routing.escalation import page_failed

        page_failed(rt, failed_page.id)


def _page_of(session: Session, message: Message) -> Page | None:
    """The page a message carries (a digest carries many and mirrors none of them)."""
    if message.purpose != "page":
        return None
    return session.exec(select(Page).where(Page.message_id == message.id)).first()


def _claim(rt: Runtime, message_id: int) -> bool:
    """Mark the message `submitting` and count the attempt, committed before the send."""
    now = rt.clock()
    with Session(rt.engine) as session:
        message = session.exec(
            select(Message).where(Message.id == message_id).with_for_update()
        ).first()
        if message is None or message.direction != "out":
            return False
        due = message.status == "pending" or (
            message.status in ("retrying", "held") and message.next_attempt_at <= now
        ) or (message.status == "submitting" and message.updated_at <= now - STALE_SUBMIT)
        if not due:
            return False
        message.status, message.updated_at = "submitting", now
        message.attempts += 1
        session.commit()
    return True


def _set_status(message: Message, page: Page | None, status: str, rt: Runtime) -> None:
    message.status, message.updated_at = status, rt.clock()
    if page is not None:
        page.status = status
        page.error_code = message.error_code


def record_status(rt: Runtime, sid: str, status: str, error_code: int | None, *,
                  message_id: int | None = None) -> bool:
    """Apply a delivery status callback. Unknown sids and backward moves change nothing.

    Returns True when the status moved forward. A page that failed or went undelivered
    triggers the next contact or level at once.
    """
    status = status.lower()
    with Session(rt.engine, expire_on_commit=False) as session:
        message = session.exec(
            select(Message).where(Message.sid == sid).with_for_update()
        ).first()
        if message is None and message_id is not None:
            # the callback beat the sender's commit: that commit holds this row's lock
            message = session.exec(
                select(Message).where(Message.id == message_id).with_for_update()
            ).first()
            if message is None or message.direction != "out" or message.sid not in (None, sid):
                return False
            message.sid = sid
        if message is None:
            return False
        if STATUS_RANK.get(status, -1) <= STATUS_RANK.get(message.status, -1):
            return False
        page = _page_of(session, message)
        message.error_code = error_code or message.error_code
        _set_status(message, page, status, rt)
        session.commit()
    if page is not None and status in FAILED:
        from routing.escalation import page_failed

        page_failed(rt, page.id)
    return True


def due_messages(session: Session, rt: Runtime, grace: timedelta) -> list[int]:
    """Outbound messages the queue should have sent by now (for the sweeper)."""
    now = rt.clock()
    rows = session.exec(
        select(Message.id).where(
            Message.direction == "out",
            (
                ((Message.status == "pending") & (Message.created_at <= now - grace))
                | (Message.status.in_(("retrying", "held"))
                   & (Message.next_attempt_at <= now - grace))
                | ((Message.status == "submitting") & (Message.updated_at <= now - STALE_SUBMIT))
            ),
        ).limit(200)
    ).all()
    return list(rows)
