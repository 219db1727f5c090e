"""Group commit: a busy web process stores the messages its threads received together, in one
transaction.

Under a surge each webhook only stores its message (routing.intake `defer`). Alone, each
store would be a transaction of its own, and the process's threads would take turns at the
database's write lock (SQLite) or pay a round trip for BEGIN and another for COMMIT each
(PostgreSQL). Here the first thread to arrive while nobody is writing
becomes the writer: it inserts every row queued by then (its own among them) in one
transaction and hands each thread its row's id; threads that arrived meanwhile wait, and one
of them writes the next batch. No thread of its own, so nothing to die and leave webhooks
waiting: each store is written by a thread whose webhook is waiting for it. The writer runs
the batch's after-commit action (a Redis push) once it has handed over: neither the waiting
threads nor the next batch wait for that round trip.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError

from routing.runtime import Runtime
from routing.tables import DataKey
from routing.uow import Statements

log = logging.getLogger(__name__)
MOST_AT_ONCE = 64


@dataclass(eq=False)
class _Store:
    fields: dict
    key: dict | None = None  # its data key's row, written before it (routing.datakeys)
    row_id: int | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Inserts into `table`, batched across the threads of a process (see the module).

    `after_commit(row_ids)` runs once a batch has committed, with the ids it wrote, failing
    soft (the sweeper sees to what it did not do).
    """

    def __init__(
        self,
        rt: Runtime,
        table: Table,
        after_commit: Callable[[list[int]], object],
        most: int = MOST_AT_ONCE,
    ):
        self.after_commit, self.most = after_commit, most
        self._queue: list[_Store] = []
        self._writing = False
        self._cond = threading.Condition()
        self._statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        keys = DataKey.__table__
        self._key_statement = insert(keys).returning(keys.c.id, sort_by_parameter_order=True)
        self._statements = Statements(rt)  # used by the writer alone: one at a time

    def insert(self, fields: dict, key: DataKey | None = None) -> int:
        """Insert one row (after its data `key`, when given); returns its id once it is
        committed. Raises what the database raised for it (IntegrityError: a unique column
        already holds its value)."""
        store = _Store(fields, key.model_dump() if key is not None else None)
        with self._cond:
            self._queue.append(store)
        while True:
            with self._cond:
                while self._writing and not store.done:
                    self._cond.wait()
                if store.done:
                    break
                self._writing = True
                batch, self._queue[: self.most] = self._queue[: self.most], []
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
            self._after([s.row_id for s in batch if s.row_id is not None])
        if store.error is not None:
            raise store.error
        return store.row_id

    def _write(self, batch: list[_Store]) -> None:
        try:
            self._insert_keys(batch)
            try:
                self._insert(batch)
            except IntegrityError:
                if len(batch) == 1:
                    raise
                # one of them is already stored (a repeated delivery): find it alone
                for store in batch:
                    try:
                        self._insert([store])
                    except Exception as exc:
                        store.error = exc
        except Exception as exc:
            for store in batch:
                if store.row_id is None and store.error is None:
                    store.error = exc
        finally:
            for store in batch:
                store.done = True

    def _insert_keys(self, batch: list[_Store]) -> None:
        """The batch's data keys, in a statement of their own before the rows: a key whose
        row then turns out to be a repeat seals nothing, and is never written twice."""
        keys = [store.key for store in batch if store.key is not None]
        if keys:
            self._statements.execute(self._key_statement, keys)
        for store in batch:
            store.key = None

    def _insert(self, batch: list[_Store]) -> None:
        rows = self._statements.execute(self._statement, [store.fields for store in batch])
        for store, (row_id,) in zip(batch, rows, strict=True):
            store.row_id = row_id

    def _after(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        try:
            self.after_commit(row_ids)
        except Exception:
            log.exception("after-commit action failed; the sweeper will repair it")
