"""Database engine: SQLite (default, one machine) or PostgreSQL (`DATABASE_URL`).

SQLite is shared by the web process and every worker. Following SQLAlchemy's documented
pysqlite recipe we turn off the driver's own transaction handling and emit `BEGIN IMMEDIATE`
ourselves, so a transaction takes the write lock when it starts instead of failing with
"database is locked" when it upgrades from read to write; WAL lets readers go on meanwhile,
and writers wait for the lock in short turns instead of erroring (`_wait_for_the_write_lock`).

The schema is Alembic's (hotline.migrate, `hotline db upgrade`): nothing here creates tables.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import create_engine

from hotline.crypto import Vault

BUSY_TIMEOUT_MS = 30_000
# How long SQLite's own busy handler waits before BEGIN IMMEDIATE is tried again from here
# (see _wait_for_the_write_lock): a web process looks again every millisecond, a worker every
# ten, so when the lock comes free a waiting webhook (Twilio waits 15 s, then gives up on it)
# usually gets it before the worker's next batch, and the worker still gets every gap.
WEB_LOCK_TURN_MS = 1
WORKER_LOCK_TURN_MS = 10


def make_engine(url: str, lock_turn_ms: int = WEB_LOCK_TURN_MS) -> Engine:
    """An engine for `url`, with the SQLite locking recipe applied when it is SQLite.
    `lock_turn_ms`: how often a writer waiting for SQLite's write lock looks again."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # created 0600 whatever the umask; SQLite gives its -wal and -shm the file's mode
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    engine = create_engine(
        url, connect_args={"timeout": lock_turn_ms / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={lock_turn_ms}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # what a row held is overwritten with zeros when it is deleted or rewritten, not left
        # in free space for whoever copies the file (see scrub)
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    _begin_immediate(engine)
    return engine


# per SQLite engine, the threads with a transaction open (each holds the write lock)
_OPEN: weakref.WeakKeyDictionary[Engine, set[int]] = weakref.WeakKeyDictionary()


def holds_write_lock(engine: Engine) -> bool:
    """True when this thread is inside a transaction of `engine` (SQLite): a transaction
    opened now on another connection could not begin until this one ends. Always False for
    PostgreSQL."""
    return threading.get_ident() in _OPEN.get(engine, ())


def _begin_immediate(engine: Engine) -> None:
    """`BEGIN IMMEDIATE` for every transaction, noting which thread holds the write lock.

    A second transaction begun in a thread that already has one would wait for itself: the
    busy timeout (30 s) and then "database is locked". It fails at once instead, and
    holds_write_lock() lets code that may run inside a transaction find out first.
    """
    threads = _OPEN[engine] = set()
    holder = "hotline_transaction_of"

    def ended(info: dict) -> None:  # noqa: ANN001
        threads.discard(info.pop(holder, None))

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        me = threading.get_ident()
        if me in threads:
            raise sqlite3.OperationalError(
                "database is locked by this thread's own open transaction"
            )
        _wait_for_the_write_lock(connection.connection.dbapi_connection)
        connection.info[holder] = me
        threads.add(me)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection):  # noqa: ANN001
        ended(connection.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):  # noqa: ANN001
        ended(record.info)  # a connection dropped without commit or rollback


def _wait_for_the_write_lock(dbapi_connection: sqlite3.Connection) -> None:
    """`BEGIN IMMEDIATE`, waiting up to BUSY_TIMEOUT_MS for the write lock, in short turns.

    SQLite's busy handler sleeps longer the longer it has waited (1, 2, 5 ... then 100 ms
    between tries), so a writer that has waited a while sleeps through the moments the lock
    is free, and writers that keep coming (a worker's pool, one after another) take it every
    time: measured, webhooks waited seconds behind a busy worker. Here each try waits only the
    engine's `lock_turn_ms` in the handler, so every waiter looks again within milliseconds
    and the lock goes round, webhooks first. Every transaction begins here (reads too), so no
    other statement waits on a lock: the short busy timeout applies to nothing else.
    """
    deadline = None
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + BUSY_TIMEOUT_MS / 1000
            elif now >= deadline:
                raise


def vault_on(engine: Engine, keys: Sequence[str]) -> Vault:
    """The vault of these master keys, reading data keys from `engine`'s database."""
    vault = Vault(keys)
    vault.attach(key_reader(engine))
    return vault


def key_reader(engine: Engine) -> Callable[[str], str | None]:
    """Reads one wrapped data key (hotline.crypto.Vault.attach) on a connection of its own,
    kept open by this process and outside any transaction (autocommit): a thread inside a
    write transaction (on SQLite, the whole database's write lock) can still read a key
    another process committed, in one round trip, without a pool checkout and its ping. The
    threads of a process take turns on it; a connection the database dropped is replaced."""
    marker = "?" if engine.dialect.name == "sqlite" else "%s"
    query = f"SELECT wrapped FROM data_key WHERE id = {marker}"
    lock, held = threading.Lock(), {}

    def connect():  # noqa: ANN202
        pooled = engine.raw_connection()
        pooled.detach()  # this process's own from now on: never handed to anyone else
        connection = pooled.dbapi_connection
        if engine.dialect.name != "sqlite":
            connection.rollback()  # the pool's ping may have opened a transaction
            connection.autocommit = True
        return connection

    def read(key_id: str) -> str | None:
        with lock:
            for attempt in (1, 2):
                if held.get("pid") != os.getpid():  # none yet, or inherited across a fork
                    held.update(pid=os.getpid(), connection=connect())
                try:
                    cursor = held["connection"].cursor()
                    cursor.execute(query, (key_id,))
                    row = cursor.fetchone()
                    cursor.close()
                    return row[0] if row else None
                except Exception:
                    held.clear()  # dropped by the database (a restart): a new one, once
                    if attempt == 2:
                        raise
        return None

    @event.listens_for(engine, "engine_disposed")
    def _close(_engine: Engine) -> None:
        with lock:
            connection = held.get("connection") if held.get("pid") == os.getpid() else None
            held.clear()
        if connection is not None:
            connection.close()

    return read


WAL_TRIES = 100
SCRUB_TRIES = 20


def scrub(engine: Engine) -> bool:
    """After an erasure (purge, rekey), the database's own old copies of what it erased.

    SQLite: copy the write-ahead log into the database file and empty it; the log still holds
    the pages as they were, the file itself has none of it (secure_delete). PostgreSQL: a
    deleted row stays in its table's file as a dead version until vacuumed, and the deleted
    data keys are the rows that matter (everything they sealed stays sealed without them):
    `VACUUM FULL data_key` writes that small table anew and drops the old file. Returns False
    when SQLite's readers kept the log busy every try (it is emptied at a later checkpoint).
    Older WAL segments and backups are the operator's (README)."""
    if engine.dialect.name == "postgresql":
        connection = engine.raw_connection()
        driver = connection.dbapi_connection
        try:
            driver.rollback()  # the pool's ping may have opened one
            driver.autocommit = True  # VACUUM runs outside a transaction
            driver.cursor().execute("VACUUM FULL data_key")
        finally:
            driver.autocommit = False
            connection.close()
        return True
    if engine.dialect.name != "sqlite":
        return True
    for _ in range(SCRUB_TRIES):
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            busy, _log_pages, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.close()
        finally:
            connection.close()
        if not busy:
            return True
        time.sleep(0.05)
    return False


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
