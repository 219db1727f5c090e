"""`hotline db upgrade` and `hotline db current`: the schema's migrations, for operators."""

from __future__ import annotations

import sys

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from hotline import migrate
from hotline.crypto import SEALED
from hotline.db import make_engine, vault_on
from hotline.migrate import SchemaError
from hotline.settings import Settings
from routing.tables import Incident, Message


def upgrade(settings: Settings) -> int:
    """Applies pending migrations and prints `from -> to`. Exit 0, or 2 (one line on stderr)
    when the database cannot be reached or upgraded; nothing is applied then."""
    engine = make_engine(settings.database_url)
    try:
        before, after = migrate.upgrade(engine)
        if before == after:
            print(f"database schema {after}: nothing to upgrade")
        else:
            print(f"database schema upgraded: {before or '(none)'} -> {after}")
        if _values_before_data_keys(engine):
            _seal_earlier_values(engine, settings)
    except (SchemaError, SQLAlchemyError) as exc:
        print(f"hotline: database upgrade failed: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def _seal_earlier_values(engine: Engine, settings: Settings) -> None:
    """Values an earlier release stored under the master key itself, sealed under data keys
    (what `hotline rekey` does), so that a purge erases their old copies too."""
    from hotline.keycheck import KeyMismatch, check_key
    from hotline.rekey import rekey

    vault = vault_on(engine, settings.secret_keys)
    try:
        check_key(engine, vault)
    except KeyMismatch as exc:
        print(f"hotline: values of earlier releases not sealed: {exc}", file=sys.stderr)
        return
    report = rekey(engine, vault)
    print(
        f"hotline: sealed {report.reencrypted} value(s) of earlier releases under data keys",
        file=sys.stderr,
    )


def _values_before_data_keys(engine: Engine) -> bool:
    """True when some personal value is still under the master key itself (hotline.crypto)."""
    with Session(engine) as session:
        for column in (Incident.defender_enc, Message.body_enc, Message.address_enc):
            if session.exec(select(column).where(column.not_like(f"{SEALED}%")).limit(1)).first():
                return True
    return False


def current(settings: Settings) -> int:
    """Prints the revision and whether it is behind. Exit 0 at head (or ahead: a newer release
    migrated it), 1 when behind, 2 when the database cannot be reached."""
    engine = make_engine(settings.database_url)
    try:
        state = migrate.current(engine)
    except (SchemaError, SQLAlchemyError) as exc:
        print(f"hotline: cannot read the schema revision: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if state.ahead:
        print(f"{state.revision} (ahead: newer than this release's head {state.head})")
        return 0
    if not state.behind:
        print(f"{state.revision} (head)")
        return 0
    shown = (
        "none (release 0.1 tables, not yet stamped)"
        if state.legacy
        else state.revision or "none (empty database)"
    )
    print(f"{shown}: behind head {state.head}; run `hotline db upgrade`")
    return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"
