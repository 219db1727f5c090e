"""The console's one blueprint; its views live in the sibling modules."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


@bp.app_template_filter("when")
def when(instant: datetime | None) -> str:
    """An instant as staff read it on the console: UTC, to the minute."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if instant else ""


@bp.app_template_filter("age")
def age(instant: datetime, now: datetime) -> str:
    """How long ago, in the largest unit that says it: 45s, 12m, 3h 05m, 4d 2h."""
    seconds = max(0, int((now - instant).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{hours // 24}d {hours % 24}h"
