"""`hotline worker`: an RQ worker with the scheduler, plus the escalation sweeper.

The RQ worker runs jobs in its own process (SimpleWorker: no fork per job, so a page leaves
within milliseconds of its job being queued). The sweeper is a thread beside it that works
from the database alone, so it keeps pages going while Redis is down; the worker reconnects
when Redis comes back. A third thread, the threader, takes the messages busy webhooks stored
and left for a worker (routing.intake `store_for_a_worker`) and threads them in batches, beside
the pool;
a fourth, the waker, hands the steps that fall due now (a new incident's first page) and the
sends web processes ask for (a stand-down, a relay) to the pool as soon as they are asked for
(routing.jobqueue DUE_LIST, SEND_LIST). The threads are in hotline.workerthreads; the purger,
which runs the retention purge once a day, in hotline.purger.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import socket
import threading

import redis
from rq.job import Job
from rq.utils import now as rq_now
from rq.worker import SimpleWorker

from hotline.app import JOB_SERIALIZER, build_runtime, freeze_startup_heap
from hotline.backfiller import Backfiller, last_heartbeat
from hotline.db import WORKER_LOCK_TURN_MS
from hotline.fallbackflow import FallbackPublisher
from hotline.heartbeat import HeartbeatPinger
from hotline.keycheck import require_ready_database
from hotline.nightly import NightlyBackup
from hotline.purger import Purger
from hotline.settings import Settings
from hotline.workerthreads import REDIS_RETRY_S, Sweeper, Threader, Waker
from routing import runtime as runtime_module
from routing.handover import send_soon
from routing.pool import Pool

log = logging.getLogger(__name__)
PUBSUB_WAIT_S = 1.0  # RQ's command listener (HotlineWorker): how long a stop may wait for it


# The engine's job entry points: `<name>_job` functions in routing, taking ids only.
JOB_FUNCTION = re.compile(r"routing(\.[a-z_]+)+\.[a-z_]+_job")


class NotOurJob(Exception):
    """A job in the queue names a function that is not one of routing's job entry points."""


class HotlineJob(Job):
    """A job that can run only routing's `*_job` functions, and no callbacks.

    JSON keeps pickled code out of the worker, but a JSON job still names its function and
    callbacks by import path; whoever can write to Redis could name `os.system`. This closes
    that: anything else fails without being imported or called.
    """

    @property
    def func(self):  # noqa: ANN201
        name = self.func_name
        if self.instance is not None or name is None or not JOB_FUNCTION.fullmatch(name):
            raise NotOurJob(f"refused to run job {self.id}: {str(name)[:80]!r} is not ours")
        return super().func

    # the hotline sets no callbacks: any a job names is ignored, never imported
    success_callback = property(lambda self: None)
    failure_callback = property(lambda self: None)
    stopped_callback = property(lambda self: None)


class HotlineWorker(SimpleWorker):
    """RQ's SimpleWorker, with a bounded wait in the thread that listens for its commands.

    RQ starts that thread with a 60 s wait, and on a stop joins it without a timeout (redis-py
    8's `PubSubWorkerThread.stop`). When the thread has just looped back into that wait (the
    unsubscribe came first), `hotline worker` hung for a minute on SIGTERM: 6 stops in 24 under
    load in the test suite. With PUBSUB_WAIT_S the stop takes at most that long.
    """

    stop_event: threading.Event | None = None  # run_worker's: a stop asked for before RQ ran

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if self.stop_event is not None and self.stop_event.is_set():
            # SIGTERM came before RQ's handlers were in place: stop at the loop's first check
            self._shutdown_requested_date = rq_now()
            self._stop_requested = True

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAIT_S, daemon=True, exception_handler=self._pubsub_exception_handler
        )


def run_worker(settings: Settings) -> None:
    """Work until SIGINT/SIGTERM. Survives Redis outages (the sweeper keeps paging).

    Raises hotline.migrate.SchemaBehind, before touching Redis, when the database needs
    `hotline db upgrade`.
    """
    stop = threading.Event()
    _stop_on_signals(stop)  # from here on a SIGTERM is a graceful stop, even before RQ runs
    require_ready_database(settings)
    connection = _worker_redis(settings)
    rt = build_runtime(settings, redis_connection=connection, lock_turn_ms=WORKER_LOCK_TURN_MS)
    rt.pool = Pool(settings.send_concurrency, name="send")
    rt.dispatch = functools.partial(send_soon, rt)
    runtime_module.install(rt)
    rt.rota.current()
    name = f"{socket.gethostname()}.{os.getpid()}"
    threads = _start_threads(rt, connection, name)
    if settings.public_url is None and not settings.console_mode:
        log.warning("HOTLINE_PUBLIC_URL is not set: no delivery status callbacks will be asked for")
    freeze_startup_heap()
    log.info("worker %s started (queue %s)", name, rt.queue.name)
    try:
        while not stop.is_set():
            try:
                worker = HotlineWorker(
                    [rt.queue.name],
                    connection=connection,
                    name=f"{name}.{os.urandom(2).hex()}",
                    serializer=JOB_SERIALIZER,
                    job_class=HotlineJob,
                )
                worker.stop_event = stop
                worker.work(with_scheduler=True, logging_level=_rq_log_level())
                _stop_on_signals(stop)  # RQ leaves its own handlers, for a worker now gone
                if worker._shutdown_requested_date is not None:  # rq's SIGINT/SIGTERM handling
                    stop.set()
                    break
                log.error("RQ worker stopped (Redis unreachable?); the sweeper goes on; retrying")
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.error(
                    "Redis unavailable (%s); the sweeper keeps pages going; retrying",
                    exc.__class__.__name__,
                )
            _wait_or_stop(stop, REDIS_RETRY_S)
    finally:
        for thread in threads:
            thread.stopping.set()
        threads[0].join(timeout=10)  # the sweeper
        rt.pool.stop()  # running sends finish; queued ones stay in the database
        log.info("worker %s stopped", name)


def _start_threads(rt, connection: redis.Redis, name: str) -> list:  # noqa: ANN001
    """The worker's threads beside RQ, started: the sweeper first (run_worker waits for it
    when stopping), the purger, the threader, the waker, the backfiller, the fallback
    flow's publisher, the heartbeat's pinger and the nightly backup."""
    backfiller = Backfiller(rt, since=last_heartbeat(rt))  # read before ours is written
    threader = Threader(rt, connection)
    rt.thread_later = threader.later
    threads = [
        Sweeper(rt, name),
        Purger(rt),
        threader,
        Waker(rt, connection),
        backfiller,
        FallbackPublisher(rt),
        HeartbeatPinger(rt),
        NightlyBackup(rt),
    ]
    for thread in threads:
        thread.start()
    return threads


def _rq_log_level() -> str:
    """RQ logs every job at INFO (ids only, but noisy): show it only when debugging."""
    return "DEBUG" if logging.getLogger().getEffectiveLevel() <= logging.DEBUG else "WARNING"


def _wait_or_stop(stop: threading.Event, seconds: float) -> None:
    """Wait between Redis reconnects, returning early on SIGINT/SIGTERM (`_stop_on_signals`)."""
    stop.wait(seconds)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set `stop` (RQ's own handlers take over while its worker runs)."""

    def handler(signum, _frame):  # noqa: ANN001
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _worker_redis(settings: Settings) -> redis.Redis:
    """A connection without a read timeout: the worker blocks on the queue between jobs."""
    if settings.redis_url:
        return redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, health_check_interval=30
        )
    from hotline.redisconn import start_embedded

    return start_embedded(settings.instance_dir)
