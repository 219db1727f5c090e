"""Validation problems in a rota file, each pointing at a line and saying how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a rota file. ``str(problem)`` is ``"rota.yaml:14: <message>"``."""

    filename: str
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}: {self.message}"


class RotaInvalid(ValueError):
    """Raised by `parse_rota` with every problem found, sorted by line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(str(p) for p in self.problems))
