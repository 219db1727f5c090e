"""data keys: each incident's personal data under keys of its own (crypto-shredding)

Revision ID: 0009_data_keys
Revises: 0008_key_check
Create Date: 2026-12-07

Expand only: the `data_key` table (each key wrapped under the master key) and a `key_id`
column on every table with `_enc` columns. Values stored before still open as they are;
`hotline db upgrade` then seals them under data keys (hotline.dbcli, as `hotline rekey`).
Do not import application models: the schema is spelt out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_data_keys"
down_revision: str | Sequence[str] | None = "0008_key_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("incident", "message", "call", "webreceipt")


def upgrade() -> None:
    op.create_table(
        "data_key",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("wrapped", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("key_id", sa.String(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("key_id")
    op.drop_table("data_key")
