"""The schema under Alembic: apply migrations, say where a database stands, refuse stale ones.

Migrations live in `hotline/migrations/versions/`; this module is the one door through which the
application applies them (`hotline db upgrade`, and `hotline run` for its own database).

- A database made by release 0.1 (tables created on start, no `alembic_version`) is recognised
  and stamped as the baseline, never re-created: its log survives.
- Two processes upgrading at once apply each migration once. On PostgreSQL the upgrade holds an
  advisory lock (a fixed key) on the connection Alembic uses; on SQLite the whole upgrade is one
  transaction, and hotline.db's engine starts every transaction with `BEGIN IMMEDIATE`, so the
  write lock serialises upgraders. Either way the revision is read again once the lock is held.
- A database at a revision this release does not know was migrated by a newer release: it is
  "ahead", not "behind". Migrations stay backward compatible for one release (README,
  "Upgrading"), so the older code may go on running against it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001_baseline"
# Tables of release 0.1, which created them on start: any of them without `alembic_version`
# means a database of that release.
BASELINE_TABLES = frozenset(
    {
        "incident",
        "event",
        "message",
        "page",
        "call",
        "acknowledgement",
        "staffstate",
        "block",
        "twiliodeletion",
        "rotaversion",
        "workerheartbeat",
    }
)
# pg_advisory_lock key (any fixed bigint; this is "hotline" in ASCII) shared by every upgrader
ADVISORY_LOCK_KEY = 0x686F746C696E65
UPGRADE_HINT = "run `hotline db upgrade`"


class SchemaError(RuntimeError):
    """The database's schema cannot be used or upgraded as it is; the message says why."""


class SchemaBehind(SchemaError):
    """The database lacks migrations this release needs (`hotline db upgrade` applies them)."""


class SchemaState(NamedTuple):
    """Where a database stands. `revision` is None for an empty database or one of release 0.1
    (`legacy`); `ahead` means a newer release migrated it past this release's `head`."""

    revision: str | None
    head: str
    behind: bool
    legacy: bool = False
    ahead: bool = False


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built here (no alembic.ini is needed at run time)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this release ships. Raises SchemaError on several heads."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise SchemaError(f"the migrations have {len(heads)} heads, need exactly one: {heads}")
    return heads[0]


def _state(connection: Connection) -> SchemaState:
    top = head()
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        legacy = bool(BASELINE_TABLES & set(inspect(connection).get_table_names()))
        return SchemaState(None, top, behind=True, legacy=legacy)
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(revision)
    except Exception:  # alembic raises several kinds for an id it has no script for
        return SchemaState(revision, top, behind=False, ahead=True)
    return SchemaState(revision, top, behind=revision != top)


def current(engine: Engine) -> SchemaState:
    """Where `engine`'s database stands (a `(revision, head, behind, ...)` tuple)."""
    with engine.connect() as connection:
        return _state(connection)


def require_current(engine: Engine) -> None:
    """Returns when this release can use the database (at head, or ahead of it).

    Raises SchemaBehind, whose message is one line naming `hotline db upgrade`.
    """
    state = current(engine)
    if not state.behind:
        if state.ahead:
            log.warning(
                "database schema %s is newer than this release's %s; going on "
                "(migrations are backward compatible for one release)",
                state.revision,
                state.head,
            )
        return
    where = (
        "release 0.1's schema"
        if state.legacy
        else "no schema"
        if state.revision is None
        else f"revision {state.revision}"
    )
    raise SchemaBehind(
        f"the database has {where}, this release needs {state.head}: {UPGRADE_HINT} first"
    )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply pending migrations; returns (revision before, revision after).

    Safe to run while the previous release serves, and from several processes at once: one
    applies, the others find the work done. A release 0.1 database is stamped as the baseline
    first. A database ahead of this release is left alone. Raises SchemaError when a release
    0.1 database lacks some of its tables (it was not made by that release), or whatever the
    database raised (nothing is applied then: the upgrade is one transaction).
    """
    with _locked(engine) as connection:
        state = _state(connection)  # again, now that no other upgrader can move it
        if connection.dialect.name == "postgresql":
            connection.commit()  # end the read, so that Alembic owns the upgrade's transaction
        if state.ahead:
            log.warning(
                "database schema %s is newer than this release's %s: nothing to do",
                state.revision,
                state.head,
            )
            return state.revision, state.revision
        config = alembic_config(connection)
        if state.legacy:
            _check_legacy(connection)
            command.stamp(config, BASELINE)
            log.info("release 0.1 database stamped as %s", BASELINE)
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    if state.revision != after:
        log.info("database schema upgraded from %s to %s", state.revision or "(none)", after)
    return state.revision, after


def _check_legacy(connection: Connection) -> None:
    missing = BASELINE_TABLES - set(inspect(connection).get_table_names())
    if missing:
        raise SchemaError(
            "the database has some of the hotline's tables but not "
            f"{', '.join(sorted(missing))}: it was not made by a hotline release; "
            "refusing to stamp it"
        )


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection on which no other upgrader runs until the block ends; commits on success."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            yield from _postgres_locked(connection)
        elif engine.dialect.name == "sqlite":
            yield from _sqlite_locked(connection)
        else:
            raise SchemaError(f"unsupported database {engine.dialect.name!r}")


def _postgres_locked(connection: Connection) -> Iterator[Connection]:
    # a session-level lock, not a transaction-level one, so that Alembic may own the
    # transaction (one for the whole upgrade) and a migration may still use an autocommit block
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    connection.commit()
    try:
        yield connection
        connection.commit()
    finally:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        connection.commit()


def _sqlite_locked(connection: Connection) -> Iterator[Connection]:
    # Batch mode recreates a table (copy, drop, rename); with foreign keys enforced, dropping a
    # referenced table would fail or cascade. SQLite ignores this pragma inside a transaction,
    # so it is set on the driver connection before ours begins (SQLite's documented procedure
    # for altering tables), and checked before committing.
    raw = connection.connection.driver_connection
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        # hotline.db issues BEGIN IMMEDIATE here: the write lock, held until commit. Alembic
        # sees a transaction already open and leaves it to us.
        with connection.begin():
            yield connection
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise SchemaError(
                    f"the migration broke {len(broken)} foreign key(s), "
                    f"first: {broken[0]}; nothing was applied"
                )
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
