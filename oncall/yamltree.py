"""Reading a composed YAML node tree with line numbers.

PyYAML's loader silently keeps the last of duplicate mapping keys and turns ``no`` into False,
so the rota parser walks `yaml.compose` nodes instead: every value keeps its line, duplicate keys
are reported, and text fields use the characters as written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

import yaml

from oncall.errors import Problem

_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
_MERGE = "tag:yaml.org,2002:merge"


@dataclass
class Problems:
    """Collects `Problem`s for one file."""

    filename: str
    items: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        """Record `message` against 1-based `line`."""
        self.items.append(Problem(self.filename, line, message))


@dataclass(frozen=True)
class Entry:
    """One key of a mapping, with its key's line and its value node."""

    key: str
    line: int
    value: yaml.Node


def line_of(node: yaml.Node) -> int:
    """The 1-based line where `node` starts."""
    return node.start_mark.line + 1


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of `choices` to `word`, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_null(node: yaml.Node) -> bool:
    """True for an empty value, ``~`` or ``null``."""
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def text(node: yaml.Node) -> str | None:
    """The characters of a non-empty scalar as written (``no`` stays ``"no"``), else None."""
    if isinstance(node, yaml.ScalarNode) and not is_null(node):
        return str(node.value).strip() or None
    return None


def integer(node: yaml.Node) -> int | None:
    """The value of an integer scalar (``2``, ``0x10``), else None (booleans are not integers)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _INT:
        return int(yaml.constructor.SafeConstructor().construct_yaml_int(node))
    return None


def entries(node: yaml.MappingNode, where: str, problems: Problems) -> dict[str, Entry]:
    """The keys of mapping `node` in order, reporting duplicate and non-text keys.

    Merge keys (``<<: *defaults``) are expanded; keys written in the mapping itself win over
    merged ones. The first of duplicate keys is kept.
    """
    merged: dict[str, Entry] = {}
    own: dict[str, Entry] = {}
    for key_node, value in node.value:
        if key_node.tag == _MERGE:
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    for entry in entries(source, where, problems).values():
                        merged.setdefault(entry.key, entry)
            continue
        key = text(key_node)
        if key is None:
            problems.add(line_of(key_node), f"empty or non-text key in {where}; write a name")
            continue
        if key in own:
            problems.add(
                line_of(key_node),
                f"duplicate key '{key}' in {where} (first on line {own[key].line}); "
                "remove or rename one",
            )
            continue
        own[key] = Entry(key, line_of(key_node), value)
    return {**{k: e for k, e in merged.items() if k not in own}, **own}


def check_keys(
    items: dict[str, Entry],
    allowed: Iterable[str],
    required: dict[str, str],
    where: str,
    line: int,
    problems: Problems,
) -> None:
    """Report keys not in `allowed` (with a suggestion) and missing `required` keys.

    `required` maps each required key to an example value shown in the message.
    """
    allowed = list(allowed)
    suggested = set()
    for key, entry in items.items():
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            suggested.add(hint)
            problems.add(entry.line, f"unknown key '{key}' in {where}{hint}")
    for key, example in required.items():
        # A misspelt key is reported once, as unknown with the suggestion, not also as missing.
        if key not in items and f" (did you mean '{key}'?)" not in suggested:
            problems.add(line, f"{where} is missing required key '{key}' (e.g. {key}: {example})")
