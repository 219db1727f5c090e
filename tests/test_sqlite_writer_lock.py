"""SQLite's writers queue on a file lock beside the database (hotline.db._WriterLock).

The lock must be held for exactly a transaction (from BEGIN IMMEDIATE to the driver's COMMIT
or ROLLBACK), shared by every process, given up by a process that dies inside a transaction,
and bounded in time like SQLite's own busy timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

import hotline.db
from hotline.db import make_engine

ROOT = Path(__file__).resolve().parent.parent


def lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "hotline.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE note (body TEXT)")
    yield engine, path, tmp_path / "hotline.db-writer"
    engine.dispose()


def count(engine) -> int:  # noqa: ANN001
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM note")).scalar_one()


def test_a_transaction_holds_the_writer_lock_from_begin_to_commit_or_rollback(database):
    engine, _path, lock = database
    assert lock_is_free(lock)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    # a Core connection stays checked out after its commit: the driver's COMMIT releases
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO note VALUES ('one')"))
        assert not lock_is_free(lock)
        connection.commit()
        assert lock_is_free(lock)
        connection.execute(text("INSERT INTO note VALUES ('two')"))
        assert not lock_is_free(lock)
        connection.rollback()
        assert lock_is_free(lock)
    with pytest.raises(RuntimeError), Session(engine) as session:
        session.execute(text("INSERT INTO note VALUES ('three')"))
        assert not lock_is_free(lock)
        raise RuntimeError("the handler failed")
    assert lock_is_free(lock)
    assert count(engine) == 1


def test_a_writer_waits_for_the_lock_and_goes_on_when_its_holder_is_killed(database):
    """A worker SIGKILLed inside a transaction: the kernel drops its lock, SQLite's too."""
    engine, path, lock = database
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from sqlalchemy import text\n"
            "from hotline.db import make_engine\n"
            "connection = make_engine(sys.argv[1]).connect()\n"
            "connection.execute(text(\"INSERT INTO note VALUES ('killed')\"))\n"
            "print('holding', flush=True)\n"
            "time.sleep(60)\n"
        ), f"sqlite:///{path}"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert not lock_is_free(lock)
        done = threading.Event()

        def write() -> None:
            with Session(engine) as session:
                session.execute(text("INSERT INTO note VALUES ('mine')"))
                session.commit()
            done.set()

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        assert not done.wait(0.5), "a second writer got in while the first held the lock"
        holder.kill()
        assert done.wait(10), "the writer stayed stuck after its holder died"
    finally:
        holder.kill()
        holder.wait()
    with engine.connect() as connection:
        bodies = connection.execute(text("SELECT body FROM note")).scalars().all()
    assert bodies == ["mine"]  # the killed transaction never happened


def test_a_writer_that_waits_past_the_busy_timeout_fails_and_changes_nothing(
        database, monkeypatch):
    engine, _path, lock = database
    monkeypatch.setattr(hotline.db, "BUSY_TIMEOUT_MS", 300)
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # someone else's transaction, stuck
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"), \
                Session(engine) as session:
            session.execute(text("INSERT INTO note VALUES ('late')"))
        assert time.monotonic() - started < 5
    finally:
        os.close(fd)
    assert count(engine) == 0
    assert lock_is_free(lock)  # the failed writer left no lock behind


@pytest.mark.parametrize("parent", ["commits", "dies"])
def test_a_child_forked_inside_a_transaction_does_not_keep_the_lock(database, parent):
    """RQ's scheduler is a forked process: it inherits a copy of whatever descriptor a
    thread held at that moment, and must keep the lock neither when the transaction ends
    nor when the parent is killed in it."""
    engine, path, lock = database
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import os, sys, time\n"
            "from sqlalchemy import text\n"
            "from hotline.db import make_engine\n"
            "connection = make_engine(sys.argv[1]).connect()\n"
            "connection.execute(text(\"INSERT INTO note VALUES ('x')\"))\n"
            "child = os.fork()\n"
            "if child == 0:\n"
            "    time.sleep(30)\n"
            "    os._exit(0)\n"
            "print(child, flush=True)\n"
            "sys.stdin.readline()\n"
            "connection.commit()\n"
            "print('committed', flush=True)\n"
            "time.sleep(30)\n"
        ), f"sqlite:///{path}"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        assert not lock_is_free(lock)
        if parent == "commits":
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "committed"
        else:
            holder.kill()
            holder.wait()
        assert lock_is_free(lock), "the forked child kept the writer lock"
    finally:
        holder.kill()
        holder.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)
