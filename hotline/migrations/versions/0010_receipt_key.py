"""which master key a web receipt's hash is under

Revision ID: 0010_receipt_key
Revises: 0009_data_keys
Create Date: 2026-12-07

Expand only (one nullable column): `webreceipt.made_under`, the start of the check value
(hotline.keycheck) of the key a receipt's slow hash was made under. A receipt is never stored,
so `hotline rekey` cannot rehash it: it opens only while that key is configured, and rekey
says how many receipts still need an old key. Rows from before are NULL (unknown). Do not
import application models: the schema is spelt out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_receipt_key"
down_revision: str | Sequence[str] | None = "0009_data_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webreceipt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("made_under", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webreceipt", schema=None) as batch_op:
        batch_op.drop_column("made_under")
