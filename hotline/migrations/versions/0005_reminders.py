"""shift reminders: planned SMS before each shift, and the planning watermark

Revision ID: 0005_reminders
Revises: 0004_checkins
Create Date: 2026-12-10

Expand only: two new tables the release before this one never reads. `shift_reminder` holds
one row per planned reminder or rota-change notice, unique per (kind, staff, rotation, shift
start) so no shift is reminded of twice; `reminder_plan` holds how far ahead planning reached
(routing.reminders). Do not import application models: the schema is spelt out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_reminders"
down_revision: str | Sequence[str] | None = "0004_checkins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shift_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("rotation", sa.String(), nullable=False),
        sa.Column("shift_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shift_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handover", sa.String(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "kind", "staff_id", "rotation", "shift_start", name="uq_shift_reminder_key"
        ),
    )
    op.create_index("ix_shift_reminder_due_at", "shift_reminder", ["due_at"], unique=False)
    op.create_index("ix_shift_reminder_status", "shift_reminder", ["status"], unique=False)
    op.create_table(
        "reminder_plan",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("planned_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rota_fingerprint", sa.String(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("reminder_plan")
    op.drop_index("ix_shift_reminder_status", table_name="shift_reminder")
    op.drop_index("ix_shift_reminder_due_at", table_name="shift_reminder")
    op.drop_table("shift_reminder")
