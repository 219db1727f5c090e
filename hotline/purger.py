"""Retention on a schedule (a thread of `hotline worker`) and by hand (`hotline purge`)."""

from __future__ import annotations

import logging
import threading

from hotline.app import offline_runtime
from hotline.db import scrub
from hotline.settings import Settings
from routing.retention import PurgeReport, purge, purge_due
from routing.runtime import Runtime

log = logging.getLogger(__name__)
CHECK_EVERY_S = 600.0


class Purger(threading.Thread):
    """Runs the retention purge once a day. Every worker has one; the `purge_ran` event in
    the database tells them whether today's run happened, and the purge is idempotent, so two
    workers racing for it do no harm. Its own thread: Twilio deletions may take minutes, and
    the sweeper must keep paging meanwhile."""

    def __init__(self, rt: Runtime):
        super().__init__(name="purger", daemon=True)
        self.rt = rt
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if purge_due(self.rt):
                    purge_and_scrub(self.rt, self.rt.settings.retention_days, "system")
            except Exception:  # tomorrow's run, or the next check, tries again
                log.exception("retention purge failed")
            self.stopping.wait(CHECK_EVERY_S)


def purge_and_scrub(rt: Runtime, days: int, actor: str) -> PurgeReport:
    """The purge, then the database's old copies of what it erased (hotline.db.scrub)."""
    report = purge(rt, days, actor=actor)
    if not scrub(rt.engine):
        log.warning("the database's write-ahead log was busy: erased rows leave it later")
    return report


def run_purge(settings: Settings, older_than_days: int | None) -> int:
    """`hotline purge`: prints what was erased. Exit status 0, or 1 when Twilio deletions are
    still pending (the next run retries them)."""
    days = settings.retention_days if older_than_days is None else older_than_days
    rt = offline_runtime(settings)
    try:
        report = purge_and_scrub(rt, days, "operator")
    finally:
        rt.engine.dispose()
    print(
        f"Purged personal data of incidents resolved more than {days} days ago: {report.summary()}."
    )
    return 1 if report.pending_at_twilio else 0
