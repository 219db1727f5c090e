"""The composition root: settings, engine, Redis, queue, notifier and rota, wired once."""

from __future__ import annotations

import functools
import gc
import logging

import rq
from flask import Flask
from rq.serializers import JSONSerializer

from hotline.db import WEB_LOCK_TURN_MS, make_engine, vault_on
from hotline.migrate import require_current
from hotline.redisconn import connect_redis
from hotline.rotasource import RotaSource
from hotline.settings import Settings, load_settings
from hotline.twilio_client import make_notifier
from routing.notifier import Notifier
from routing.runtime import Runtime

log = logging.getLogger(__name__)
QUEUE_NAME = "hotline"
# Jobs carry ids only, so JSON is enough; RQ's default, pickle, would let anyone who can write
# to Redis run code in a worker.
JOB_SERIALIZER = JSONSerializer


def build_runtime(
    settings: Settings,
    *,
    notifier: Notifier | None = None,
    redis_connection=None,  # noqa: ANN001
    lock_turn_ms: int = WEB_LOCK_TURN_MS,
    with_queue: bool = True,
) -> Runtime:
    """Everything routing needs, built from settings.

    Creates no tables: the database must have been migrated (`hotline db upgrade`; `serve` and
    `worker` check that before they build this, `hotline run` upgrades its own).
    `with_queue` False: no queue and no Redis (one-off commands, hotline.purger).
    """
    engine = make_engine(settings.database_url, lock_turn_ms)
    vault = vault_on(engine, settings.secret_keys)
    queue = None
    if with_queue:
        connection = redis_connection or connect_redis(settings.redis_url, settings.instance_dir)
        queue = rq.Queue(QUEUE_NAME, connection=connection, serializer=JOB_SERIALIZER)
    return Runtime(
        settings=settings,
        engine=engine,
        vault=vault,
        rota=RotaSource(
            settings.rota_path,
            settings.rota_key,
            engine=engine,
            vault=vault,
            languages=settings.languages,
        ),
        notifier=notifier or make_notifier(settings),
        queue=queue,
    )


def offline_runtime(settings: Settings) -> Runtime:
    """A runtime for one-off commands: database, keys and Twilio, but no queue (no Redis).

    Raises hotline.migrate.SchemaBehind when the database needs `hotline db upgrade`, and
    hotline.keycheck.KeyMismatch when the configured key is not the data's.
    """
    rt = build_runtime(settings, with_queue=False)
    try:
        require_current(rt.engine)
        from hotline.keycheck import check_key  # it reads the tables this module's runtime uses

        check_key(rt.engine, rt.vault)
    except BaseException:
        rt.engine.dispose()
        raise
    return rt


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, console_only: bool = False
) -> Flask:
    """The webhook receiver (and the staff console, when enabled); `console_only`: the
    console alone. Tests pass their own settings (or a whole runtime)."""
    from webhooks import register

    if runtime is None:
        runtime = build_runtime(settings or load_settings())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024  # Twilio's forms are a few KB
    app.extensions["hotline"] = runtime
    if runtime.settings.console.enabled:
        from hotline.report import console_page

        # the console's Report page is `hotline report --html`'s, made here (webhooks cannot
        # import hotline)
        app.extensions["hotline_report_page"] = functools.partial(console_page, runtime)
    register(app, console_only=console_only)
    runtime.rota.current()  # fail at start-up, not at the first emergency, when no rota is valid
    return app


def freeze_startup_heap() -> None:
    """Move everything start-up created (the imported libraries, the app, the runtime: about
    160,000 objects) out of the garbage collector's reach, once a long-running process is
    ready to serve.

    A full collection walks every tracked object: with those in it, it paused a web process
    for 85-96 ms, now and then, in the middle of a webhook or a page (measured in process;
    CPython's own docs recommend gc.freeze() for servers). They live as long as the process,
    so there is nothing to collect among them.
    """
    gc.collect()
    gc.freeze()
