"""Reading the ``escalation:`` and ``fallback:`` sections."""

from __future__ import annotations

import yaml

from oncall.model import Level
from oncall.reader import Reader
from oncall.yamltree import Entry, check_keys, did_you_mean, entries, line_of, text

LEVEL_KEYS = ("notify", "wait")
LEVEL_REQUIRED = {"notify": "primary", "wait": "5m"}


def read_escalation(r: Reader, entry: Entry) -> tuple[Level, ...]:
    node = entry.value
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        r.add(
            entry.line,
            "escalation must be a non-empty list of levels, e.g. - {notify: primary, wait: 5m}",
        )
        return ()
    levels = []
    for number, item in enumerate(node.value, start=1):
        where = f"escalation level {number}"
        line = line_of(item)
        if not isinstance(item, yaml.MappingNode):
            r.add(line, f"{where} must be a mapping, e.g. {{notify: primary, wait: 5m}}")
            continue
        fields = entries(item, where, r.problems)
        check_keys(fields, LEVEL_KEYS, LEVEL_REQUIRED, where, line, r.problems)
        targets = _targets(r, fields["notify"], where) if "notify" in fields else None
        wait = r.duration(fields["wait"], f"wait of {where}") if "wait" in fields else None
        if targets is not None and wait is not None:
            levels.append(Level(targets, wait))
    return tuple(levels)


def _targets(r: Reader, entry: Entry, where: str) -> tuple[str, ...] | None:
    single = text(entry.value)
    if single is not None:
        names = [(single, entry.line)]
    else:
        names = r.names(entry, f"notify of {where}", "primary or [primary, fiona]")
        if names is None:
            return None
    if not names:
        r.add(entry.line, f"{where} notifies nobody; add a rotation or staff ids to notify")
        return None
    for name, line in names:
        if name in r.rotation_lines:
            if name in r.rotations and not r.rotations[name].members:
                r.add(
                    line,
                    f"{where} notifies rotation '{name}', which has no members; "
                    "add members or remove it from notify",
                )
        elif name not in r.staff_lines:
            hint = did_you_mean(name, [*r.rotation_lines, *r.staff_lines])
            r.add(
                line,
                f"{where} notifies '{name}', which is neither a rotation nor a staff id{hint}",
            )
    return tuple(name for name, _ in names)


def read_coordinators(r: Reader, entry: Entry) -> tuple[str, ...]:
    """`coordinators: [fiona]`: staff ids, each in `staff`; may be empty."""
    names = r.names(entry, "coordinators", "[fiona]")
    for sid, line in names or ():
        r.known_staff(sid, line, "coordinators")
    return tuple(dict.fromkeys(sid for sid, _ in names or ()))


def read_fallback(r: Reader, entry: Entry) -> tuple[str, ...]:
    names = r.names(entry, "fallback", "[fiona, george]")
    if names is None:
        return ()
    if not names:
        r.add(
            entry.line,
            "fallback is empty; list who is paged when nobody else answers, e.g. fallback: [fiona]",
        )
    for sid, line in names:
        r.known_staff(sid, line, "fallback")
    return tuple(dict.fromkeys(sid for sid, _ in names))
