"""one outbox: calls are claimed and retried like messages; media URLs are kept

Revision ID: 0002_one_outbox
Revises: 0001_baseline
Create Date: 2026-12-01

Expand only: the release before this one ignores the new columns. `call` gains what the one
outbox (routing.outbox) records of every send (error_code, attempts, next_attempt_at for a
retry); `message` gains media_enc, the encrypted media URLs of an MMS or WhatsApp message.
No data moves: a person"s identity is still the keyed hash of their number, and incidents a
WhatsApp message opened under release 0.1 (hashed with the `whatsapp:` prefix) are found by
lookups that try that form too (routing.identity.person_hashes).

Rules (README, "Upgrading"): the release before this one keeps running against the schema this
leaves behind, so only expand here (nullable columns or columns with a server default, new
tables and indexes); drop or rename only in a later release once no running code uses the old
shape; backfill data in batches. Do not import application models: spell the schema out, so
this file keeps meaning what it meant when it was written.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_one_outbox"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_call_next_attempt_at"), ["next_attempt_at"], unique=False
        )

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media_enc", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("media_enc")

    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_next_attempt_at"))
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("error_code")
