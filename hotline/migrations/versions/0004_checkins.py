"""check-ins: a table of the deadlines by which a defender must get in touch

Revision ID: 0004_checkins
Revises: 0003_web_form
Create Date: 2026-12-01

Expand only: a new table (routing.tables.Checkin), which the release before this one never
reads. One row per CHECKIN command: the incident, who set it, the deadline (`due_at`, indexed:
the sweeper looks for overdue ones), a standing check-in's interval (`every_s`), and how it
ended. At most one active check-in per incident (a partial unique index, as the incident's
own `ux_incident_unresolved_defender`). No personal data: ids, staff ids and times only.

Rules (README, "Upgrading"): only expand here; do not import application models: spell the
schema out, so this file keeps meaning what it meant when it was written.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_checkins"
down_revision: str | Sequence[str] | None = "0003_web_form"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=True),
        sa.Column("notify", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_checkin_incident_id"), "checkin", ["incident_id"], unique=False)
    op.create_index(op.f("ix_checkin_status"), "checkin", ["status"], unique=False)
    op.create_index(op.f("ix_checkin_due_at"), "checkin", ["due_at"], unique=False)
    op.create_index(
        "ux_checkin_active_incident",
        "checkin",
        ["incident_id"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index("ux_checkin_active_incident", table_name="checkin")
    op.drop_index(op.f("ix_checkin_due_at"), table_name="checkin")
    op.drop_index(op.f("ix_checkin_status"), table_name="checkin")
    op.drop_index(op.f("ix_checkin_incident_id"), table_name="checkin")
    op.drop_table("checkin")
