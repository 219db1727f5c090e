"""`hotline serve`: the webhook receiver, N processes of waitress on one listening socket.

Why waitress and not gunicorn's threaded worker: gunicorn (gthread) gives a connection a
thread as soon as its first bytes arrive, and the thread then blocks until the request is
complete. Twelve clients that send a request line and one header, then nothing, pinned every
thread and real webhooks timed out. Waitress reads and buffers each request (headers and body)
in one non-blocking I/O loop and hands a thread only complete requests, so a slow or stalled
client costs a socket, not a thread. The application still runs in real threads, because
SQLite calls block: cooperative (gevent-style) workers would stall on them.

The parent binds the socket, checks the database and the rota, then forks `workers` children
and restarts any that dies; SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from hotline.settings import Settings

log = logging.getLogger(__name__)

THREADS = 4  # per process: requests run here, after waitress has buffered them whole
SERVER_OPTIONS = {
    "threads": THREADS,
    "connection_limit": 1000,  # sockets are cheap; threads are what a slow client must not get
    "asyncore_use_poll": True,  # select() stops at 1,024 descriptors
    "channel_timeout": 15,  # a connection idle this long is closed (Twilio's own limit is 15 s)
    "cleanup_interval": 5,
    "max_request_header_size": 32 * 1024,  # Twilio's headers are well under 2 KB
    "max_request_body_size": 256 * 1024,  # the webhooks refuse more than 64 KB themselves
    "ident": None,  # no Server header naming the software
}
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 10.0


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _child(make_app: Callable[[], object], sock: socket.socket) -> None:
    """One web process: build the app after the fork (no shared connections), then serve."""
    import waitress

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    waitress.serve(make_app(), sockets=[sock], **SERVER_OPTIONS)


def _fork(make_app: Callable[[], object], sock: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _child(make_app, sock)
        except BaseException:
            log.exception("web process failed")
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def serve(settings: Settings, *, host: str, port: int, workers: int,
          app_factory: Callable[[], object] | None = None) -> None:
    """Serve until SIGTERM/SIGINT. Raises hotline.migrate.SchemaBehind when the database needs
    `hotline db upgrade`, and RotaUnavailable without a rota, both before binding.

    `app_factory` replaces the hotline's app (the benchmarks' bare baseline uses it)."""
    from hotline.app import build_runtime, create_app
    from hotline.migrate import require_current_database

    def make_app() -> object:
        return app_factory() if app_factory else create_app(settings)

    # fail before forking when the database, its schema or the rota is unusable, and leave
    # no pooled connection for the forked web processes to inherit
    require_current_database(settings.database_url)
    runtime = build_runtime(settings)
    runtime.rota.current()
    runtime.engine.dispose()
    sock = listening_socket(host, port)
    stopping = False

    def request_stop(signum, _frame):  # noqa: ANN001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    children = {_fork(make_app, sock) for _ in range(max(1, workers))}
    log.info("serving on %s:%s with %d process(es)", host, port, len(children))
    try:
        while not stopping:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid and pid in children and not stopping:
                children.discard(pid)
                log.error("web process %s exited (%s); starting another", pid, status)
                time.sleep(RESTART_DELAY_S)
                children.add(_fork(make_app, sock))
            time.sleep(0.2)
    finally:
        _stop(children)
        sock.close()


def _stop(children: set[int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    pending = set(children)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pending.discard(pid)
        time.sleep(0.05)
    for pid in pending:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
