"""`hotline serve`: the webhook receiver under gunicorn's threaded worker (gthread).

The master checks the database schema and the rota, binds, and forks `workers` web processes;
each builds its own app after the fork (no connection pool crosses a fork) and runs requests
in real threads, because SQLite calls block (cooperative, gevent-style workers would stall on
them). SIGTERM stops it gracefully, SIGINT at once (gunicorn's own signals).

Slow clients: a gthread thread that has started reading a request blocks until the request is
complete, so a client that sends a request line and one header, then nothing, can pin a
thread. The shipped configuration therefore puts nginx in front (deploy/nginx/hotline.conf):
nginx reads every request whole, under short header and body timeouts, before it opens a
connection here, so a slow client costs nginx a socket, never one of our threads. That is
also why the default bind is loopback: nothing but the proxy should reach this port.

No log line here names a client: the access log is off, and gunicorn's one error-log message
that carries a client address (an invalid request "from ip=…") has the address removed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from hotline.settings import Settings

THREADS = 4  # per web process
SERVER_OPTIONS: dict[str, Any] = {
    "worker_class": "gthread",
    "threads": THREADS,
    "timeout": 30,  # a web process silent this long is restarted by the master
    "graceful_timeout": 10,
    "keepalive": 2,
    # Twilio's headers are well under 2 KB and the webhooks refuse bodies over 64 KB
    "limit_request_line": 4094,
    "limit_request_fields": 50,
    "limit_request_field_size": 8190,
    # No access log: a line per request would be a record of who reached the hotline, when.
    # Should one ever be needed, its format must leave out %(h)s and X-Forwarded-For.
    "accesslog": None,
    "loglevel": "warning",
    "proc_name": "hotline-web",
}
# Settings of newer gunicorn releases, set only where the installed one has them.
NEWER_OPTIONS: dict[str, Any] = {
    # gunicorn >= 25.1 opens a control socket at one fixed path per user ($HOME/.gunicorn):
    # two instances would fight over it, and nothing here administers workers through it
    "control_socket_disable": True,
}

# gunicorn.workers.base: "Invalid request from ip=203.0.113.5: Invalid HTTP Header …"
_CLIENT_ADDRESS = re.compile(r"\bip=\S+?(?=:\s|\s|$)")


class _NoClientAddress(logging.Filter):
    """Blanks the client address gunicorn puts in its invalid-request warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ip=" in message:
            record.msg, record.args = _CLIENT_ADDRESS.sub("ip=[address]", message), None
        return True


class _HotlineLogger(GunicornLogger):
    """gunicorn's logger with the client address kept out of its error log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.addFilter(_NoClientAddress())


class _Gunicorn(BaseApplication):
    """gunicorn with our options instead of its command line and config files."""

    def __init__(self, make_app: Callable[[], object], options: dict[str, Any]):
        self.make_app, self.options = make_app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        for key, value in NEWER_OPTIONS.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> object:
        return self.make_app()  # in each web process, after the fork (preload_app is off)


def gunicorn_options(*, host: str, port: int, workers: int) -> dict[str, Any]:
    """The complete gunicorn configuration `serve` runs with (tests read it)."""
    return {
        **SERVER_OPTIONS,
        "bind": f"{host}:{port}",
        "workers": max(1, workers),
        "logger_class": _HotlineLogger,
    }


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    app_factory: Callable[[], object] | None = None,
    console_only: bool = False,
) -> None:
    """Serve until SIGTERM/SIGINT. Raises hotline.migrate.SchemaBehind when the database needs
    `hotline db upgrade`, hotline.keycheck.KeyMismatch for another key than the data's, and
    RotaUnavailable without a rota, all before binding.

    `app_factory` replaces the hotline's app (the benchmarks' bare baseline uses it); the server
    configuration stays exactly the same. `console_only`: serve the staff console alone."""
    from hotline.app import build_runtime, create_app, freeze_startup_heap
    from hotline.keycheck import require_ready_database

    def make_app() -> object:
        app = app_factory() if app_factory else create_app(settings, console_only=console_only)
        freeze_startup_heap()
        return app

    # fail before forking when the database, its schema or the rota is unusable, and leave
    # no pooled connection for the forked web processes to inherit
    require_ready_database(settings)
    runtime = build_runtime(settings)
    runtime.rota.current()
    runtime.engine.dispose()
    _Gunicorn(make_app, gunicorn_options(host=host, port=port, workers=workers)).run()
