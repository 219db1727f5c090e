"""The worker's threads beside RQ's loop: the sweeper (runs from the database what is due and
writes the heartbeat), the threader (threads stored messages in batches) and the waker (hands
steps and sends due now to the pool). hotline.worker starts them."""

from __future__ import annotations

import itertools
import logging
import threading
from datetime import datetime

import redis
from sqlmodel import Session

from routing.handover import THREADS_AT_ONCE, run_soon, send_soon, thread_backlog
from routing.jobqueue import take_now, take_threading
from routing.runtime import Runtime
from routing.sweeper import SWEEP_INTERVAL_S, next_due, sweep
from routing.tables import WorkerHeartbeat

log = logging.getLogger(__name__)

REDIS_RETRY_S = 2.0  # between tries to reach a Redis that is down

HEARTBEAT_EVERY_S = 5.0
LIST_READ_TIMEOUT_S = 5.0  # the threader's and the waker's: longer than their 1 s wait
ITEMS_TAKEN_AT_ONCE = 64  # of each list, by the waker


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
