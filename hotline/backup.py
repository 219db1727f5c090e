"""`hotline backup FILE`, `hotline backup --verify FILE`, `hotline restore FILE`: snapshots
that restore, taken while the line runs.

A snapshot is consistent: SQLite's online backup API (a copy of one instant while writers go
on), or `pg_dump --format=custom` (one transaction's view) on PostgreSQL. It is encrypted
with the backup key, `HOTLINE_BACKUP_KEY` (32 random bytes, encoded: `hotline keygen`), kept
apart from `HOTLINE_SECRET_KEY`: whoever steals a backup needs both to read a defender's
words, and the backup key can live offline with whoever restores. (The rows inside are
already sealed under the secret key; the backup key hides the rest: who called when.)

The file: a header line (`hotline-backup 1 sqlite|postgresql`), a JSON line of what it holds
(each table's row count), then frames of at most CHUNK bytes, each AES-256-GCM sealed with
its index and whether it is the last in the associated data. A frame cut short, a missing
last frame, a changed byte or another key: refused with one line, nothing written.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from hotline.db import make_engine
from hotline.filesafety import write_private
from hotline.settings import Settings

MAGIC = b"hotline-backup 1 "
CHUNK = 1 << 20
NONCE = 12
KEY_VARIABLE = "HOTLINE_BACKUP_KEY"


class BackupRefused(Exception):
    """The one line an operator reads: why nothing was written."""


def backup_key(environ=os.environ) -> AESGCM:  # noqa: ANN001, B006
    raw = environ.get(KEY_VARIABLE, "")
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise BackupRefused(
            f"{KEY_VARIABLE} must be 32 random bytes, encoded (`hotline keygen` makes one); "
            "keep it apart from HOTLINE_SECRET_KEY"
        )
    return AESGCM(key)


def _aad(index: int, last: bool) -> bytes:
    return b"hotline-backup:%d:%d" % (index, last)


def counts(url: str) -> dict[str, int]:
    """Each table's row count (Alembic's own table left out)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return _count(connection, inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _snapshot(url: str, folder: Path) -> tuple[str, Path, dict[str, int]]:
    """A consistent copy of the database in `folder`: (kind, file, its tables' row counts)."""
    parsed = make_url(url)
    target = folder / "snapshot"
    if parsed.get_backend_name() == "sqlite":
        source = sqlite3.connect(f"file:{parsed.database}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # the online backup API: one instant, writers carry on
        finally:
            copy.close()
            source.close()
        return "sqlite", target, counts(f"sqlite:///{target}")
    # The counts and the dump see one snapshot: a repeatable-read transaction exports it and
    # pg_dump takes it (writers are not blocked). The counts are read after the dump: a table
    # read before would hold a lock that a VACUUM FULL (the purge's) queues behind, and
    # pg_dump's own lock behind that, waiting on us: a deadlock no server could see.
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
            snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
            _pg(
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--lock-wait-timeout=60s",  # fail rather than wait forever
                f"--schema={schema}",  # the hotline's tables, and nothing else on the server
                f"--snapshot={snapshot}",
                f"--file={target}",
                _libpq(url),
            )
            held = _count(connection, inspect(connection).get_table_names())
            connection.rollback()
    finally:
        engine.dispose()
    return "postgresql", target, held


def _count(connection, tables: list[str]) -> dict[str, int]:  # noqa: ANN001
    return {
        t: connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
        for t in sorted(tables)
        if t != "alembic_version"
    }


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg(program: str, *args: str) -> None:
    if shutil.which(program) is None:
        raise BackupRefused(f"{program} is not installed (Debian: postgresql-client)")
    done = subprocess.run([program, *args], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise BackupRefused(f"{program} failed: {done.stderr.strip().splitlines()[-1:]}")


def take(settings: Settings, target: Path, key: AESGCM) -> dict[str, int]:
    """Write an encrypted snapshot of the database to `target` (mode 0600, whole or not at
    all). Returns the row counts it holds."""
    with tempfile.TemporaryDirectory() as folder:
        kind, snapshot, held = _snapshot(settings.database_url, Path(folder))
        parts = [MAGIC + kind.encode() + b"\n", json.dumps({"counts": held}).encode() + b"\n"]
        data = snapshot.read_bytes()
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    for index, chunk in enumerate(chunks):
        nonce = os.urandom(NONCE)
        sealed = key.encrypt(nonce, chunk, _aad(index, index == len(chunks) - 1))
        parts.append(struct.pack(">I", len(sealed)) + nonce + sealed)
    write_private(target, b"".join(parts))
    return held


def read(source: Path, key: AESGCM) -> tuple[str, dict[str, int], bytes]:
    """(kind, counts, the snapshot's bytes) of a backup file. Raises BackupRefused."""
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise BackupRefused(f"{source}: cannot read it ({exc.strerror})") from None
    head, _, rest = raw.partition(b"\n")
    meta, _, frames = rest.partition(b"\n")
    if not head.startswith(MAGIC) or head[len(MAGIC) :] not in (b"sqlite", b"postgresql"):
        raise BackupRefused(f"{source}: not a hotline backup")
    try:
        held = json.loads(meta)["counts"]
    except (ValueError, KeyError):
        raise BackupRefused(f"{source}: its header is damaged") from None
    data, index, at, last = [], 0, 0, False
    while at < len(frames):
        if at + 4 + NONCE > len(frames):
            raise BackupRefused(f"{source}: truncated")
        (length,) = struct.unpack(">I", frames[at : at + 4])
        nonce, sealed = (
            frames[at + 4 : at + 4 + NONCE],
            frames[at + 4 + NONCE : at + 4 + NONCE + length],
        )
        if len(sealed) != length:
            raise BackupRefused(f"{source}: truncated")
        at += 4 + NONCE + length
        last = at == len(frames)
        try:
            data.append(key.decrypt(nonce, sealed, _aad(index, last)))
        except InvalidTag:
            if index == 0:
                raise BackupRefused(f"{source}: wrong backup key, or the file is damaged") from None
            raise BackupRefused(f"{source}: damaged or truncated (frame {index})") from None
        index += 1
    if not last:
        raise BackupRefused(f"{source}: truncated")
    return head[len(MAGIC) :].decode(), held, b"".join(data)


def restore(url: str, source: Path, key: AESGCM) -> dict[str, int]:
    """Restore a backup into the empty database at `url`. Returns the counts it restored."""
    kind, held, data = read(source, key)
    engine = make_engine(url)
    try:
        present = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        dialect = engine.dialect.name
    finally:
        engine.dispose()
    if present:
        raise BackupRefused("the target database is not empty: restore only into an empty one")
    if kind != dialect:
        raise BackupRefused(f"a {kind} backup restores into {kind}, not {dialect}")
    with tempfile.TemporaryDirectory() as folder:
        snapshot = Path(folder) / "snapshot"
        snapshot.write_bytes(data)
        if kind == "sqlite":
            target = Path(make_url(url).database)
            write_private(target, data)
        else:
            _pg("pg_restore", "--no-owner", f"--dbname={_libpq(url)}", str(snapshot))
    restored = counts(url)
    if restored != held:
        raise BackupRefused(f"restored, but the counts differ from the backup's: {restored}")
    return restored


def run_backup(settings: Settings, file: str, *, verify: bool) -> int:
    try:
        key = backup_key()
        if verify:
            return _verify(settings, Path(file), key)
        held = take(settings, Path(file), key)
    except BackupRefused as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    print(f"{file}: backup of {sum(held.values())} rows in {len(held)} tables, encrypted.")
    return 0


def _verify(settings: Settings, source: Path, key: AESGCM) -> int:
    """Restore into a scratch database (a temporary file; on PostgreSQL a database of its own
    on the same server, dropped after) and compare the counts."""
    kind, _, _ = read(source, key)
    with scratch_database(settings.database_url, kind) as url:
        restored = restore(url, source, key)
    print(f"{source}: restores whole ({sum(restored.values())} rows, counts match).")
    return 0


@contextlib.contextmanager
def scratch_database(url: str, kind: str) -> Iterator[str]:
    """An empty database to restore into, gone afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'verify.db'}"
        return
    if make_url(url).get_backend_name() != "postgresql":
        raise BackupRefused("a postgresql backup verifies against a PostgreSQL server")
    name = f"hotline_verify_{secrets.token_hex(5)}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run_restore(settings: Settings, file: str) -> int:
    try:
        restored = restore(settings.database_url, Path(file), backup_key())
    except BackupRefused as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    print(f"{file}: restored {sum(restored.values())} rows; counts match the backup's.")
    return 0
