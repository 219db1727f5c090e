"""The master key matches the data, or nothing starts.

After a key change that skipped `hotline rekey` (a typo, the staging key in production), the
hotline would run and quietly stop matching: BLOCK and SILENT no longer apply, a defender's
new message opens a second incident, receipts stop opening. So the database keeps a check
value of the key its data is under (routing.tables.KeyCheck), and every process that keeps
data compares it with the configured keys before it writes anything: no match, one line and
exit 2. A database from before the check is verified by opening one stored value, then gets
its check value. `hotline rekey` moves it to the new key when every row is under that key.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hotline.crypto import SEALED, Vault
from hotline.db import make_engine
from hotline.migrate import require_current
from hotline.settings import Settings
from routing.tables import DataKey, Incident, KeyCheck, Message, RotaVersion, utcnow


class KeyMismatch(Exception):
    """HOTLINE_SECRET_KEY is not the key the database's data is under."""

    def __init__(self) -> None:
        super().__init__(
            "HOTLINE_SECRET_KEY does not match the data in this database: set the key it was "
            "made with (when changing keys: the new one first, the old one after it, then "
            "`hotline rekey`)"
        )


def check_key(engine: Engine, vault: Vault) -> None:
    """Raise KeyMismatch unless one of the configured keys is the data's; record the check
    value of the current key when the database has none yet."""
    with Session(engine) as session:
        row = session.get(KeyCheck, 1)
        if row is not None:
            if row.value not in vault.check_values():
                raise KeyMismatch()
            return
        key = session.exec(select(DataKey).limit(1)).first()
        sample = _a_stored_value(session) if key is None else None
    try:
        if key is not None:
            current = vault.rewrap(key.id, key.wrapped) is None
        elif sample is not None:
            vault.decrypt(sample)
            current = vault.is_current(sample)
        else:
            current = True  # nothing stored yet: the data will be under this key
    except InvalidToken:
        raise KeyMismatch() from None
    if current:  # mid-rotation (an older key opened it) the check waits for `hotline rekey`
        record_key(engine, vault)


def record_key(engine: Engine, vault: Vault) -> None:
    """The data is under the current key now (a new database, or after `hotline rekey`)."""
    with Session(engine) as session:
        row = session.get(KeyCheck, 1) or KeyCheck(id=1, value="", set_at=utcnow())
        if row.value != vault.check_values()[0]:
            row.value, row.set_at = vault.check_values()[0], utcnow()
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # another process starting with us recorded it first
                session.rollback()


def require_ready_database(settings: Settings) -> None:
    """Before a process that keeps data starts: the schema is current (else SchemaBehind) and
    the key is the data's (else KeyMismatch); with an engine of its own that it disposes of."""
    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        check_key(engine, Vault(settings.secret_keys))
    finally:
        engine.dispose()


def _a_stored_value(session: Session) -> str | None:
    """A value under the master key itself (from before data keys, or the rota's copy)."""
    for column in (RotaVersion.text_enc, Incident.defender_enc, Message.body_enc):
        value = session.exec(
            select(column).where(column.is_not(None), column.not_like(f"{SEALED}%")).limit(1)
        ).first()
        if value is not None:
            return value
    return None
