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
