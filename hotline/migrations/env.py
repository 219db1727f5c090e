"""Alembic's environment for the hotline schema.

`hotline.migrate` runs this with a connection it has already locked (see there) in
`config.attributes["connection"]`; that is the only way the application applies migrations.
A developer may also use the `alembic` command with the alembic.ini at the repository root
(DATABASE_URL names the database), e.g. to autogenerate a new revision.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import MetaData


def _target_metadata() -> MetaData:
    """The models' schema, for autogenerate only (migrations themselves never import it)."""
    from sqlmodel import SQLModel

    from routing import tables  # noqa: F401  (registers the tables)

    return SQLModel.metadata


def _render_item(type_: str, obj: object, _autogen_context: object) -> str | bool:
    """Autogenerate writes library types, never the application's: a migration must not
    import models or their helpers (they change; the migration must not)."""
    if type_ != "type":
        return False
    name = type(obj).__name__
    if name == "AutoString":  # sqlmodel's str column: a plain VARCHAR
        return "sa.String()"
    if name == "UTCDateTime":  # routing.tables: timezone-aware DateTime underneath
        return "sa.DateTime(timezone=True)"
    return False


def _options() -> dict:
    return {
        "target_metadata": context.config.attributes.get("target_metadata") or _target_metadata(),
        # SQLite cannot ALTER most things: batch mode recreates the table (copy and rename)
        "render_as_batch": True,
        # one transaction for the whole upgrade, where the database allows it; hotline.migrate
        # relies on it (on SQLite it even holds the write lock around everything)
        "transaction_per_migration": False,
        "compare_type": True,
        "compare_server_default": True,
        "render_item": _render_item,
    }


def _run_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]
    context.configure(url=url, literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **_options())
        with context.begin_transaction():
            context.run_migrations()
        return
    from hotline.db import make_engine

    url = os.environ.get("DATABASE_URL") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DATABASE_URL to the database to migrate")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **_options())
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
