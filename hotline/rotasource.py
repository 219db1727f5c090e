"""The live rota: re-read when its file changes, never replaced by an invalid edit.

Every process (web, worker) holds one RotaSource. `current()` stats the file on every call
(cheap), so an edit applies in every process at its next page, not up to a second later (a
level-1 page from the old rota and a level-2 page from the new one would confuse everyone);
the content is re-hashed at most once a second as well, for edits the mtime cannot show.
It re-parses only when the content hash changed. An edit that does not validate is
logged and reported by `/healthz` and `hotline rota check`; the last valid rota stays live. The
last valid text is also kept, encrypted, in the database, so a restart after a broken edit
still starts with the rota that worked.

The audit trail gets one Event per change of the live rota (`rota_loaded`) and per broken edit
(`rota_rejected`, with the count of problems only: the messages quote names and numbers).
Every process sees the same file change, so an event is skipped when the newest rota event
already says the same thing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text as sql
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import oncall
from hotline.crypto import Vault
from hotline.db import holds_write_lock
from routing.tables import Event, RotaVersion, utcnow

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0
ROTA_EVENTS = ("rota_loaded", "rota_rejected")


@dataclass(frozen=True)
class RotaStatus:
    ok: bool
    stale: bool
    errors: tuple[str, ...]
    sha256: str | None
    loaded_at: datetime | None
    path: str


class RotaUnavailable(Exception):
    """No valid rota: neither the file nor any earlier valid version."""


def read_rota(path: Path, key: str | None, languages=None) -> oncall.Rota:  # noqa: ANN001
    """Parse the rota at `path` (under top-level `key` when it is a config.yaml).

    Raises oncall.RotaInvalid with every problem, or OSError when the file cannot be read.
    """
    text = path.read_text(encoding="utf-8")
    return oncall.parse_rota(text, path.name, key=key, known_languages=languages)


class RotaSource:
    """Thread-safe provider of the current valid rota for one process."""

    def __init__(
        self,
        path: Path,
        key: str | None,
        *,
        engine: Engine | None = None,
        vault: Vault | None = None,
        languages=None,
    ):  # noqa: ANN001
        self.path, self.key = path, key
        self._engine, self._vault, self._languages = engine, vault, languages
        self._lock = threading.Lock()
        self._rota: oncall.Rota | None = None
        self._sha: str | None = None
        self._seen: tuple[float, int, str] | None = None
        self._errors: tuple[str, ...] = ()
        self._loaded_at: datetime | None = None
        self._checked = 0.0
        self._stamp: tuple[int, int, int] | None = None

    def current(self) -> oncall.Rota:
        """The live rota. Raises RotaUnavailable when none has ever been valid."""
        now = time.monotonic()
        stamp = self._file_stamp()
        if self._rota is None or stamp != self._stamp or now - self._checked >= CHECK_INTERVAL_S:
            with self._lock:
                self._checked, self._stamp = now, stamp
                self._refresh()
        if self._rota is None:
            raise RotaUnavailable("; ".join(self._errors) or "no rota loaded")
        return self._rota

    def status(self) -> RotaStatus:
        with contextlib.suppress(RotaUnavailable):  # reported as ok=False below
            self.current()
        return RotaStatus(
            ok=self._rota is not None,
            stale=bool(self._errors),
            errors=self._errors,
            sha256=self._sha,
            loaded_at=self._loaded_at,
            path=str(self.path),
        )

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            self._fail((f"{self.path}: cannot read the rota ({exc.strerror})",))
            return
        digest = hashlib.sha256(text.encode()).hexdigest()
        fingerprint = (stat.st_mtime, stat.st_size, digest)
        if fingerprint == self._seen:
            return
        self._seen = fingerprint
        if digest == self._sha:
            if self._errors:  # the file is back to the live version: no longer stale
                self._errors = ()
                self._remember(text, digest)
            return
        try:
            rota = oncall.parse_rota(
                text, self.path.name, key=self.key, known_languages=self._languages
            )
        except oncall.RotaInvalid as exc:
            self._fail(tuple(str(p) for p in exc.problems), digest)
            return
        self._rota, self._sha, self._errors = rota, digest, ()
        self._loaded_at = datetime.now(UTC)
        log.info("rota %s loaded (sha256 %s)", self.path.name, digest[:12])
        self._remember(text, digest)

    def _fail(self, errors: tuple[str, ...], digest: str | None = None) -> None:
        if errors != self._errors:
            for line in errors:
                log.error("rota not applied: %s", line)
            if self._rota is not None:
                log.error("the last valid rota (sha256 %s) stays live", (self._sha or "")[:12])
            count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
            where = f"sha256 {digest[:12]}" if digest else "file unreadable"
            self._record("rota_rejected", f"{count}; {where}")
        self._errors = errors
        if self._rota is None:
            self._restore()

    def _in_the_database(self, write: Callable[[], None]) -> None:
        """Run `write` now, or, when this thread is inside a transaction that a write of its
        own would wait for (SQLite: any read of the live rota may come first after an edit,
        inside a step or an ack), on a thread of its own once that transaction ends."""
        if self._engine is not None and holds_write_lock(self._engine):
            threading.Thread(target=write, name="rota-store", daemon=True).start()
        else:
            write()

    def _remember(self, text: str, digest: str) -> None:
        """Keep the valid text for restarts (newest `loaded_at` = live) and audit the load."""
        if self._engine is None or self._vault is None:
            return
        self._in_the_database(lambda: self._store(text, digest))

    def _store(self, text: str, digest: str) -> None:
        try:
            with Session(self._engine) as session:
                _serialize(session)
                row = session.get(RotaVersion, digest)
                if row is None:
                    row = RotaVersion(
                        sha256=digest,
                        text_enc=self._vault.encrypt(text),
                        key=self.key,
                        loaded_at=utcnow(),
                    )
                row.loaded_at = utcnow()  # a reverted edit makes an older version live again
                session.add(row)
                _audit(session, "rota_loaded", f"sha256 {digest[:12]}")
                session.commit()
        except Exception:  # the rota works without its backup copy; say so and go on
            log.exception("could not store the valid rota in the database")

    def _record(self, kind: str, detail: str) -> None:
        if self._engine is None:
            return
        self._in_the_database(lambda: self._audit(kind, detail))

    def _audit(self, kind: str, detail: str) -> None:
        try:
            with Session(self._engine) as session:
                _serialize(session)
                _audit(session, kind, detail)
                session.commit()
        except Exception:  # the audit line is lost, the rota handling is not
            log.exception("could not record %s", kind)

    def _restore(self) -> None:
        """After a broken edit at start-up, fall back to the newest valid rota stored."""
        if self._engine is None or self._vault is None:
            return
        stored = stored_rota(self._engine, self._vault, self.path.name, self._languages)
        if stored is None:
            return
        self._rota, row = stored
        self._sha, self._loaded_at = row.sha256, row.loaded_at
        log.error(
            "using the last valid rota stored (sha256 %s, loaded %s)",
            row.sha256[:12],
            row.loaded_at.isoformat(),
        )


def stored_rota(
    engine: Engine, vault: Vault, filename: str, languages=None
) -> tuple[oncall.Rota, RotaVersion] | None:  # noqa: ANN001
    """The newest valid rota kept in the database, with its row; None when there is none or
    it cannot be read (logged). Read-only."""
    try:
        with Session(engine) as session:
            row = session.exec(
                select(RotaVersion).order_by(RotaVersion.loaded_at.desc()).limit(1)
            ).first()
        if row is None:
            return None
        text = vault.decrypt(row.text_enc)
        return oncall.parse_rota(text, filename, key=row.key, known_languages=languages), row
    except Exception:  # a missing table, a rotated-away key, a rule tightened since
        log.exception("could not read the stored rota")
        return None


def _serialize(session: Session) -> None:
    """Make the check-then-write of rota events atomic across processes.

    SQLite already is (`BEGIN IMMEDIATE`, see hotline.db); PostgreSQL needs a lock that
    plain reads pass but a second writer waits for.
    """
    if session.get_bind().dialect.name == "postgresql":
        table = RotaVersion.__tablename__
        session.connection().execute(sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))


def _audit(session: Session, kind: str, detail: str) -> None:
    """Add a rota Event unless the newest rota event already says the same."""
    last = session.exec(
        select(Event).where(Event.kind.in_(ROTA_EVENTS)).order_by(Event.id.desc()).limit(1)
    ).first()
    if last is None or (last.kind, last.detail) != (kind, detail):
        session.add(Event(at=utcnow(), kind=kind, actor="system", detail=detail))
