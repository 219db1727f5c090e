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
        # (priority, order, key, work, batch): batch is None or (group, limit)
        self._heap: list[tuple[float, int, Hashable, Callable, tuple | None]] = []
        self._keys: set[Hashable] = set()
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: float, key: Hashable, work: Callable[[], object]) -> bool:
        """Queue `work()`; returns False when work under `key` is already queued or running."""
        return self._push(priority, key, work, None)

    def submit_batch(
        self,
        priority: float,
        key: Hashable,
        group: Hashable,
        run: Callable[[list[Hashable]], object],
        limit: int,
    ) -> bool:
        """Queue work that may run together with the other work of `group` queued by then:
        the thread that takes it calls `run(keys)` once, with its key and those of up to
        `limit` - 1 others of the group (a backlog goes through in batches; alone, it runs
        alone). Returns False when work under `key` is already queued or running."""
        return self._push(priority, key, run, (group, limit))

    def _push(self, priority: float, key: Hashable, work: Callable, batch: tuple | None) -> bool:
        with self._cond:
            if self._stopping or key in self._keys:
                return False
            self._keys.add(key)
            heapq.heappush(self._heap, (priority, next(self._order), key, work, batch))
            self._cond.notify()
        return True

    def _take_batch(self, key: Hashable, batch: tuple) -> list[Hashable]:
        """`key` and the keys of up to limit - 1 queued items of the same group, oldest
        first, taken off the heap (called with the condition held)."""
        group, limit = batch
        mates = sorted(
            (item for item in self._heap if item[4] is not None and item[4][0] == group),
            key=lambda item: item[1],
        )[: limit - 1]
        if mates:
            taken = {item[1] for item in mates}
            self._heap = [item for item in self._heap if item[1] not in taken]
            heapq.heapify(self._heap)
        return [key] + [item[2] for item in mates]

    def has_room(self, promised: int = 0) -> bool:
        """True when a thread is free for one more piece of work, none waiting before it,
        besides `promised` pieces about to be submitted."""
        with self._cond:
            return self._busy + len(self._heap) + promised < len(self._threads)

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
                _priority, _n, key, work, batch = heapq.heappop(self._heap)
                keys = [key] if batch is None else self._take_batch(key, batch)
                self._busy += 1
            try:
                work() if batch is None else work(keys)
            except Exception:
                log.exception("pooled work %s failed; the sweeper will retry it", keys)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._keys.difference_update(keys)
