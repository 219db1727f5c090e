"""The worker's nightly backup (`backup: {dir, keep, at}` in config.yaml).

Once a day, after `at` in the rota's time zone, one worker takes an encrypted backup
(hotline.backup) into `dir` as `hotline-YYYYMMDD-HHMM.backup` and deletes the oldest beyond
`keep`. The audit trail says it happened (`backup_taken`, with the file's name and row count)
and decides whether today's was taken; a failure (`backup_failed`) texts the coordinators
once per run of failures (across workers and restarts: the audit trail says whether
the last attempt failed already), and the next minute tries again.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, time
from pathlib import Path

from sqlmodel import Session, select

from hotline.backup import backup_key, take
from hotline.opsalert import newest, record
from routing.runtime import Runtime
from routing.tables import Event

log = logging.getLogger(__name__)
TAKEN, FAILED = "backup_taken", "backup_failed"
CHECK_EVERY_S = 60


def due(rt: Runtime, now: datetime) -> bool:
    """Whether today's backup (after `at`, in the rota's zone) is still to be taken."""
    zone = rt.rota.current().timezone
    local = now.astimezone(zone)
    hours, minutes = (int(part) for part in rt.settings.backup.at.split(":"))
    start = datetime.combine(local.date(), time(hours, minutes), zone)
    if local < start:
        return False
    with Session(rt.engine) as session:
        last = session.exec(
            select(Event.at).where(Event.kind == TAKEN).order_by(Event.id.desc()).limit(1)
        ).first()
    return last is None or last < start


def take_nightly(rt: Runtime) -> Path:
    folder = Path(rt.settings.backup.dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"hotline-{rt.clock():%Y%m%d-%H%M}.backup"
    held = take(rt.settings, target, backup_key())
    for old in sorted(folder.glob("hotline-*.backup"))[: -rt.settings.backup.keep]:
        old.unlink()
    record(rt, TAKEN, f"{target.name} {sum(held.values())} rows")
    return target


class NightlyBackup(threading.Thread):
    def __init__(self, rt: Runtime):
        super().__init__(name="backup", daemon=True)
        self.rt = rt
        self.stopping = threading.Event()

    def run(self) -> None:
        while self.rt.settings.backup is not None and not self.stopping.is_set():
            try:
                if due(self.rt, self.rt.clock()):
                    log.info("nightly backup written to %s", take_nightly(self.rt))
            except Exception as exc:
                log.exception("nightly backup failed; trying again in a minute")
                failing = newest(self.rt, (TAKEN, FAILED)) == FAILED  # told already
                record(
                    self.rt,
                    FAILED,
                    type(exc).__name__,
                    tell=None
                    if failing
                    else f"Hotline: tonight's backup failed ({type(exc).__name__}). The line "
                    "runs; check the worker's log and the backup folder.",
                )
            self.stopping.wait(CHECK_EVERY_S)
