"""On-call domain: parse a rota, compute who is on call at an instant, find coverage gaps.

Pure: the standard library, PyYAML and phonenumbers only; no clock reads, no I/O (callers read
the file and pass the text and the instant).
"""

from __future__ import annotations

from pathlib import Path

from oncall.coverage import Gap, coverage_gaps
from oncall.durations import format_duration, parse_duration
from oncall.errors import Problem, RotaInvalid
from oncall.languages import ISO_639_1, is_language_code
from oncall.model import NOTIFY_METHODS, Level, Override, Rota, Rotation, Staff
from oncall.parse import parse_rota
from oncall.schedule import (
    LevelOnCall,
    Step,
    escalation_step,
    first_paged,
    on_call,
    total_steps,
    who_is_on_call,
)

SCHEMA_PATH = Path(__file__).with_name("schema.json")  # JSON Schema for a bare rota file

__all__ = [
    "ISO_639_1",
    "NOTIFY_METHODS",
    "SCHEMA_PATH",
    "Gap",
    "Level",
    "LevelOnCall",
    "Override",
    "Problem",
    "Rota",
    "RotaInvalid",
    "Rotation",
    "Staff",
    "Step",
    "coverage_gaps",
    "escalation_step",
    "first_paged",
    "format_duration",
    "is_language_code",
    "on_call",
    "parse_duration",
    "parse_rota",
    "total_steps",
    "who_is_on_call",
]
