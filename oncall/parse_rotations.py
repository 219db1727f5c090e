"""Reading the ``rotations:`` and ``overrides:`` sections."""

from __future__ import annotations

import yaml

from oncall.localtime import as_utc
from oncall.model import Override, Rotation
from oncall.reader import Reader
from oncall.yamltree import Entry, check_keys, did_you_mean, entries, line_of, text

ROTATION_KEYS = ("members", "shift", "handoff")
ROTATION_REQUIRED = {"members": "[amina, ben]", "shift": "1w", "handoff": "'2026-11-02 09:00'"}
OVERRIDE_KEYS = ("rotation", "staff", "from", "to", "note")
OVERRIDE_REQUIRED = {
    "rotation": "primary",
    "staff": "dana",
    "from": "'2026-12-24 18:00'",
    "to": "'2026-12-27 09:00'",
}


def read_rotations(r: Reader, entry: Entry) -> None:
    if not isinstance(entry.value, yaml.MappingNode):
        r.add(
            entry.line,
            "rotations must be a mapping of names to rotations, e.g. "
            "rotations: {primary: {members: [amina], shift: 1w, handoff: "
            "'2026-11-02 09:00'}}",
        )
        return
    for name, item in entries(entry.value, "rotations", r.problems).items():
        where = f"rotation '{name}'"
        r.rotation_lines[name] = item.line
        if name in r.staff_lines:
            r.add(
                item.line,
                f"{where} has the same name as a staff id (line "
                f"{r.staff_lines[name]}); rename the rotation",
            )
        if not isinstance(item.value, yaml.MappingNode):
            r.add(
                item.line,
                f"{where} must be a mapping, e.g. {{members: [amina, ben], "
                "shift: 1w, handoff: '2026-11-02 09:00'}",
            )
            continue
        fields = entries(item.value, where, r.problems)
        check_keys(fields, ROTATION_KEYS, ROTATION_REQUIRED, where, item.line, r.problems)
        members = None
        if "members" in fields:
            members = r.names(fields["members"], f"members of {where}", "[amina, ben]")
            for sid, line in members or []:
                r.known_staff(sid, line, where)
        shift = r.duration(fields["shift"], f"shift of {where}") if "shift" in fields else None
        handoff = (
            r.datetime(fields["handoff"], f"handoff of {where}") if "handoff" in fields else None
        )
        if members is not None and shift is not None and handoff is not None:
            r.rotations[name] = Rotation(name, tuple(m for m, _ in members), shift, handoff)


def read_overrides(r: Reader, entry: Entry) -> tuple[Override, ...]:
    if not isinstance(entry.value, yaml.SequenceNode):
        r.add(
            entry.line,
            "overrides must be a list, e.g. - {rotation: primary, staff: dana, "
            "from: '2026-12-24 18:00', to: '2026-12-27 09:00'}",
        )
        return ()
    overrides = []
    for node in entry.value.value:
        line = line_of(node)
        if not isinstance(node, yaml.MappingNode):
            r.add(line, "each override must be a mapping with rotation, staff, from, to")
            continue
        fields = entries(node, "override", r.problems)
        check_keys(fields, OVERRIDE_KEYS, OVERRIDE_REQUIRED, "override", line, r.problems)
        rotation = (
            r.text(fields["rotation"], "rotation of override", "primary")
            if "rotation" in fields
            else None
        )
        if rotation is not None and rotation not in r.rotation_lines:
            hint = did_you_mean(rotation, r.rotation_lines)
            r.add(
                fields["rotation"].line,
                f"override names rotation '{rotation}', which is not defined{hint}",
            )
        staff = r.text(fields["staff"], "staff of override", "dana") if "staff" in fields else None
        if staff is not None and not r.known_staff(staff, fields["staff"].line, "override"):
            staff = None
        start = r.datetime(fields["from"], "from of override") if "from" in fields else None
        end = r.datetime(fields["to"], "to of override") if "to" in fields else None
        if start is not None and end is not None and as_utc(end) <= as_utc(start):
            r.add(
                fields["to"].line,
                f"override 'to' ({end:%Y-%m-%d %H:%M}) must be after "
                f"'from' ({start:%Y-%m-%d %H:%M})",
            )
            continue
        note = (text(fields["note"].value) or "") if "note" in fields else ""
        if rotation in r.rotations and staff and start and end:
            overrides.append(Override(rotation, staff, start, end, note, line))
    _check_overlaps(r, overrides)
    return tuple(overrides)


def _check_overlaps(r: Reader, overrides: list[Override]) -> None:
    ordered = sorted(overrides, key=lambda o: (o.rotation, as_utc(o.start), o.line))
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.rotation == after.rotation and as_utc(after.start) < as_utc(before.end):
            r.add(
                after.line,
                f"override of rotation '{after.rotation}' overlaps the one "
                f"on line {before.line} (which ends {before.end:%Y-%m-%d %H:%M}); make "
                "them not overlap",
            )
