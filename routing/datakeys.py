"""Data keys: what belongs to one incident is sealed under keys of its own (hotline.crypto),
so that purging the incident deletes the keys, and every copy of it anywhere stops opening.

Which key a row's `_enc` columns are sealed under:
- an incident's own: a key made when it opens;
- a message or call written for an incident that exists (pages, relays, replies, alarms):
  the incident's key;
- a contact stored before it is threaded (every defender message and call, staff commands),
  a message of no incident (a digest, a reminder), a web receipt: a key of its own, made with
  it, which stays its key when the contact joins an incident.
Purge deletes the keys of every row it erases (routing.retention); nothing else deletes one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from routing.runtime import Crypto
from routing.tables import DataKey, utcnow


def data_key(vault: Crypto) -> DataKey:
    """A new data key, as the row that keeps it (wrapped); added to no session yet."""
    key_id, wrapped = vault.new_data_key()
    return DataKey(id=key_id, wrapped=wrapped, created_at=utcnow())


def new_key(session: Session, vault: Crypto) -> str:
    """A new data key, added to `session` (it commits with the rows sealed under it)."""
    key = data_key(vault)
    session.add(key)
    return key.id


def seal(session: Session, vault: Crypto, row: Any, **plaintexts: str | None) -> None:
    """Set `row`'s `<name>_enc` columns to `plaintexts`, sealed under the row's data key (a
    new one when it has none yet)."""
    if row.key_id is None:
        row.key_id = new_key(session, vault)
    for name, plaintext in plaintexts.items():
        setattr(row, f"{name}_enc", vault.seal(row.key_id, where(row, name), plaintext))


def unseal(vault: Crypto, row: Any, name: str) -> str | None:
    """The plaintext of `row`'s `<name>_enc` column (None stays None)."""
    return vault.open(row.key_id, where(row, name), getattr(row, f"{name}_enc"))


def where(row: Any, name: str) -> str:
    """The column a sealed value belongs to, as its associated data names it."""
    return f"{row.__tablename__}.{name}"


def destroy(session: Session, vault: Crypto, key_ids: Iterable[str | None]) -> int:
    """Delete these data keys: what they sealed never opens again, wherever a copy of it lies.
    Returns how many there were."""
    ids = sorted({key_id for key_id in key_ids if key_id})
    if not ids:
        return 0
    count = session.exec(delete(DataKey).where(DataKey.id.in_(ids))).rowcount
    vault.forget(ids)
    return count
