"""Files only the hotline's own user can read: the instance folder 0700, files in it 0600.

The instance folder holds the SQLite database and its WAL, the embedded Redis dump and, in
console mode, the secret key. `private_umask()` makes everything the process (and the Redis
server it starts) creates private, whatever the shell's umask; `check_private()` refuses to
start on a folder or database file that other local users can read, because that is where
defenders' (encrypted) messages and every timing of the line live. `write_private()` writes
a file the hotline exports (a report) the same way, private from the start.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from hotline.settings import Settings, SettingsError

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """From now on this process and its children create files 0600 and folders 0700."""
    os.umask(PRIVATE_UMASK)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def check_private(settings: Settings) -> None:
    """Raise SettingsError (one line, with the fix) when the instance folder or the SQLite
    file exists and is open to the group or to others. Missing ones are created private."""
    targets = [settings.instance_dir]
    database = sqlite_path(settings.database_url)
    if database is not None:
        targets += [database, database.with_name(database.name + "-wal")]
    for path in targets:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & 0o077:
            fix = "chmod 700" if stat.S_ISDIR(mode) else "chmod 600"
            raise SettingsError(
                f"{path}: readable by other local users (mode {stat.filemode(mode)}); "
                f"run `{fix} {path}` (and `chmod 600` the files in it), then start again"
            )


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` as a file only this user may read (0600), atomically: a reader
    sees the old file or the new one, never half of it, and a file that was open to others is
    replaced, not rewritten in place. Raises OSError when the folder cannot take it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # mkstemp's own mode, whatever the umask said
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
