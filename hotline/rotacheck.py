"""`hotline rota check`: validate a rota before it goes live, and warn of the coverage gaps
ahead. Exit codes: 0 fine (coverage gaps are warnings), 1 the rota has problems, 2 the command
itself was used wrongly or the settings are broken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

import oncall
from hotline.liverota import shown_path
from hotline.settings import SettingsError, load_settings
from hotline.usage import UsageError, refused

CONFIG_KEYS = ("hotline", "rota", "rota_file")


@dataclass(frozen=True)
class Target:
    """What `check` validates: a file, the top-level key the rota sits under (or None for a
    bare rota file), and the hotline's languages when a config says them."""

    path: Path
    key: str | None
    languages: tuple[str, ...] = ()


def check(file: str | None, *, days: int) -> int:
    """Validate a rota and print a summary plus coverage gaps for the next `days` days.

    `file` is a config.yaml (a top-level `hotline:`, `rota:` or `rota_file:` key) or a bare rota
    file; None means the live config (HOTLINE_CONFIG, else ./config.yaml). Prints every problem
    as `file:line: message` and returns 1 when the rota is invalid; returns 0 when it is valid,
    gaps or not; returns 2 (one line on stderr) for a missing file or broken settings.
    """
    try:
        if days < 0:
            raise UsageError(f"--days {days}: give 0 or more days")
        target = _live_target() if file is None else _target(Path(file))
        source = target.path.read_text(encoding="utf-8")
    except (UsageError, SettingsError) as exc:
        return refused(exc)
    except OSError as exc:
        return refused(
            UsageError(
                f"{shown_path(Path(exc.filename or file or '?'))}: cannot read ({exc.strerror})"
            )
        )
    shown = shown_path(target.path)
    try:
        rota = oncall.parse_rota(source, shown, key=target.key)
    except oncall.RotaInvalid as exc:
        for problem in exc.problems:
            print(problem)
        count = len(exc.problems)
        print(
            f"{count} problem{'s' if count != 1 else ''}: not applied. A running hotline keeps "
            "its last valid rota until the file checks clean."
        )
        return 1
    where = f" (the rota under '{target.key}:')" if target.key else ""
    print(f"{shown}{where}: OK")
    for line in _summary(rota):
        print(f"  {line}")
    # the next `days` days of elapsed time, as `hotline report` counts them: across a clock
    # change, local wall-clock arithmetic would end the window an hour off the report's
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _print_gaps(rota, now, now + timedelta(days=days), target.languages, days)
    return 0


def _live_target() -> Target:
    settings = load_settings()
    return Target(settings.rota_path, settings.rota_key, settings.languages)


def _target(path: Path) -> Target:
    """A config.yaml points at its rota; anything else is checked as a bare rota file."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give a config.yaml or a rota file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        data = None  # parse_rota reports the syntax error with its line
    if not isinstance(data, dict) or not any(key in data for key in CONFIG_KEYS):
        return Target(path, None)
    section = data.get("hotline")
    raw = section.get("languages") if isinstance(section, dict) else None
    languages = tuple(str(code).lower() for code in raw) if isinstance(raw, list) else ()
    if "rota_file" in data:
        return Target(path.parent / str(data["rota_file"]), None, languages)
    if "rota" in data:
        return Target(path, "rota", languages)
    raise UsageError(f"{path}: no rota; add 'rota:' or 'rota_file: rota.yaml' to the config")


def _summary(rota: oncall.Rota) -> list[str]:
    lines = [
        f"time zone   {rota.timezone}",
        f"staff       {len(rota.staff)}: {', '.join(rota.staff)}",
    ]
    label = "rotations "
    for rotation in rota.rotations.values():
        members = ", ".join(rotation.members) or "nobody"
        handoff = rotation.handoff.astimezone(rota.timezone)
        shift = oncall.format_duration(rotation.shift)
        lines.append(
            f"{label}  {rotation.name}: {members}, every {shift} from {handoff:%Y-%m-%d %H:%M}"
        )
        label = " " * len(label)
    if rota.overrides:
        lines.append(f"overrides   {len(rota.overrides)}")
    label = "escalation"
    for number, level in enumerate(rota.escalation, start=1):
        lines.append(
            f"{label}  {number}. {', '.join(level.targets)}, "
            f"then wait {oncall.format_duration(level.wait)}"
        )
        label = " " * len(label)
    runs = rota.repeat + 1
    lines.append(
        f"repeat      {rota.repeat} (the chain runs {runs} time{'s' if runs > 1 else ''}, "
        "then the fallback)"
    )
    lines.append(f"fallback    {', '.join(rota.fallback)}")
    return lines


def _print_gaps(
    rota: oncall.Rota, start: datetime, end: datetime, languages: tuple[str, ...], days: int
) -> None:
    span = f"the next {days} day{'s' if days != 1 else ''}"
    gaps = oncall.coverage_gaps(rota, start, end, languages)
    spoken = f" and someone speaks {', '.join(languages)}" if languages else ""
    if not gaps:
        print(f"Coverage for {span}: no gaps (every level has someone on call{spoken}).")
        return
    print(
        f"Coverage for {span}: {len(gaps)} gap{'s' if len(gaps) != 1 else ''} "
        "(warnings: the rota is valid)"
    )
    for gap in gaps:
        print(f"  WARNING {gap.message}")
