"""Taking in what reached Twilio while we could not: at a worker's start, every few minutes,
and on `hotline twilio backfill --since 2h` (routing.backfill does the work).

At start a worker looks back to the newest heartbeat any worker wrote (the gap in which
nothing of ours ran), at most MAX_BACK. Then, every EVERY_S, it looks at the last LOOK_BACK:
our web processes may be down while the worker is up, and that gap has no heartbeat to show
it. An arrival younger than SETTLE is left alone: its webhook (or Twilio's retry of it, or
the fallback URL) may still be on its way, and a backfill would take it in as "arrived while
the server was down" when it was not.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from hotline.app import offline_runtime
from hotline.report import parse_since
from hotline.settings import Settings
from hotline.usage import UsageError, refused
from routing.backfill import Backfilled, backfill
from routing.notifier import SendError
from routing.runtime import Runtime
from routing.tables import WorkerHeartbeat

log = logging.getLogger(__name__)
EVERY_S = 300
LOOK_BACK = timedelta(minutes=30)
MAX_BACK = timedelta(days=7)
SETTLE = timedelta(minutes=1)  # Twilio waits 15 s for the URL, then 15 for the fallback URL


def last_heartbeat(rt: Runtime) -> datetime | None:
    with Session(rt.engine) as session:
        return session.exec(select(func.max(WorkerHeartbeat.at))).one()


class Backfiller(threading.Thread):
    """A worker's backfills. `since`: where the first looks back to (the last heartbeat
    before this worker started; None: the last LOOK_BACK)."""

    def __init__(self, rt: Runtime, since: datetime | None):
        super().__init__(name="backfiller", daemon=True)
        self.rt = rt
        self.since = since
        self.stopping = threading.Event()

    def run(self) -> None:
        since = self.since
        while not self.stopping.is_set():
            now = self.rt.clock()
            start = max(since or now - LOOK_BACK, now - MAX_BACK)
            try:
                backfill(self.rt, start, until=now - SETTLE)
                since = None  # from now on, the last LOOK_BACK
            except SendError as exc:
                log.warning("backfill: Twilio could not be asked (%s); trying again later", exc)
            except Exception:
                log.exception("backfill failed; trying again later")
            self.stopping.wait(EVERY_S)


def run_backfill(settings: Settings, since: str) -> int:
    """`hotline twilio backfill --since 2h`: prints what it took in."""
    try:
        window = parse_since(since)
    except UsageError as exc:
        return refused(exc)
    if settings.console_mode:
        print("hotline: no Twilio credentials (console mode): nothing to backfill", file=sys.stderr)
        return 2
    rt = offline_runtime(settings)
    try:
        now = rt.clock()
        report = backfill(rt, now - window, until=now)
    except SendError as exc:
        print(f"hotline: Twilio could not be asked: {exc}", file=sys.stderr)
        return 1
    finally:
        rt.engine.dispose()
    print(_said(report, since))
    return 1 if report.failed else 0


def _said(report: Backfilled, since: str) -> str:
    return (
        f"Backfill of the last {since}: {report.listed} message(s) and call(s) at Twilio, "
        f"{report.known} already here, {len(report.stored)} taken in now "
        f"({len(report.incidents)} incident(s))"
        + (f", {report.failed} failed (run it again)" if report.failed else "")
        + ". A running worker pages them."
    )
