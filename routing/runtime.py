"""What routing code needs from the outside world, built once by the composition root.

Webhooks receive the runtime from the Flask app; RQ jobs, which run in worker processes and
take only ids, find it with `current()` after `hotline worker` has called `install()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from sqlalchemy.engine import Engine

from oncall import Rota
from routing.notifier import Notifier
from routing.pool import Pool

log = logging.getLogger(__name__)


class RotaProvider(Protocol):
    def current(self) -> Rota: ...


class Crypto(Protocol):
    def encrypt(self, plaintext: str | None) -> str | None: ...
    def decrypt(self, token: str | None) -> str | None: ...
    def new_data_key(self) -> tuple[str, str]: ...
    def seal(self, key_id: str, where: str, plaintext: str | None) -> str | None: ...
    def open(self, key_id: str | None, where: str, token: str | None) -> str | None: ...
    def forget(self, key_ids: Iterable[str]) -> None: ...
    def lookup_hash(self, value: str) -> str: ...
    def lookup_hashes(self, value: str) -> list[str]: ...
    def slow_hashes(self, value: str) -> list[str]: ...
    def limit_hash(self, value: str) -> str: ...
    def check_values(self) -> list[str]: ...


@dataclass
class Runtime:
    settings: Any  # hotline.settings.Settings
    engine: Engine
    vault: Crypto
    rota: RotaProvider
    notifier: Notifier
    queue: Any | None  # rq.Queue, or None where no Redis is wanted
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # a worker's pool (routing.pool): several steps and sends in flight at once; None in web
    # processes and command-line tools, where such work runs in the calling thread
    pool: Pool | None = None
    # set by a worker (hotline.worker): hands an outbox row (kind, id, priority, and the row
    # as claimed when the transaction that wrote it claimed it: routing.outbox.Claimed, else
    # None) straight to its pool after a commit, instead of a round trip through the queue
    dispatch: Callable[[str, int, int, Any], None] | None = None
    # set by a worker (hotline.worker): hands a stored contact (kind, id) to its threader,
    # which threads what busy webhooks deferred one batch at a time, beside the pool
    thread_later: Callable[[str, int], None] | None = None
    # what routing builds for this process on first use, by name (routing.intake's group
    # commit of a busy web process's stores)
    local: dict[str, Any] = field(default_factory=dict)
    local_lock: threading.Lock = field(default_factory=threading.Lock)

    def callback_url(self, path: str) -> str | None:
        """Absolute URL Twilio should call for `path`; None when HOTLINE_PUBLIC_URL is unset
        (a worker cannot guess the public address, so no status callbacks are asked for)."""
        base = self.settings.public_url
        return base + path if base else None


def flow_url(rt: Runtime, path: str, **params: object) -> str:
    """URL of one of our call-flow steps: absolute under HOTLINE_PUBLIC_URL when it is set
    (Twilio signs exactly that, query included), else relative to the request."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return (rt.settings.public_url or "") + path + (f"?{query}" if query else "")


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    """Make `runtime` the one jobs in this process use."""
    global _current
    _current = runtime


def current() -> Runtime:
    """The installed runtime. Raises RuntimeError when the process was not set up."""
    if _current is None:
        raise RuntimeError("routing runtime not installed; start jobs with `hotline worker`")
    return _current
