"""A worker's in-process pool: several sends and steps in flight, most urgent first.

A worker process runs RQ jobs one at a time. Waiting on Twilio (100–500 ms a call) one message
after another would turn a burst into minutes, so jobs that send or run escalation steps hand
their work to this pool and return: up to `size` of them run at once, the lowest priority
number first (steps and pages before relays, stand-downs, confirmations and digests). Work
that is queued here but lost (the process dies) is still in the database, where the sweeper
finds it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class Pool:
    """A priority thread pool that drops work already queued or running under the same key."""

    def __init__(self, size: int, name: str = "pool"):
        self._heap: list[tuple[float, int, Hashable, Callable[[], object]]] = []
        self._keys: set[Hashable] = set()
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = 0
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: float, key: Hashable, work: Callable[[], object]) -> bool:
        """Queue `work()`; returns False when work under `key` is already queued or running."""
        with self._cond:
            if self._stopping or key in self._keys:
                return False
            self._keys.add(key)
            heapq.heappush(self._heap, (priority, next(self._order), key, work))
            self._cond.notify()
        return True

    def idle(self) -> bool:
        with self._cond:
            return not self._heap and not self._busy

    def stop(self, timeout: float = 10.0) -> None:
        """Let running work finish (up to `timeout`); queued work is dropped (the database
        still has it)."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=timeout / len(self._threads))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                _priority, _n, key, work = heapq.heappop(self._heap)
                self._busy += 1
            try:
                work()
            except Exception:
                log.exception("pooled work %s failed; the sweeper will retry it", key)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._keys.discard(key)
