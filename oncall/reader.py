"""State shared while reading one rota: the problems so far, what has been declared, and the
readers for scalar values (text, name lists, durations, datetimes) that report instead of raise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import yaml

from oncall.durations import parse_duration
from oncall.localtime import parse_local_datetime
from oncall.model import Rotation, Staff
from oncall.yamltree import Entry, Problems, did_you_mean, line_of, text


class Reader:
    """Collects problems and what has been read so far.

    `staff_lines` and `rotation_lines` hold every id and rotation name written, valid or not, so
    one mistake in a person's entry is not reported again wherever that person is named.
    """

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.zone: tzinfo = UTC  # until a valid timezone is read
        self.region: str | None = None
        self.staff: dict[str, Staff] = {}
        self.staff_lines: dict[str, int] = {}
        self.rotations: dict[str, Rotation] = {}
        self.rotation_lines: dict[str, int] = {}

    def add(self, line: int, message: str) -> None:
        """Report `message` at `line`."""
        self.problems.add(line, message)

    def text(self, entry: Entry, what: str, example: str) -> str | None:
        """The entry's text, or None (reported) when it is empty or not a scalar."""
        value = text(entry.value)
        if value is None:
            self.add(entry.line, f"{what} must be text, e.g. {example}")
        return value

    def names(self, entry: Entry, what: str, example: str) -> list[tuple[str, int]] | None:
        """A list of plain names with their lines, or None (reported) when not a list."""
        node = entry.value
        if not isinstance(node, yaml.SequenceNode):
            self.add(entry.line, f"{what} must be a list, e.g. {example}")
            return None
        names = []
        for item in node.value:
            name = text(item)
            if name is None:
                self.add(line_of(item), f"{what} must contain plain names, e.g. {example}")
            else:
                names.append((name, line_of(item)))
        return names

    def duration(self, entry: Entry, what: str) -> timedelta | None:
        """A positive duration, or None (reported)."""
        raw = text(entry.value)
        try:
            value = parse_duration(raw if raw is not None else "")
        except ValueError as exc:
            self.add(entry.line, f"{what}: {exc}")
            return None
        if value <= timedelta(0):
            self.add(entry.line, f"{what} must be longer than zero, e.g. 5m")
            return None
        return value

    def datetime(self, entry: Entry, what: str) -> datetime | None:
        """An aware datetime (local to the rota's zone unless written with an offset), or None."""
        raw = text(entry.value)
        try:
            return parse_local_datetime(raw if raw is not None else "", self.zone)
        except ValueError as exc:
            self.add(entry.line, f"{what}: {exc}")
            return None

    def known_staff(self, sid: str, line: int, where: str) -> bool:
        """True when staff id `sid` is declared; otherwise report it with a suggestion."""
        if sid in self.staff_lines:
            return True
        hint = did_you_mean(sid, self.staff_lines)
        self.add(line, f"staff '{sid}' in {where} is not defined{hint}")
        return False
