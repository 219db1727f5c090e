"""the staff console: invites, passkeys, sessions, challenges and notes

Revision ID: 0011_console
Revises: 0010_receipt_key
Create Date: 2026-12-07

Expand only (new tables; the old release never reads them). Do not import application models:
the schema is spelt out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_console"
down_revision: str | Sequence[str] | None = "0010_receipt_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "staff_invite",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("used_at", nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_staff_invite_staff_id", "staff_invite", ["staff_id"])
    op.create_table(
        "passkey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("credential_id", sa.String(), nullable=False),
        sa.Column("public_key", sa.String(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id"),
    )
    op.create_index("ix_passkey_staff_id", "passkey", ["staff_id"])
    op.create_table(
        "console_session",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        _when("created_at"),
        _when("last_seen_at"),
        _when("verified_at"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_console_session_staff_id", "console_session", ["staff_id"])
    op.create_table(
        "console_challenge",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=True),
        sa.Column("challenge", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("body_enc", sa.String(), nullable=True),
        sa.Column("key_id", sa.String(), nullable=True),
        _when("created_at"),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_note_incident_id", "note", ["incident_id"])


def downgrade() -> None:
    for table in ("note", "console_challenge", "console_session", "passkey", "staff_invite"):
        op.drop_table(table)
