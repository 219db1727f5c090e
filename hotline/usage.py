"""A command used wrongly: one line on standard error saying what would work, and exit 2."""

from __future__ import annotations

import sys


class UsageError(Exception):
    """The command cannot run as asked; the message is one line with the fix."""


def refused(exc: Exception) -> int:
    """Print `exc` as the command's one-line refusal; returns the exit code, 2."""
    print(f"hotline: {exc}", file=sys.stderr)
    return 2
