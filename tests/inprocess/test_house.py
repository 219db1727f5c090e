"""The house rules that hold themselves: the README's code map stays true, and nothing in the
repository points at a file outside it."""

from __future__ import annotations

import re
import subprocess

from harness import ROOT


def code_map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Where things are")
    return readme[start : readme.index("\n### ", start + 1)]


def test_every_path_in_the_code_map_exists():
    paths = re.findall(r"`([a-z_]+/[\w/.]*)`", code_map())
    assert len(paths) > 30, "the code map lost its paths"
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert missing == []


def test_every_test_file_named_in_the_repository_exists():
    named = set()
    for path in [*ROOT.glob("*.md"), *ROOT.glob("bench/*.md"), *ROOT.glob("**/*.py")]:
        if ".venv" not in path.parts:
            named.update(re.findall(r"\btests/[\w/]+\.py\b", path.read_text("utf-8")))
    assert named, "no test file named anywhere?"
    assert sorted(name for name in named if not (ROOT / name).exists()) == []


def test_nothing_in_the_repository_refers_to_a_spec_outside_it():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:  # not a git checkout (an sdist): nothing to check
        return
    pointing = [
        name
        for name in tracked
        if name.endswith((".py", ".md", ".toml", ".yaml", ".html", ".cfg", ".ini"))
        and name != "tests/inprocess/test_house.py"
        and re.search(r"SPEC\.md|\.\./shared|\bthe SPEC\b", (ROOT / name).read_text("utf-8"))
    ]
    assert pointing == []


PACKAGES = ("hotline", "routing", "webhooks", "oncall")
LONGEST_MODULE, LONGEST_FUNCTION = 300, 60
# a table of every command reads best as one piece
LONG_ON_PURPOSE = {"hotline/cli.py:build_parser"}


def sources() -> list:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_a_module_over_300_lines_says_why_in_its_docstring():
    import ast

    unexplained = []
    for path in sources():
        text = path.read_text("utf-8")
        if text.count("\n") > LONGEST_MODULE:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "over 300 lines on purpose" not in doc.lower():
                unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []


def test_no_function_over_60_lines():
    import ast

    long = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                where = f"{path.relative_to(ROOT)}:{node.name}"
                length = node.end_lineno - node.lineno + 1
                if length > LONGEST_FUNCTION and where not in LONG_ON_PURPOSE:
                    long.append(f"{where} ({length} lines)")
    assert long == []
