"""a revocable calendar feed per staff member

Revision ID: 0007_feed_salt
Revises: 0006_lookup_indexes
Create Date: 2026-12-07

Expand only (one column with a default): `staff_state.feed_salt`, mixed into the token of a
staff member's feed URL; `hotline rota ical --renew ID` replaces it, and the old URL answers
404. Every row starts with "", which gives the URLs handed out before this release.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_feed_salt"
down_revision: str | Sequence[str] | None = "0006_lookup_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staffstate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_salt", sa.String(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("staffstate", schema=None) as batch_op:
        batch_op.drop_column("feed_salt")
