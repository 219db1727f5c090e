"""The live rota: re-read when its file changes, never replaced by an invalid edit.

Every process (web, worker) holds one RotaSource. `current()` stats the file (cheap) and
re-parses only when its size, mtime or content hash changed. An edit that does not validate is
logged and reported by `/healthz` and `hotline rota check`; the last valid rota stays live. The
last valid text is also kept, encrypted, in the database, so a restart after a broken edit
still starts with the rota that worked.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import oncall
from hotline.crypto import Vault
from hotline.models import Event, RotaVersion, utcnow

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0


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

    def __init__(self, path: Path, key: str | None, *, engine: Engine | None = None,
                 vault: Vault | None = None, languages=None):  # noqa: ANN001
        self.path, self.key = path, key
        self._engine, self._vault, self._languages = engine, vault, languages
        self._lock = threading.Lock()
        self._rota: oncall.Rota | None = None
        self._sha: str | None = None
        self._seen: tuple[float, int, str] | None = None
        self._errors: tuple[str, ...] = ()
        self._loaded_at: datetime | None = None
        self._checked = 0.0

    def current(self) -> oncall.Rota:
        """The live rota. Raises RotaUnavailable when none has ever been valid."""
        import time

        now = time.monotonic()
        if self._rota is None or now - self._checked >= CHECK_INTERVAL_S:
            with self._lock:
                self._checked = now
                self._refresh()
        if self._rota is None:
            raise RotaUnavailable("; ".join(self._errors) or "no rota loaded")
        return self._rota

    def status(self) -> RotaStatus:
        try:
            self.current()
        except RotaUnavailable:
            pass
        return RotaStatus(
            ok=self._rota is not None, stale=bool(self._errors), errors=self._errors,
            sha256=self._sha, loaded_at=self._loaded_at, path=str(self.path),
        )

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
            self._errors = ()
            return
        try:
            rota = oncall.parse_rota(text, self.path.name, key=self.key,
                                     known_languages=self._languages)
        except oncall.RotaInvalid as exc:
            self._fail(tuple(str(p) for p in exc.problems))
            return
        first = self._rota is None
        self._rota, self._sha, self._errors = rota, digest, ()
        self._loaded_at = datetime.now(UTC)
        log.info("rota %s loaded (sha256 %s)", self.path.name, digest[:12])
        self._remember(text, digest, first)

    def _fail(self, errors: tuple[str, ...]) -> None:
        if errors != self._errors:
            for line in errors:
                log.error("rota not applied: %s", line)
            if self._rota is not None:
                log.error("the last valid rota (sha256 %s) stays live", (self._sha or "")[:12])
        self._errors = errors
        if self._rota is None:
            self._restore()

    def _remember(self, text: str, digest: str, first: bool) -> None:
        """Keep the valid text for restarts and write the reload to the audit trail."""
        if self._engine is None or self._vault is None:
            return
        try:
            with Session(self._engine) as session:
                if session.get(RotaVersion, digest) is None:
                    session.add(RotaVersion(sha256=digest, text_enc=self._vault.encrypt(text),
                                            key=self.key, loaded_at=utcnow()))
                    session.add(Event(at=utcnow(), kind="rota_loaded", actor="system",
                                      detail=f"sha256 {digest[:12]}"))
                session.commit()
        except Exception:  # the rota works without its backup copy; say so and go on
            log.exception("could not store the valid rota in the database")

    def _restore(self) -> None:
        """After a broken edit at start-up, fall back to the newest valid rota stored."""
        if self._engine is None or self._vault is None:
            return
        try:
            with Session(self._engine) as session:
                row = session.exec(
                    select(RotaVersion).order_by(RotaVersion.loaded_at.desc()).limit(1)
                ).first()
        except Exception:
            log.exception("could not read the stored rota")
            return
        if row is None:
            return
        text = self._vault.decrypt(row.text_enc)
        self._rota = oncall.parse_rota(text, self.path.name, key=row.key,
                                       known_languages=self._languages)
        self._sha, self._loaded_at = row.sha256, row.loaded_at
        log.error("using the last valid rota stored (sha256 %s, loaded %s)",
                  row.sha256[:12], row.loaded_at.isoformat())
