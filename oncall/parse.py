"""Parse and validate a rota file, reporting every problem at once with its line and fix.

See README.md, "The rota", and oncall/schema.json. The parser walks the composed
YAML node tree (`oncall.yamltree`) so duplicate keys are caught and every problem has a line.
Reading the file is the caller's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
import yaml

from oncall.errors import RotaInvalid
from oncall.model import Rota
from oncall.parse_escalation import read_coordinators, read_escalation, read_fallback
from oncall.parse_rotations import read_overrides, read_rotations
from oncall.parse_staff import read_staff
from oncall.reader import Reader
from oncall.yamltree import (
    Entry,
    Problems,
    check_keys,
    did_you_mean,
    entries,
    integer,
    line_of,
)
from oncall.yamltree import (
    text as node_text,
)

TOP_KEYS = (
    "timezone",
    "default_region",
    "staff",
    "rotations",
    "overrides",
    "escalation",
    "repeat",
    "fallback",
    "coordinators",
)
TOP_REQUIRED = {
    "timezone": "Europe/Dublin",
    "staff": "{amina: {name: Amina K., phone: '+353 86 123 4567'}}",
    "escalation": "[{notify: primary, wait: 5m}]",
    "fallback": "[fiona]",
}


def parse_rota(
    text: str,
    filename: str,
    *,
    key: str | None = None,
    known_languages: Iterable[str] | None = None,
) -> Rota:
    """Parse rota YAML `text`; `filename` is used only in messages.

    With `key` (e.g. ``"rota"``) `text` is a whole config file and the rota is the mapping under
    that top-level key; line numbers stay relative to the file. `known_languages` is accepted for
    callers that carry the hotline's languages but does not restrict staff languages (those are
    checked against ISO 639-1); pass it to `coverage_gaps` instead.

    Returns a valid `Rota`. Raises `RotaInvalid` listing every problem found, each with its line
    and how to fix it.
    """
    del known_languages  # see docstring: coverage concern, not a validation rule
    problems = Problems(filename)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        where = ""
        if exc.context and exc.context_mark is not None:
            where = f" ({exc.context} started on line {exc.context_mark.line + 1})"
        problems.add(
            line, f"YAML syntax error: {exc.problem or exc}{where}; check indentation and quotes"
        )
        raise RotaInvalid(problems.items) from None
    except yaml.YAMLError as exc:
        problems.add(1, f"YAML syntax error: {exc}")
        raise RotaInvalid(problems.items) from None
    node = _select(root, key, problems)
    if node is None:
        raise RotaInvalid(problems.items)
    rota = _read(Reader(problems), node)
    if problems.items or rota is None:
        raise RotaInvalid(problems.items)
    return rota


def _select(root: yaml.Node | None, key: str | None, problems: Problems) -> yaml.MappingNode | None:
    """The rota's mapping node: the document itself, or the value under top-level `key`."""
    what = "the rota" if key is None else "the config file"
    if not isinstance(root, yaml.MappingNode):
        line = 1 if root is None else line_of(root)
        problems.add(line, f"{what} must be a mapping of keys such as 'timezone:' and 'staff:'")
        return None
    if key is None:
        return root
    found = [(k, v) for k, v in root.value if node_text(k) == key]
    for extra, _ in found[1:]:
        problems.add(
            line_of(extra),
            f"duplicate top-level key '{key}' (first on line {line_of(found[0][0])}); keep one",
        )
    if not found:
        problems.add(1, f"no '{key}:' section; add the rota under a top-level '{key}:' key")
        return None
    value = found[0][1]
    if not isinstance(value, yaml.MappingNode):
        problems.add(line_of(found[0][0]), f"'{key}' must be a mapping (timezone, staff, ...)")
        return None
    return value


def _read(r: Reader, node: yaml.MappingNode) -> Rota | None:
    """The rota in `node`, or None when it cannot be built (problems are in `r`)."""
    top = entries(node, "the rota", r.problems)
    check_keys(top, TOP_KEYS, TOP_REQUIRED, "the rota", line_of(node), r.problems)
    zone = _timezone(r, top.get("timezone"))
    r.region = _region(r, top.get("default_region"))
    if "staff" in top:
        read_staff(r, top["staff"])
    if "rotations" in top:
        read_rotations(r, top["rotations"])
    overrides = read_overrides(r, top["overrides"]) if "overrides" in top else ()
    escalation = read_escalation(r, top["escalation"]) if "escalation" in top else ()
    repeat = _repeat(r, top["repeat"]) if "repeat" in top else 0
    fallback = read_fallback(r, top["fallback"]) if "fallback" in top else ()
    coordinators = read_coordinators(r, top["coordinators"]) if "coordinators" in top else ()
    if zone is None:
        return None
    return Rota(
        zone,
        r.region,
        r.staff,
        r.rotations,
        overrides,
        escalation,
        repeat,
        fallback,
        coordinators,
    )


def _timezone(r: Reader, entry: Entry | None) -> ZoneInfo | None:
    if entry is None:
        return None
    name = r.text(entry, "timezone", "Europe/Dublin")
    if name is None:
        return None
    try:
        zone = ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        hint = did_you_mean(name, available_timezones())
        r.add(
            entry.line,
            f"unknown timezone '{name}'{hint}; use an IANA name such as 'Europe/Dublin'",
        )
        return None
    r.zone = zone
    return zone


def _region(r: Reader, entry: Entry | None) -> str | None:
    if entry is None:
        return None
    region = r.text(entry, "default_region", "IE")
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        hint = did_you_mean(region.upper(), phonenumbers.SUPPORTED_REGIONS)
        r.add(
            entry.line,
            f"unknown default_region '{region}'{hint}; use a two-letter country code such as 'IE'",
        )
        return None
    return region


def _repeat(r: Reader, entry: Entry) -> int:
    value = integer(entry.value)
    if value is None or value < 0:
        r.add(entry.line, "repeat must be a whole number, 0 or more (e.g. repeat: 2)")
        return 0
    return value
