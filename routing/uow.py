"""The unit of work: one transaction, and what to do once it has committed.

Routing opens its sessions here. Work that must follow a state change (schedule the next
escalation step, send what the change queued in the outbox) is registered on the unit of work
and runs only after the commit succeeded, in one place: never before (a worker could pick up
a job whose rows are not visible yet) and never after a rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Executable, Row
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from routing import jobqueue
from routing.runtime import Runtime

log = logging.getLogger(__name__)
MOST_ROWS = 1000  # rows one `Statements.execute` may write (SQLAlchemy's default page size)


class _AfterCommit:
    """The actions to run once a transaction has committed, each failing soft (the sweeper
    repairs what one did not do)."""

    def __init__(self) -> None:
        self._after: list[Callable[[], object]] = []

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run `action()` once the transaction has committed."""
        self._after.append(action)

    def _run_after_commit(self) -> None:
        actions, self._after = self._after, []
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("after-commit action failed; the sweeper will repair it")


class UnitOfWork(_AfterCommit):
    """A session plus the actions to run after its commit (see `unit_of_work`)."""

    def __init__(self, rt: Runtime):
        super().__init__()
        self.rt = rt
        self.session = Session(rt.engine, expire_on_commit=False)
        self.claimed_sends = 0  # rows written claimed, for this worker's pool (routing.outbox)

    def schedule_step(self, incident_id: int, step: int, at: datetime) -> None:
        self.after_commit(lambda: jobqueue.schedule_step(self.rt, incident_id, step, at))

    def send(
        self,
        kind: str,
        row_id: int,
        priority: int,
        at: datetime | None = None,
        claimed: object | None = None,
    ) -> None:
        """Hand outbox row `row_id` ("message" or "call") to a sender after the commit;
        `claimed`: the row as this transaction claimed it (routing.outbox.Claimed), for a
        worker's own pool."""
        rt = self.rt
        if rt.dispatch is not None and (at is None or at <= rt.clock()):
            self.after_commit(lambda: rt.dispatch(kind, row_id, priority, claimed))
        else:
            self.after_commit(lambda: jobqueue.schedule_send(rt, kind, row_id, priority, at))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: when the block raises, what it changed and the after-commit
        actions it registered are undone, and the rest of the unit of work stands."""
        mark = len(self._after)
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            del self._after[mark:]
            raise

    def commit(self) -> None:
        """Commit, then run the registered actions (each failing soft: the sweeper repairs)."""
        self.session.commit()
        self._run_after_commit()

    def rollback(self) -> None:
        self.session.rollback()
        self._after = []


@contextmanager
def unit_of_work(rt: Runtime) -> Iterator[UnitOfWork]:
    """A unit of work that commits when the block ends normally (then runs its after-commit
    actions) and rolls back, running nothing, when it raises."""
    uow = UnitOfWork(rt)
    try:
        yield uow
        uow.commit()
    except BaseException:
        uow.rollback()
        raise
    finally:
        uow.session.close()


class Statements:
    """One connection, kept open, for a hot path whose every write is a single statement
    that commits on its own (a busy webhook's group insert, routing.groupcommit): the ORM
    session's bookkeeping, the pool's checkout and ping, and on PostgreSQL the BEGIN and
    COMMIT round trips cost more than the insert itself.

    On PostgreSQL each statement runs in autocommit: one statement is atomic by itself, so
    a multi-row INSERT commits whole or not at all, in one round trip. On SQLite it runs in
    `BEGIN IMMEDIATE` ... `COMMIT`, the engine's write-lock recipe (hotline.db). For one
    caller at a time (not thread-safe). A connection the database dropped (a restart) is
    replaced and the statement tried once more (an INSERT whose first try had committed
    then fails on its unique column, as a repeat would); any other error is raised as it
    came.
    """

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._in_transaction = rt.engine.dialect.name == "sqlite"
        self._connection: Connection | None = None

    def execute(self, statement: Executable, rows: list[dict]) -> Sequence[Row]:
        """Run `statement` for `rows` (at most MOST_ROWS: one statement, never cut into
        pages) and commit it; returns the rows it returned."""
        if len(rows) > MOST_ROWS:
            raise ValueError(f"{len(rows)} rows in one statement; at most {MOST_ROWS}")
        try:
            return self._execute(statement, rows)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        log.warning("database connection lost; running the statement again on a new one")
        return self._execute(statement, rows)

    def _execute(self, statement: Executable, rows: list[dict]) -> Sequence[Row]:
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        try:
            if not self._in_transaction:
                return connection.execute(statement, rows).all()
            with connection.begin():
                return connection.execute(statement, rows).all()
        except IntegrityError:
            raise  # the row's fault, not the connection's
        except BaseException:
            self.close()
            raise

    def _connect(self) -> Connection:
        connection = self.rt.engine.connect()
        if self._in_transaction:
            return connection
        # a multi-row INSERT with RETURNING is sent as one statement of up to this many rows
        # (SQLAlchemy's insertmanyvalues); in autocommit it must never be cut into pages
        return connection.execution_options(
            isolation_level="AUTOCOMMIT", insertmanyvalues_page_size=MOST_ROWS
        )

    def close(self) -> None:
        """Give the connection back (a new one is opened when next needed)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                log.debug("closing a dropped connection failed", exc_info=True)
