"""indexes for the flood watch: incidents by opening time, events by kind and time

Revision ID: 0006_lookup_indexes
Revises: 0005_reminders
Create Date: 2026-12-01

Expand only (two indexes). At every new incident the intake counts the incidents opened in
the last ten minutes and looks for the last flood alert (routing.intake); without these
indexes both scanned whole tables, and webhooks slowed as the log grew.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_lookup_indexes"
down_revision: str | Sequence[str] | None = "0005_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_kind_at", ["kind", "at"], unique=False)

    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_opened_at"), ["opened_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_opened_at"))

    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_kind_at")
