"""`hotline rota check` and `hotline rota who`, as a coordinator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import rota_text
from harness import migrated

from hotline.cli import main
from hotline.crypto import Vault
from hotline.db import make_engine
from hotline.rotasource import RotaSource

ROOT = Path(__file__).resolve().parents[2]
DUBLIN = ZoneInfo("Europe/Dublin")
SECRET = "rota-cli-secret-0123456789abcdef"

THREE_MISTAKES = """\
timezone: Europe/Dubln
staff:
  amina: {name: Amina K., phone: "+353 86 123 4567", languages: [en, ar]}
  dana:  {name: Dana M., phone: "+353 86 222 3344"}
rotations:
  primary: {members: [amina, dna], shift: 1w, handoff: "2026-11-02 09:00"}
escalation:
  - {notify: primary, wait: 5 minutes}
fallback: [dana]
"""

PAIR_ROTA = """\
timezone: Europe/Dublin
staff:
  amina: {name: Amina K., phone: "+353 86 123 4567", languages: [en, ar], notify: [sms, call]}
  ben:   {name: Ben O.,   phone: "+353 86 765 4321", languages: [en, fr]}
  fiona: {name: Fiona C., phone: "+353 86 444 5566", languages: [en]}
rotations:
  primary: {members: [amina, ben], shift: 1w, handoff: "2026-11-02 09:00"}
escalation:
  - {notify: primary, wait: 5m}
  - {notify: [amina, ben], wait: 10m}
repeat: 1
fallback: [fiona, ben]
"""


def _hours_from_now(hours: int) -> str:
    return (datetime.now(DUBLIN) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:00")


def holed_rota(start: str, end: str) -> str:
    """Amina (the only Arabic speaker) is on call, but swapped for Ben from `start` to `end`."""
    return f"""\
timezone: Europe/Dublin
staff:
  amina: {{name: Amina K., phone: "+353 86 123 4567", languages: [en, ar]}}
  ben:   {{name: Ben O.,   phone: "+353 86 765 4321", languages: [en, fr]}}
rotations:
  primary: {{members: [amina], shift: 1w, handoff: "2026-11-02 09:00"}}
overrides:
  - {{rotation: primary, staff: ben, from: "{start}", to: "{end}"}}
escalation:
  - {{notify: primary, wait: 5m}}
  - {{notify: [ben],   wait: 5m}}
fallback: [amina]
"""


def config(
    folder: Path,
    *,
    rota: str | None = None,
    rota_file: str | None = None,
    languages: str = "[en, fr]",
    reveal: bool = False,
) -> Path:
    """A config.yaml in `folder`: the rota inline (`rota`) or named by `rota_file`."""
    lines = [
        "hotline:",
        '  number: "+35312100489"',
        f"  languages: {languages}",
        f"  reveal_numbers: {str(reveal).lower()}",
    ]
    if rota_file is not None:
        lines.append(f"rota_file: {rota_file}")
    text = "\n".join(lines) + "\n"
    if rota is not None:
        text += "rota:\n" + "".join(f"  {line}\n" for line in rota.splitlines())
    path = folder / "config.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def live(tmp_path, monkeypatch):
    """Run from `tmp_path` with a config there (HOTLINE_CONFIG unset: ./config.yaml)."""
    for name in list(os.environ):
        if name.startswith(("HOTLINE_", "TWILIO_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'hotline.db'}")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["rota", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- check ----------------------------------------------------------------------------------


def test_check_prints_every_mistake_with_its_line_and_exits_1(live, capsys):
    (live / "rota.yaml").write_text(THREE_MISTAKES)
    code, out, _ = run(capsys, "check", "rota.yaml")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(
        "rota.yaml:1: unknown timezone 'Europe/Dubln' (did you mean 'Europe/Dublin'?)"
    )
    assert (
        lines[1] == "rota.yaml:6: staff 'dna' in rotation 'primary' is not defined "
        "(did you mean 'dana'?)"
    )
    assert lines[2].startswith(
        "rota.yaml:8: wait of escalation level 1: invalid duration '5 minutes'"
    )
    assert lines[3].startswith("3 problems: not applied.")


def test_check_of_a_valid_rota_summarises_it_and_warns_of_gaps(live, capsys):
    config(live, rota_file="rota.yaml", languages="[en, ar, ru]")
    start, end = _hours_from_now(48), _hours_from_now(72)
    (live / "rota.yaml").write_text(holed_rota(start, end))
    code, out, _ = run(capsys, "check")
    assert code == 0  # gaps are warnings
    assert out.startswith("rota.yaml: OK\n")
    assert "staff       2: amina, ben" in out
    assert "primary: amina, every 1w from 2026-11-02 09:00" in out
    assert "overrides   1" in out
    assert "1. primary, then wait 5m" in out and "2. ben, then wait 5m" in out
    assert "repeat      0 (the chain runs 1 time, then the fallback)" in out
    assert "fallback    amina" in out
    gaps = [line for line in out.splitlines() if line.startswith("  WARNING ")]
    assert "Coverage for the next 14 days: 2 gaps (warnings: the rota is valid)" in out
    # the swap leaves nobody who speaks Arabic; nobody at all speaks Russian
    assert gaps[0].startswith("  WARNING nobody on call speaks 'ru' from ")
    assert gaps[1] == f"  WARNING nobody on call speaks 'ar' from {start} to {end} (Europe/Dublin)"


def test_check_of_a_bare_rota_file_has_no_languages_to_cover(live, capsys):
    (live / "rota.yaml").write_text(holed_rota(_hours_from_now(48), _hours_from_now(72)))
    code, out, _ = run(capsys, "check", "rota.yaml", "--days", "1")
    assert code == 0
    assert "Coverage for the next 1 day: no gaps (every level has someone on call)." in out


def test_check_of_a_config_with_the_rota_inline(live, capsys):
    path = config(live, rota=THREE_MISTAKES)  # the rota starts on line 6 of the config
    code, out, _ = run(capsys, "check", str(path))
    assert code == 1
    assert [line.split(": ")[0] for line in out.splitlines()[:3]] == [
        "config.yaml:6",
        "config.yaml:11",
        "config.yaml:13",
    ]

    config(live, rota=PAIR_ROTA)
    code, out, _ = run(capsys, "check", "config.yaml")
    assert code == 0
    assert out.startswith("config.yaml (the rota under 'rota:'): OK\n")
    assert "no gaps (every level has someone on call and someone speaks en, fr)" in out


def test_check_of_a_config_follows_rota_file_relative_to_the_config(live, capsys, tmp_path):
    elsewhere = tmp_path / "deploy"
    (elsewhere / "rotas").mkdir(parents=True)
    config(elsewhere, rota_file="rotas/team.yaml")
    (elsewhere / "rotas" / "team.yaml").write_text(THREE_MISTAKES)
    code, out, _ = run(capsys, "check", str(elsewhere / "config.yaml"))
    assert code == 1
    assert out.startswith("deploy/rotas/team.yaml:1: unknown timezone")

    (elsewhere / "rotas" / "team.yaml").write_text(PAIR_ROTA)
    code, out, _ = run(capsys, "check", str(elsewhere / "config.yaml"))
    assert code == 0 and out.startswith("deploy/rotas/team.yaml: OK")


def test_check_with_broken_settings_says_so_in_one_line_and_exits_2(live, capsys):
    (live / "config.yaml").write_text("hotline:\n  nubmer: '+35312100489'\nrota_file: rota.yaml\n")
    code, out, err = run(capsys, "check")
    assert code == 2 and out == ""
    assert (
        err == "hotline: config.yaml: unknown setting 'hotline.nubmer' "
        "(did you mean 'hotline.number'?)\n"
    )


def test_check_of_a_missing_file_exits_2(live, capsys):
    code, _, err = run(capsys, "check", "nope.yaml")
    assert code == 2 and "nope.yaml: no such file" in err
    config(live, rota_file="missing.yaml")
    code, _, err = run(capsys, "check", "config.yaml")
    assert code == 2 and "missing.yaml: cannot read" in err


# --- who ------------------------------------------------------------------------------------


def test_who_shows_each_level_across_a_handoff(live, capsys):
    config(live, rota_file="rota.yaml")
    (live / "rota.yaml").write_text(PAIR_ROTA)
    code, before, _ = run(capsys, "who", "--at", "2026-11-09 08:59")
    assert code == 0
    assert before.splitlines()[:3] == [
        "On call at 2026-11-09 08:59 (Europe/Dublin):",
        "level 1 (then wait 5m):",
        "  Amina K. (amina)  +353*****567  [en, ar]  by sms and call",
    ]
    _, after, _ = run(capsys, "who", "--at", "2026-11-09 09:00")
    assert after.splitlines()[2] == "  Ben O. (ben)  +353*****321  [en, fr]  by sms"
    # an instant with an offset means that instant (Dublin is on UTC in November)
    _, same, _ = run(capsys, "who", "--at", "2026-11-09T09:00:00Z")
    assert same == after
    assert after.splitlines()[3:] == [
        "level 2 (then wait 10m):",
        "  Amina K. (amina)  +353*****567  [en, ar]  by sms and call",
        "  Ben O. (ben)  +353*****321  [en, fr]  by sms",
        "no acknowledgement: the chain runs once more, then the fallback",
        "fallback:",
        "  Fiona C. (fiona)  +353*****566  [en]  by sms",
        "  Ben O. (ben)  +353*****321  [en, fr]  by sms",
    ]


def test_who_with_a_language_puts_its_speakers_first(live, capsys):
    config(live, rota_file="rota.yaml", reveal=True)
    (live / "rota.yaml").write_text(PAIR_ROTA)
    code, out, _ = run(capsys, "who", "--at", "2026-11-09 08:00", "--language", "FR")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "On call at 2026-11-09 08:00 (Europe/Dublin), speakers of 'fr' first:"
    level2 = lines[lines.index("level 2 (then wait 10m):") + 1 :][:2]
    assert [line.split(" (")[0].strip() for line in level2] == ["Ben O.", "Amina K."]
    assert "+353867654321" in level2[0]  # reveal_numbers: true shows numbers in clear
    assert lines[-2:] == [
        "  Ben O. (ben)  +353867654321  [en, fr]  by sms",
        "  Fiona C. (fiona)  +353864445566  [en]  by sms",
    ]


def test_who_marks_an_override(live, capsys):
    config(live, rota_file="rota.yaml")
    (live / "rota.yaml").write_text(
        PAIR_ROTA.replace(
            "escalation:",
            "overrides:\n  - {rotation: primary, staff: fiona, "
            'from: "2026-12-24 18:00", to: "2026-12-27 09:00", note: swap}\n'
            "escalation:",
        )
    )
    _, out, _ = run(capsys, "who", "--at", "2026-12-25 12:00")
    assert out.splitlines()[2:4] == [
        "  Fiona C. (fiona)  +353*****566  [en]  by sms",
        "  (override of primary until 2026-12-27 09:00: swap)",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--at", "tomorrow"], "hotline: --at: invalid date and time 'tomorrow'"),
        (["--at", "2026-13-01 09:00"], "hotline: --at: invalid date and time '2026-13-01 09:00'"),
        (
            ["--language", "klingon"],
            "hotline: --language 'klingon': not a two-letter ISO 639-1 "
            "code; the hotline's languages are en, fr",
        ),
        (["--language", "xx"], "hotline: --language 'xx': not a two-letter"),
    ],
)
def test_who_rejects_bad_input_with_exit_2(live, capsys, argv, message):
    config(live, rota_file="rota.yaml")
    (live / "rota.yaml").write_text(PAIR_ROTA)
    code, out, err = run(capsys, "who", *argv)
    assert code == 2 and out == ""
    assert err.startswith(message)


def test_who_with_a_broken_file_shows_the_rota_the_hotline_still_uses(live, capsys):
    config(live, rota_file="rota.yaml")
    rota_path = live / "rota.yaml"
    rota_path.write_text(PAIR_ROTA)
    engine = make_engine(migrated(os.environ["DATABASE_URL"]))
    RotaSource(rota_path, None, engine=engine, vault=Vault((SECRET,))).current()  # stored
    engine.dispose()
    rota_path.write_text(THREE_MISTAKES)
    code, out, err = run(capsys, "who", "--at", "2026-11-09 09:00")
    assert code == 0
    assert err.startswith(
        "WARNING rota.yaml has 3 problems (run `hotline rota check`); showing the last valid rota"
    )
    assert "Ben O. (ben)" in out.splitlines()[2]


def test_who_without_any_valid_rota_exits_1(live, capsys):
    config(live, rota_file="rota.yaml")
    (live / "rota.yaml").write_text(THREE_MISTAKES)
    code, out, err = run(capsys, "who")
    assert code == 1 and out == ""
    assert "3 problems and no valid rota stored" in err


# --- the real console script ---------------------------------------------------------------


@pytest.mark.slow  # runs the console script
def test_console_script_checks_the_config_in_the_working_folder(tmp_path):
    config(tmp_path, rota_file="rota.yaml")
    (tmp_path / "rota.yaml").write_text(THREE_MISTAKES)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HOTLINE_", "TWILIO_")) and k != "DATABASE_URL"
    }
    env["PYTHONPATH"] = str(ROOT)

    def hotline(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "hotline", "rota", *argv],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    broken = hotline("check")
    assert broken.returncode == 1
    assert [line.split(": ")[0] for line in broken.stdout.splitlines()] == [
        "rota.yaml:1",
        "rota.yaml:6",
        "rota.yaml:8",
        "3 problems",
    ]

    (tmp_path / "rota.yaml").write_text(rota_text(at=datetime.fromisoformat("2026-11-02T09:00Z")))
    fixed = hotline("check", "--days", "7")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith("rota.yaml: OK")

    who = hotline("who", "--at", "2026-11-02 09:00", "--language", "es")
    assert who.returncode == 0, who.stderr
    assert who.stdout.splitlines()[:5] == [
        "On call at 2026-11-02 09:00 (Europe/Dublin), speakers of 'es' first:",
        "level 1 (then wait 30m):",
        "  Amina K. (amina)  +353*****567  [en, ar]  by sms",
        "level 2 (then wait 30m):",
        "  Chen L. (chen)  +353*****233  [en, es]  by sms",
    ]
