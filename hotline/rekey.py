"""`hotline rekey`: rewrite all personal data under the current (first) key.

Key rotation, step by step:
1. Put the new key first: `HOTLINE_SECRET_KEY=new,old`; restart every process. New data is
   written under the new key; old data still opens, and old hashes still match, because every
   lookup tries every key (`Vault.lookup_hashes`).
2. `hotline rekey`: every data key is rewrapped under the new key (the values they seal stay
   as they are), every value from before data keys is sealed under a data key of its row, the
   rota's copies are re-encrypted, and every `<stem>_hash` column is recomputed from its
   `<stem>_enc` sibling. Batched (one short
   transaction per batch, rows locked), idempotent (a second run changes nothing), safe while
   the hotline runs.
3. Remove the old key: `HOTLINE_SECRET_KEY=new`; restart.

Blocks hold a hash only, no ciphertext. A block made for an incident is rehashed from that
incident's sender; one whose incident was erased cannot be, and keeps working only while its
old key is configured. The report says how many there are and when the last expires: keep the
old key until then, or accept that those blocks end early.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from hotline.crypto import SEALED, Vault
from hotline.db import make_engine, scrub, vault_on
from hotline.keycheck import check_key, record_key
from hotline.migrate import require_current
from hotline.settings import Settings
from routing.datakeys import new_key, unseal
from routing.identity import address_forms
from routing.tables import Block, DataKey, Incident, WebReceipt
from routing.webform import RECEIPT_KEY_MARK

BATCH = 500


@dataclass
class RekeyReport:
    reencrypted: int = 0
    rehashed: int = 0
    blocks_rehashed: int = 0
    blocks_stuck: int = 0  # blocks whose incident was erased: maybe on an old key
    stuck_until: datetime | None = None
    unreadable: int = 0  # values no configured key opens
    old_receipts: int = 0  # web receipts whose hash is under another key than the current


def rekey(engine: Engine, vault: Vault, batch: int = BATCH) -> RekeyReport:
    """Re-encrypt and rehash everything under `vault`'s current key. Returns the counts."""
    report = RekeyReport()
    _rewrap_keys(engine, vault, batch, report)
    for table in SQLModel.metadata.sorted_tables:
        if any(c.name.endswith("_enc") for c in table.columns):
            _rekey_table(engine, vault, table, batch, report)
    _rehash_blocks(engine, vault, batch, report)
    report.old_receipts = _receipts_on_other_keys(engine, vault)
    return report


def _receipts_on_other_keys(engine: Engine, vault: Vault) -> int:
    """Receipts made under another key than the current one (or before that was recorded):
    a receipt is never stored, so it cannot be rehashed, and opens only while its key is
    configured."""
    current = vault.check_values()[0][:RECEIPT_KEY_MARK]
    with Session(engine) as session:
        return session.execute(
            select(func.count())
            .select_from(WebReceipt)
            .where(or_(WebReceipt.made_under.is_(None), WebReceipt.made_under != current))
        ).scalar_one()


def _rekey_table(
    engine: Engine, vault: Vault, table: Table, batch: int, report: RekeyReport
) -> None:
    (pk,) = table.primary_key.columns
    encrypted = [c.name for c in table.columns if c.name.endswith("_enc")]
    hashed = [
        (c.name, c.name[:-5] + "_enc")
        for c in table.columns
        if c.name.endswith("_hash") and c.name[:-5] + "_enc" in table.columns
    ]
    last = None
    while True:
        with Session(engine) as session:
            query = select(table).order_by(pk).limit(batch).with_for_update()
            if last is not None:
                query = query.where(pk > last)
            rows = session.execute(query).mappings().all()
            if not rows:
                return
            for row in rows:
                values = _rekeyed_values(session, vault, table, row, encrypted, hashed, report)
                if values:
                    session.execute(update(table).where(pk == row[pk.name]).values(**values))
            last = rows[-1][pk.name]
            session.commit()


def _rewrap_keys(engine: Engine, vault: Vault, batch: int, report: RekeyReport) -> None:
    """Every data key wrapped under the current master key."""
    for _session, keys in _batches(engine, DataKey, DataKey.id, "", batch):
        for key in keys:
            try:
                wrapped = vault.rewrap(key.id, key.wrapped)
            except InvalidToken:
                report.unreadable += 1
                continue
            if wrapped is not None:
                key.wrapped = wrapped
                report.reencrypted += 1


def _batches(
    engine: Engine, model: type, column: Any, start: object, batch: int
) -> Iterator[tuple[Session, list]]:
    """The rows of `model` in order of `column`, `batch` at a time, each batch locked in a
    transaction of its own that commits after the caller is done with it."""
    last = start
    while True:
        with Session(engine) as session:
            rows = (
                session.execute(
                    select(model)
                    .where(column > last)
                    .order_by(column)
                    .limit(batch)
                    .with_for_update()
                )
                .scalars()
                .all()
            )
            if not rows:
                return
            yield session, list(rows)
            last = getattr(rows[-1], column.key)
            session.commit()


def _rekeyed_values(
    session: Session,
    vault: Vault,
    table: Table,
    row,  # noqa: ANN001
    encrypted: list[str],
    hashed: list[tuple[str, str]],
    report: RekeyReport,
) -> dict:
    """The new values of `row`: a value from before data keys sealed under the row's data key
    (a new one when it has none), the rota's copy re-encrypted, hashes recomputed."""
    values: dict = {}
    keyed = "key_id" in table.columns
    try:
        for name in encrypted:
            token = row[name]
            if token is None or token.startswith(SEALED):
                continue  # erased, or under a data key: rewrapping the key was enough
            if not keyed:
                if not vault.is_current(token):
                    values[name] = vault.rotate(token)
                    report.reencrypted += 1
                continue
            if "key_id" not in values:
                values["key_id"] = row["key_id"] or new_key(session, vault)
            where = f"{table.name}.{name.removesuffix('_enc')}"
            values[name] = vault.seal(values["key_id"], where, vault.decrypt(token))
            report.reencrypted += 1
        for hash_name, enc_name in hashed:
            if row[enc_name] is None or row[hash_name] is None:
                continue  # erased: its hash is a tombstone on purpose
            where = f"{table.name}.{enc_name.removesuffix('_enc')}"
            address = vault.open(row.get("key_id"), where, row[enc_name])
            digest = current_hash(vault, address, row[hash_name])
            if digest is not None and digest != row[hash_name]:
                values[hash_name] = digest
                report.rehashed += 1
    except InvalidToken:
        report.unreadable += 1
        return {}
    return values


def current_hash(vault: Vault, address: str, stored: str) -> str | None:
    """The current-key hash of whichever form of `address` `stored` was made from, or None
    when `stored` is no hash of it under any configured key.

    An incident keeps the hash of the address that opened it even after its sender switched
    from SMS to WhatsApp, hence the search over the forms of the address.
    """
    for variant in address_forms(address):
        if stored in vault.lookup_hashes(variant):
            return vault.lookup_hash(variant)
    return None


def _rehash_blocks(engine: Engine, vault: Vault, batch: int, report: RekeyReport) -> None:
    for session, blocks in _batches(engine, Block, Block.id, 0, batch):
        for block in blocks:
            _rehash_block(session, vault, block, report)


def _rehash_block(session: Session, vault: Vault, block: Block, report: RekeyReport) -> None:
    incident = session.get(Incident, block.incident_id) if block.incident_id else None
    address = None
    if incident is not None and incident.defender_enc is not None:
        try:
            address = unseal(vault, incident, "defender")
        except InvalidToken:
            report.unreadable += 1
    digest = current_hash(vault, address, block.address_hash) if address else None
    if digest is None:  # its sender is no longer known: it cannot be checked or rehashed
        report.blocks_stuck += 1
        report.stuck_until = max(report.stuck_until or block.expires_at, block.expires_at)
        return
    if digest == block.address_hash:
        return
    twin = session.execute(select(Block).where(Block.address_hash == digest)).scalars().first()
    if twin is not None:  # blocked again under the new key meanwhile: keep the longer block
        twin.expires_at = max(twin.expires_at, block.expires_at)
        session.execute(delete(Block).where(Block.id == block.id))
    else:
        block.address_hash = digest
    report.blocks_rehashed += 1


def run_rekey(settings: Settings) -> int:
    """`hotline rekey`: prints the counts and what to do next. Exit 1 when some value could
    not be opened with any configured key. Raises hotline.migrate.SchemaBehind when the database
    needs `hotline db upgrade`."""
    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        vault = vault_on(engine, settings.secret_keys)
        check_key(engine, vault)
        report = rekey(engine, vault)
        if not report.unreadable:
            record_key(engine, vault)  # the data is under the current key now
        scrub(engine)  # the values under the old key leave the write-ahead log too
    finally:
        engine.dispose()
    print(
        f"Re-encrypted {report.reencrypted} value(s) and recomputed {report.rehashed} "
        f"lookup hash(es) and {report.blocks_rehashed} block(s) under the current key."
    )
    if report.unreadable:
        print(
            f"{report.unreadable} row(s) could not be opened with any configured key and "
            "were left as they are: is a key missing from HOTLINE_SECRET_KEY?"
        )
        return 1
    if report.blocks_stuck:
        print(
            f"{report.blocks_stuck} block(s) belong to erased incidents and could not be "
            "rehashed; those made before the rotation end when the old key is removed. All "
            f"expire by {report.stuck_until:%Y-%m-%d}: keep the old key until then if they "
            "matter."
        )
    if report.old_receipts:
        print(
            f"{report.old_receipts} web form receipt(s) were issued under an earlier key and "
            "cannot be moved (a receipt is never stored): they open only while that key stays "
            "in HOTLINE_SECRET_KEY, after the new one. Remove it once those conversations "
            "are over (retention erases them with their incidents)."
        )
    elif not report.blocks_stuck and len(settings.secret_keys) > 1:
        print(
            "Everything is under the current key: remove the old key(s) from "
            "HOTLINE_SECRET_KEY and restart the hotline."
        )
    return 0
