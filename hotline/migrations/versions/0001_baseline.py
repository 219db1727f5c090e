"""baseline: the schema of release 0.1, exactly as its `create_all` made it

Revision ID: 0001_baseline
Revises: (none)
Create Date: 2026-12-01

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

revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_hash", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address_hash"),
    )
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("defender_hash", sa.String(), nullable=False),
        sa.Column("defender_enc", sa.String(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_paged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        sa.Column("next_step", sa.Integer(), nullable=True),
        sa.Column("next_step_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("silent", sa.Boolean(), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_incident_defender_hash"), "incident", ["defender_hash"], unique=False)
    op.create_index(op.f("ix_incident_next_step_at"), "incident", ["next_step_at"], unique=False)
    op.create_index(op.f("ix_incident_resolved_at"), "incident", ["resolved_at"], unique=False)
    op.create_index(op.f("ix_incident_status"), "incident", ["status"], unique=False)
    op.create_index(
        "ux_incident_unresolved_defender",
        "incident",
        ["defender_hash"],
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    )
    op.create_table(
        "rotaversion",
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("text_enc", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "staffstate",
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_replies", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("staff_id"),
    )
    op.create_table(
        "twiliodeletion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("sid", sa.String(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "sid"),
    )
    op.create_index(op.f("ix_twiliodeletion_done_at"), "twiliodeletion", ["done_at"], unique=False)
    op.create_table(
        "workerheartbeat",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "acknowledgement",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("sid", sa.String(), nullable=True),
        sa.Column("staff_id", sa.String(), nullable=True),
        sa.Column("address_hash", sa.String(), nullable=False),
        sa.Column("address_enc", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("answered_by", sa.String(), nullable=True),
        sa.Column("recording_sid", sa.String(), nullable=True),
        sa.Column("recording_enc", sa.String(), nullable=True),
        sa.Column("transcript_enc", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sid"),
        sa.UniqueConstraint("recording_sid"),
    )
    op.create_index(op.f("ix_call_incident_id"), "call", ["incident_id"], unique=False)
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_event_incident_id"), "event", ["incident_id"], unique=False)
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("sid", sa.String(), nullable=True),
        sa.Column("staff_id", sa.String(), nullable=True),
        sa.Column("address_hash", sa.String(), nullable=False),
        sa.Column("address_enc", sa.String(), nullable=True),
        sa.Column("body_enc", sa.String(), nullable=True),
        sa.Column("media_count", sa.Integer(), nullable=False),
        sa.Column("media_types", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sid"),
    )
    op.create_index(op.f("ix_message_incident_id"), "message", ["incident_id"], unique=False)
    op.create_index(
        op.f("ix_message_next_attempt_at"), "message", ["next_attempt_at"], unique=False
    )
    op.create_index("ix_message_party", "message", ["address_hash", "created_at"], unique=False)
    op.create_table(
        "page",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        # in the order release 0.1's create_all wrote them
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_page_call_id"), "page", ["call_id"], unique=False)
    op.create_index(op.f("ix_page_incident_id"), "page", ["incident_id"], unique=False)
    op.create_index(op.f("ix_page_message_id"), "page", ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_page_message_id"), table_name="page")
    op.drop_index(op.f("ix_page_incident_id"), table_name="page")
    op.drop_index(op.f("ix_page_call_id"), table_name="page")
    op.drop_table("page")
    op.drop_index("ix_message_party", table_name="message")
    op.drop_index(op.f("ix_message_next_attempt_at"), table_name="message")
    op.drop_index(op.f("ix_message_incident_id"), table_name="message")
    op.drop_table("message")
    op.drop_index(op.f("ix_event_incident_id"), table_name="event")
    op.drop_table("event")
    op.drop_index(op.f("ix_call_incident_id"), table_name="call")
    op.drop_table("call")
    op.drop_table("acknowledgement")
    op.drop_table("workerheartbeat")
    op.drop_index(op.f("ix_twiliodeletion_done_at"), table_name="twiliodeletion")
    op.drop_table("twiliodeletion")
    op.drop_table("staffstate")
    op.drop_table("rotaversion")
    op.drop_index(
        "ux_incident_unresolved_defender",
        table_name="incident",
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    )
    op.drop_index(op.f("ix_incident_status"), table_name="incident")
    op.drop_index(op.f("ix_incident_resolved_at"), table_name="incident")
    op.drop_index(op.f("ix_incident_next_step_at"), table_name="incident")
    op.drop_index(op.f("ix_incident_defender_hash"), table_name="incident")
    op.drop_table("incident")
    op.drop_table("block")
