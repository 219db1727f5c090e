"""Database engine: SQLite (default, one machine) or PostgreSQL (`DATABASE_URL`).

SQLite is shared by the web process and every worker. Following SQLAlchemy's documented
pysqlite recipe we turn off the driver's own transaction handling and emit `BEGIN IMMEDIATE`
ourselves, so a transaction takes the write lock when it starts instead of failing with
"database is locked" when it upgrades from read to write; WAL lets readers go on meanwhile.
Writers of every process queue for that lock on a file lock first (`_WriterLock`), which
hands it on within a fraction of a millisecond; `busy_timeout` still covers any other writer.

The schema is Alembic's (hotline.migrate, `hotline db upgrade`): nothing here creates tables.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """An engine for `url`, with the SQLite locking recipe applied when it is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # created 0600 whatever the umask; SQLite gives its -wal and -shm the file's mode
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    engine = create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False,
                           "factory": _Connection}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    _begin_immediate(engine, _writer_lock_path(parsed.database))
    return engine


def _writer_lock_path(database: str | None) -> Path | None:
    if not database or database == ":memory:":
        return None
    return Path(database + "-writer")


# per SQLite engine, the threads with a transaction open (each holds the write lock)
_OPEN: weakref.WeakKeyDictionary[Engine, set[int]] = weakref.WeakKeyDictionary()


def holds_write_lock(engine: Engine) -> bool:
    """True when this thread is inside a transaction of `engine` (SQLite): a transaction
    opened now on another connection could not begin until this one ends. Always False for
    PostgreSQL."""
    return threading.get_ident() in _OPEN.get(engine, ())


class _WriterLock:
    """Writers queue for SQLite's write lock here first: `flock` on a file beside the database.

    SQLite's busy handler waits for the write lock by sleeping 1, 2, 5, 10, 15, 20, 25 … up to
    100 ms between tries, so writers that meet at the lock (gunicorn's threads and processes,
    a worker's pool) lose milliseconds at every turn while the lock lies idle. Writers of every
    process try this lock instead, every 0.1-2 ms, and only its holder asks SQLite, which then
    answers at once. Each transaction opens its own descriptor (flock excludes descriptors,
    not processes); a process that dies, even SIGKILLed, releases the lock with them, and a
    child forked meanwhile closes its copies at once (`_forget_writer_locks`).
    The wait is bounded like SQLite's own: "database is locked" after BUSY_TIMEOUT_MS.
    """

    def __init__(self, path: Path):
        self.path = path

    def acquire(self) -> int:
        """Wait for the lock; returns the descriptor that holds it (close it to release)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.0001
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise sqlite3.OperationalError("database is locked") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.002)
        except BaseException:
            os.close(fd)
            raise


class _Connection(sqlite3.Connection):
    """The driver's connection, holding the writer lock from our BEGIN IMMEDIATE until its own
    COMMIT or ROLLBACK has ended the transaction (so the next writer never finds SQLite's lock
    still taken)."""

    writer_lock: int | None = None

    def hold_writer_lock(self, fd: int) -> None:
        self.writer_lock = fd
        _HOLDERS.add(self)

    def commit(self) -> None:
        super().commit()
        self.release_writer_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_writer_lock()

    def release_writer_lock(self) -> None:
        fd, self.writer_lock = self.writer_lock, None
        _HOLDERS.discard(self)
        if fd is not None:
            # unlock first: a child forked meanwhile (RQ's scheduler process) holds a copy of
            # the descriptor, and closing ours alone would leave the lock with that copy
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# the connections of this process holding the writer lock now
_HOLDERS: weakref.WeakSet[_Connection] = weakref.WeakSet()


def _forget_writer_locks() -> None:
    """In a child just forked (RQ's scheduler): close its copies of the lock descriptors, so
    the lock goes when the parent's transaction ends or the parent dies, not with this
    child; the copied connections are never used here."""
    for connection in list(_HOLDERS):
        if connection.writer_lock is not None:
            os.close(connection.writer_lock)
            connection.writer_lock = None
    _HOLDERS.clear()


os.register_at_fork(after_in_child=_forget_writer_locks)


def _begin_immediate(engine: Engine, lock_path: Path | None = None) -> None:
    """`BEGIN IMMEDIATE` for every transaction, after the writer lock when there is a file
    for one (`_WriterLock`), noting which thread holds the write lock.

    A second transaction begun in a thread that already has one would wait for itself: the
    busy timeout (30 s) and then "database is locked". It fails at once instead, and
    holds_write_lock() lets code that may run inside a transaction find out first.
    """
    threads = _OPEN[engine] = set()
    holder = "hotline_transaction_of"
    lock = _WriterLock(lock_path) if lock_path is not None else None

    def ended(info: dict) -> None:  # noqa: ANN001
        threads.discard(info.pop(holder, None))

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        me = threading.get_ident()
        if me in threads:
            raise sqlite3.OperationalError("database is locked by this thread's own open "
                                           "transaction")
        driver = connection.connection.dbapi_connection
        if lock is not None and driver.writer_lock is None:
            driver.hold_writer_lock(lock.acquire())
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            driver.release_writer_lock()
            raise
        connection.info[holder] = me
        threads.add(me)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection):  # noqa: ANN001
        ended(connection.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection, record):  # noqa: ANN001
        ended(record.info)  # a connection dropped without commit or rollback
        if dbapi_connection is not None:
            dbapi_connection.release_writer_lock()


WAL_TRIES = 100


def _wal(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode (once per file: it persists). Switching needs a moment
    with no other connection in a transaction, and SQLite answers "database is locked" at
    once rather than waiting, so two processes opening a new file together retry here."""
    for attempt in range(WAL_TRIES):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_TRIES - 1:
                raise
            time.sleep(0.05)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> None:
    """Raises when the database cannot answer a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
