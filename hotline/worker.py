"""`hotline worker`: an RQ worker with the scheduler, plus the escalation sweeper.

The RQ worker runs jobs in its own process (SimpleWorker: no fork per job, so a page leaves
within milliseconds of its job being queued). The sweeper is a thread beside it that works
from the database alone, so it keeps pages going while Redis is down; the worker reconnects
when Redis comes back. A third thread, the threader, takes the messages busy webhooks stored
and left for a worker (routing.intake `defer`) and threads them in batches, beside the pool;
a fourth, the waker, hands the steps that fall due now (a new incident's first page) and the
sends web processes ask for (a stand-down, a relay) to the pool as soon as they are asked for
(routing.jobqueue DUE_LIST, SEND_LIST).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import signal
import socket
import threading
from datetime import datetime

import redis
from rq.job import Job
from rq.utils import now as rq_now
from rq.worker import SimpleWorker
from sqlmodel import Session

from hotline.app import JOB_SERIALIZER, build_runtime, freeze_startup_heap
from hotline.db import WORKER_LOCK_TURN_MS
from hotline.migrate import require_current_database
from hotline.purger import Purger
from hotline.settings import Settings
from routing import runtime as runtime_module
from routing.handover import THREADS_AT_ONCE, run_soon, send_soon, thread_backlog
from routing.jobqueue import take_now, take_threading
from routing.pool import Pool
from routing.runtime import Runtime
from routing.sweeper import SWEEP_INTERVAL_S, next_due, sweep
from routing.tables import WorkerHeartbeat

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 5.0
REDIS_RETRY_S = 2.0
LIST_READ_TIMEOUT_S = 5.0  # the threader's and the waker's: longer than their 1 s wait
ITEMS_TAKEN_AT_ONCE = 64  # of each list, by the waker
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


class Sweeper(threading.Thread):
    """Sweeps at least every SWEEP_INTERVAL_S, and at the next step's due time when that
    comes sooner (RQ's scheduler looks once a second: this keeps steps to milliseconds);
    writes this worker's heartbeat."""

    def __init__(self, rt: Runtime, name: str):
        super().__init__(name="sweeper", daemon=True)
        self.rt, self.worker_name = rt, name
        self.stopping = threading.Event()

    def run(self) -> None:
        last_beat = 0.0
        while not self.stopping.is_set():
            looked = None
            try:
                looked = sweep(self.rt).at
                now = self.rt.clock()
                if now.timestamp() - last_beat >= HEARTBEAT_EVERY_S:
                    self._heartbeat(now)
                    last_beat = now.timestamp()
            except Exception:  # a bad pass must not end the sweeping
                log.exception("sweep failed")
            self.stopping.wait(self._pause(looked))

    def _pause(self, looked: datetime | None = None) -> float:
        """Seconds until the next sweep: SWEEP_INTERVAL_S, or less when a step falls due.
        `looked`: when the last pass read the database; a step that fell due while it ran
        was not in it, and is swept at once rather than a whole interval later."""
        try:
            due = next_due(self.rt, after=looked)
        except Exception:  # the database is down: sweep again at the usual pace
            log.exception("could not read the next due time")
            return SWEEP_INTERVAL_S
        if due is None:
            return SWEEP_INTERVAL_S
        wait = (due - self.rt.clock()).total_seconds()
        return min(SWEEP_INTERVAL_S, max(0.0, wait))

    def _heartbeat(self, now) -> None:  # noqa: ANN001
        with Session(self.rt.engine) as session:
            beat = session.get(WorkerHeartbeat, self.worker_name)
            if beat is None:
                beat = WorkerHeartbeat(name=self.worker_name, at=now)
            beat.at = now
            session.add(beat)
            session.commit()


class _ListReader(threading.Thread):
    """A thread that takes its work from a Redis list (routing.jobqueue), on a connection of
    its own with a read timeout, and outlives Redis outages: while Redis is down it warns
    once and the sweeper covers what the list would have brought."""

    def __init__(self, name: str, rt: Runtime, connection: redis.Redis, outage: str):
        super().__init__(name=name, daemon=True)
        self.rt, self.connection = rt, _list_reader(connection)
        self.stopping = threading.Event()
        self._outage = outage  # what goes on meanwhile, for the warning
        self._redis_down = False

    def _take(self, take, wait_s: float, most: int) -> list | None:  # noqa: ANN001
        """`take(connection, wait_s, most)`, or None when that failed (logged)."""
        try:
            items = take(self.connection, wait_s, most)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if not self._redis_down:
                log.warning(
                    "%s: Redis unavailable (%s); %s",
                    self.name,
                    exc.__class__.__name__,
                    self._outage,
                )
            self._redis_down = True
            return None
        except Exception:  # anything else must not end the thread: the sweeper covers
            log.exception("%s: could not read its list", self.name)
            return None
        self._redis_down = False
        return items


class Threader(_ListReader):
    """Threads the messages busy webhooks stored and left for a worker (routing.jobqueue
    THREADING_LIST), and the contacts the sweeper found unthreaded, one batch at a time
    (routing.handover.thread_backlog): beside the pool, so a backlog never takes the threads
    that run due steps and send pages. What it took and did not finish (the process died) is
    still stored: a sweeper threads it."""

    def __init__(self, rt: Runtime, connection: redis.Redis):
        super().__init__("threader", rt, connection, "threading what the sweeper finds")
        self._pending: dict[tuple[str, int], None] = {}  # in arrival order, each once
        self._lock = threading.Lock()

    def later(self, kind: str, row_id: int) -> None:
        """Thread stored contact `row_id` with the next batch (the runtime's thread_later)."""
        with self._lock:
            self._pending.setdefault((kind, row_id))

    def run(self) -> None:
        while not self.stopping.is_set():
            with self._lock:
                wait = 0.0 if self._pending else 1.0
            fetched = self._take(take_threading, wait, THREADS_AT_ONCE)
            with self._lock:
                for key in fetched or ():
                    self._pending.setdefault(key)
                batch = list(itertools.islice(self._pending, THREADS_AT_ONCE))
                for key in batch:
                    del self._pending[key]
            if batch:
                try:
                    thread_backlog(self.rt, batch)
                except Exception:  # the sweeper finds what a failed batch left
                    log.exception("threader: a batch failed")
            elif fetched is None:
                self.stopping.wait(SWEEP_INTERVAL_S)


class Waker(_ListReader):
    """Hands the steps and the sends that web processes (and this worker) ask for now
    (routing.jobqueue DUE_LIST, SEND_LIST) to the pool: a new incident's first page, a
    stand-down, a relay leave without a trip through RQ's worker loop (measured: about 4 ms
    of this process's CPU per job, beside the page it delays). A step or a send whose item is
    lost (Redis down, the process died) is done by a sweeper at its due time."""

    def __init__(self, rt: Runtime, connection: redis.Redis):
        super().__init__("waker", rt, connection, "the sweeper runs due steps and sends")

    def run(self) -> None:
        while not self.stopping.is_set():
            taken = self._take(take_now, 1.0, ITEMS_TAKEN_AT_ONCE)
            if taken is None:
                self.stopping.wait(REDIS_RETRY_S)
                continue
            steps, sends = taken
            for incident_id, step in steps:
                run_soon(self.rt, incident_id, step)
            for kind, row_id, priority in sends:
                send_soon(self.rt, kind, row_id, priority)


def _list_reader(connection: redis.Redis) -> redis.Redis:
    """A connection of its own, like `connection` but with a read timeout: a thread that
    blocks on a list must notice a Redis that stopped answering."""
    pool = connection.connection_pool
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "socket_timeout": LIST_READ_TIMEOUT_S},
        )
    )


def run_worker(settings: Settings) -> None:
    """Work until SIGINT/SIGTERM. Survives Redis outages (the sweeper keeps paging).

    Raises hotline.migrate.SchemaBehind, before touching Redis, when the database needs
    `hotline db upgrade`.
    """
    stop = threading.Event()
    _stop_on_signals(stop)  # from here on a SIGTERM is a graceful stop, even before RQ runs
    require_current_database(settings.database_url)
    connection = _worker_redis(settings)
    rt = build_runtime(settings, redis_connection=connection, lock_turn_ms=WORKER_LOCK_TURN_MS)
    rt.pool = Pool(settings.send_concurrency, name="send")
    rt.dispatch = functools.partial(send_soon, rt)
    runtime_module.install(rt)
    rt.rota.current()
    name = f"{socket.gethostname()}.{os.getpid()}"
    sweeper = Sweeper(rt, name)
    sweeper.start()
    purger = Purger(rt)
    purger.start()
    threader = Threader(rt, connection)
    rt.thread_later = threader.later
    threader.start()
    waker = Waker(rt, connection)
    waker.start()
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
        sweeper.stopping.set()
        purger.stopping.set()
        threader.stopping.set()
        waker.stopping.set()
        sweeper.join(timeout=10)
        rt.pool.stop()  # running sends finish; queued ones stay in the database
        log.info("worker %s stopped", name)


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
