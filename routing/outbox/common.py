"""What the outbox's modules share: priorities, ranks of statuses, retries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from routing.tables import Call, Message, Page

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
URGENT = -1  # an alarm's page: ahead of every other send, other pages included

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


def moves_forward(kind: str, old: str, new: str) -> bool:
    ranks = RANKS[kind]
    return ranks.get(new, 2) > ranks.get(old, -1)


def set_status(row: Message | Call, page: Page | None, status: str, now: datetime) -> None:
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


def outcome_of(kind: str, row: Message | Call, page: Page | None, failed: bool) -> Outcome:
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
