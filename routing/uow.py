"""The unit of work: one transaction, and what to do once it has committed.

Routing opens its sessions here. Work that must follow a state change (schedule the next
escalation step, send what the change queued in the outbox) is registered on the unit of work
and runs only after the commit succeeded, in one place: never before (a worker could pick up
a job whose rows are not visible yet) and never after a rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection
from sqlmodel import Session

from routing import jobqueue
from routing.runtime import Runtime

log = logging.getLogger(__name__)


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

    def send(self, kind: str, row_id: int, priority: int, at: datetime | None = None,
             claimed: object | None = None) -> None:
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


class Writes(_AfterCommit):
    """A unit of work without the ORM: one transaction on a bare connection, plus the actions
    to run after its commit (see `writes`)."""

    def __init__(self, connection: Connection):
        super().__init__()
        self.connection = connection


@contextmanager
def writes(rt: Runtime) -> Iterator[Writes]:
    """`unit_of_work` for a hot path of plain SQL statements (a busy webhook's store: the
    ORM session's own bookkeeping costs as much as the insert). Commits when the block ends
    normally, then runs the after-commit actions; rolls back, running nothing, when it
    raises."""
    with rt.engine.connect() as connection:
        work = Writes(connection)
        with connection.begin():
            yield work
        work._run_after_commit()
