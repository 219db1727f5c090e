"""Reading the ``staff:`` section: names, E.164 phone numbers, languages, notify methods."""

from __future__ import annotations

import yaml

from oncall.languages import ISO_639_1
from oncall.model import NOTIFY_METHODS, Staff
from oncall.phones import e164
from oncall.reader import Reader
from oncall.yamltree import Entry, check_keys, did_you_mean, entries

STAFF_KEYS = ("name", "phone", "languages", "notify", "remind")
STAFF_REQUIRED = {"name": "Amina K.", "phone": "'+353 86 123 4567'"}


def read_staff(r: Reader, entry: Entry) -> None:
    if not isinstance(entry.value, yaml.MappingNode):
        r.add(
            entry.line,
            "staff must be a mapping of ids to people, e.g. "
            "staff: {amina: {name: Amina K., phone: '+353 86 123 4567'}}",
        )
        return
    phones: dict[str, tuple[str, int]] = {}
    for sid, item in entries(entry.value, "staff", r.problems).items():
        r.staff_lines[sid] = item.line
        person = _person(r, sid, item)
        if person is None:
            continue
        if person.phone in phones:
            other, line = phones[person.phone]
            r.add(
                item.line,
                f"staff '{sid}' has the same phone number as '{other}' "
                f"(line {line}); each person needs their own number",
            )
        else:
            phones[person.phone] = (sid, item.line)
        r.staff[sid] = person


def _person(r: Reader, sid: str, item: Entry) -> Staff | None:
    where = f"staff '{sid}'"
    if not isinstance(item.value, yaml.MappingNode):
        r.add(
            item.line,
            f"{where} must be a mapping, e.g. {{name: Amina K., phone: '+353 86 123 4567'}}",
        )
        return None
    fields = entries(item.value, where, r.problems)
    check_keys(fields, STAFF_KEYS, STAFF_REQUIRED, where, item.line, r.problems)
    name = r.text(fields["name"], f"name of {where}", "Amina K.") if "name" in fields else None
    phone = _phone(r, where, fields["phone"]) if "phone" in fields else None
    languages: list[str] = []
    if "languages" in fields:
        for code, line in r.names(fields["languages"], f"languages of {where}", "[en, ar]") or []:
            if code not in ISO_639_1:
                hint = did_you_mean(code.lower(), ISO_639_1)
                r.add(
                    line,
                    f"{where} has unknown language code '{code}'{hint}; use ISO "
                    "639-1 two-letter codes such as 'en'",
                )
            elif code not in languages:
                languages.append(code)
    notify: list[str] = ["sms"]
    if "notify" in fields:
        notify = []
        for method, line in r.names(fields["notify"], f"notify of {where}", "[sms, call]") or []:
            if method not in NOTIFY_METHODS:
                hint = did_you_mean(method, NOTIFY_METHODS)
                r.add(
                    line,
                    f"{where} has unknown notify method '{method}'{hint}; use sms and/or call",
                )
            elif method not in notify:
                notify.append(method)
        if not notify:
            r.add(
                fields["notify"].line,
                f"notify of {where} is empty; use [sms], [call] or [sms, call]",
            )
    remind = _remind(r, where, fields["remind"]) if "remind" in fields else True
    if name is None or phone is None:
        return None
    return Staff(sid, name, phone, tuple(languages), tuple(notify) or ("sms",), remind)


def _remind(r: Reader, where: str, entry: Entry) -> bool:
    """`remind: true|false`; anything else is reported (and counts as the default, true)."""
    node = entry.value
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return bool(yaml.constructor.SafeConstructor().construct_yaml_bool(node))
    r.add(entry.line, f"remind of {where} must be true or false, e.g. remind: false")
    return True


def _phone(r: Reader, where: str, entry: Entry) -> str | None:
    raw = r.text(entry, f"phone of {where}", "'+353 86 123 4567'")
    if raw is None:
        return None
    fix = "write it in international format, e.g. '+353 86 123 4567'"
    if r.region is None and not raw.startswith("+"):
        fix += ", or set default_region"
    number = e164(raw, r.region)
    if number is None:
        r.add(entry.line, f"{where} has invalid phone number '{raw}'; {fix}")
    return number
