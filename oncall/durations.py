"""Durations as coordinators write them: ``30s``, ``5m``, ``2h``, ``1d``, ``1w``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, int] = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")
_EXAMPLES = "e.g. '30s', '5m', '2h', '1d', '1w' or '1h30m'"


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``"1h30m"``; surrounding whitespace is ignored.

    Units are w, d, h, m, s, largest first, each at most once. ``"0m"`` gives a zero duration.
    Raises ValueError naming the text and showing valid examples when it is not a duration.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration {text!r} needs a unit ({_EXAMPLES})")
    compact = text.strip().lower()
    if not _WHOLE.fullmatch(compact):
        if compact.isdigit():
            raise ValueError(f"duration {text!r} needs a unit, e.g. '{compact}m' or '{compact}s'")
        raise ValueError(f"invalid duration {text!r} ({_EXAMPLES})")
    units = [unit for _, unit in _PART.findall(compact)]
    order = list(_UNITS)
    if len(set(units)) != len(units) or units != sorted(units, key=order.index):
        raise ValueError(
            f"invalid duration {text!r}: give each unit once, largest first ({_EXAMPLES})"
        )
    seconds = sum(int(amount) * _UNITS[unit] for amount, unit in _PART.findall(compact))
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """Format `td` in the canonical form that `parse_duration` reads back, e.g. ``"1w1d"``.

    Fractions of a second are dropped; zero is ``"0s"``; a negative duration gets a ``-`` prefix
    (which `parse_duration` does not accept).
    """
    total = int(td.total_seconds())
    if total == 0:
        return "0s"
    sign, total = ("-", -total) if total < 0 else ("", total)
    parts = []
    for unit, size in _UNITS.items():
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + "".join(parts)
