"""the secure web form: receipts of web conversations

Revision ID: 0003_web_form
Revises: 0002_one_outbox
Create Date: 2026-12-08

Expand only: a new table the release before this one never reads. `webreceipt` holds, per web
form conversation (routing.webform), a slow keyed hash of its receipt (never the receipt), the
keyed hash and the encrypted form of the conversation's identity (`web:<random>`), and the
defender's encrypted "how to reach you safely" line. Web messages and replies are ordinary
`message` rows with channel `web`, a value the older release never writes and ignores.

Rules (README, "Upgrading"): the release before this one keeps running against the schema this
leaves behind, so only expand here. Do not import application models: spell the schema out, so
this file keeps meaning what it meant when it was written.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_web_form"
down_revision: str | Sequence[str] | None = "0002_one_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webreceipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("receipt_hash", sa.String(), nullable=False),
        sa.Column("person_hash", sa.String(), nullable=False),
        sa.Column("person_enc", sa.String(), nullable=True),
        sa.Column("contact_enc", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt_hash"),
    )
    with op.batch_alter_table("webreceipt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webreceipt_person_hash"), ["person_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webreceipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webreceipt_person_hash"))
    op.drop_table("webreceipt")
