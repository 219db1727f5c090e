"""Twilio's status callbacks, merged into the row (statuses only move forward)."""

from __future__ import annotations

import logging

from sqlmodel import select

from routing.outbox.common import (
    CALL_ENDED,
    MESSAGE_FAILED,
    RANKS,
    TABLES,
    Outcome,
    moves_forward,
    outcome_of,
    page_of,
    set_status,
)
from routing.runtime import Runtime
from routing.uow import unit_of_work

log = logging.getLogger(__name__)


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
        if not moves_forward(kind, row.status, status) or status not in RANKS[kind]:
            return None
        if kind == "message" and status in MESSAGE_FAILED:
            row.error_code = error_code or row.error_code
        page = page_of(session, kind, row)
        page_before = page.status if page is not None else None
        set_status(row, page, status, now)
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
        return outcome_of(kind, row, page, failed)
