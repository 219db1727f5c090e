"""the master key's check value

Revision ID: 0008_key_check
Revises: 0007_feed_salt
Create Date: 2026-12-07

Expand only (one table of one row): `key_check` names the key the data is under
(hotline.keycheck), so a process started with another key refuses before it writes. An
existing database gets its row at the first start whose key opens its data. Do not import
application models: the schema is spelt out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_key_check"
down_revision: str | Sequence[str] | None = "0007_feed_salt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("key_check")
