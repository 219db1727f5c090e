"""`hotline rota check`, `hotline rota who` and `hotline rota ical`: the coordinator's view of
the rota.

Both read the clock here (`oncall` never does) and print times in the rota's own zone. Exit
codes: 0 fine (coverage gaps are warnings), 1 the rota has problems, 2 the command itself was
used wrongly or the settings are broken.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

import oncall
from hotline.settings import Settings, SettingsError, load_settings
from hotline.usage import UsageError, refused
from oncall.localtime import parse_local_datetime
from oncall.schedule import active_override
from routing.masking import show_number

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
            UsageError(f"{_shown(Path(exc.filename or file or '?'))}: cannot read ({exc.strerror})")
        )
    shown = _shown(target.path)
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


def who(settings: Settings, *, at: str | None, language: str | None) -> int:
    """Print who the hotline would page at `at` (ISO-8601; naive = the rota's zone; default
    now), level by level with waits, then the fallback. `language` puts its speakers first.

    Numbers are masked unless `reveal_numbers: true`. When the rota file is invalid the rota the
    hotline is still using (the newest valid one stored) is shown, with a warning. Returns 0;
    1 when there is no valid rota at all; 2 for a bad `--at` or `--language`.
    """
    shown = _shown(settings.rota_path)
    try:
        code = _language(language, settings.languages)
        rota = live_rota(settings, shown)
        instant = _instant(at, rota)
    except UsageError as exc:
        return refused(exc)
    except oncall.RotaInvalid as exc:
        count = len(exc.problems)
        print(
            f"{shown}: {count} problem{'s' if count != 1 else ''} and no valid rota stored; "
            "run `hotline rota check`",
            file=sys.stderr,
        )
        return 1
    local = instant.astimezone(rota.timezone)
    first = f", speakers of '{code}' first" if code else ""
    print(f"On call at {local:%Y-%m-%d %H:%M} ({rota.timezone}){first}:")
    for level, rule in zip(
        oncall.who_is_on_call(rota, instant, code), rota.escalation, strict=True
    ):
        print(f"level {level.number} (then wait {oncall.format_duration(level.wait)}):")
        for person in level.staff:
            print(f"  {_person(person, settings.reveal_numbers)}")
        if not level.staff:
            print("  nobody on call: this level is skipped at once")
        for note in _overrides(rota, rule, instant):
            print(f"  {note}")
    if rota.repeat:
        times = "once more" if rota.repeat == 1 else f"{rota.repeat} more times"
        print(f"no acknowledgement: the chain runs {times}, then the fallback")
    print("fallback:")
    fallback = oncall.escalation_step(rota, instant, oncall.total_steps(rota) - 1, code)
    for person in fallback.staff if fallback else ():
        print(f"  {_person(person, settings.reveal_numbers)}")
    return 0


def ical(
    settings: Settings, *, staff: str | None, days: int, urls: bool, output: str | None
) -> int:
    """Write the shifts of the next `days` days (overrides applied) as iCalendar to `output`
    (default standard output), of `staff` only when given; or, with `urls`, print each staff
    member's feed URL. Returns 0; 1 when there is no valid rota; 2 for an unknown staff id,
    or `urls` while `rota_feeds` is off."""
    from webhooks.feeds import feed_urls, rota_calendar

    shown = _shown(settings.rota_path)
    try:
        rota = live_rota(settings, shown)
        if staff is not None and staff not in rota.staff:
            raise UsageError(
                f"--staff {staff!r}: no such staff member; the rota has {', '.join(rota.staff)}"
            )
        if urls and not settings.rota_feeds:
            raise UsageError(
                "the feeds are off; set 'rota_feeds: true' in config.yaml to serve "
                "GET /rota/<token>.ics"
            )
    except UsageError as exc:
        return refused(exc)
    except oncall.RotaInvalid:
        print(f"{shown}: no valid rota; run `hotline rota check`", file=sys.stderr)
        return 1
    if urls:
        base = settings.public_url or "http://127.0.0.1:5000"
        ids = [staff] if staff else list(rota.staff)
        for sid, url in feed_urls(base, settings.secret_keys[0], ids).items():
            print(f"{sid}  {url}")
        return 0
    now = datetime.now(rota.timezone)
    body = rota_calendar(rota, now, now + timedelta(days=days), now=now, staff=staff)
    if output:
        Path(output).write_bytes(body)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0


# --- check ----------------------------------------------------------------------------------


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


# --- who ------------------------------------------------------------------------------------


def _language(language: str | None, configured: tuple[str, ...]) -> str | None:
    if language is None:
        return None
    code = language.strip().lower()
    if not oncall.is_language_code(code):
        raise UsageError(
            f"--language {language!r}: not a two-letter ISO 639-1 code; "
            f"the hotline's languages are {', '.join(configured)}"
        )
    return code


def live_rota(settings: Settings, shown: str | None = None) -> oncall.Rota:
    """The rota in the file, else (warned) the newest valid one stored, as the hotline does.
    `shown`: the file's name in messages (default: as a coordinator would type it).

    Raises oncall.RotaInvalid when neither exists.
    """
    shown = shown or _shown(settings.rota_path)
    try:
        source = settings.rota_path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = oncall.Problem(shown, 1, f"cannot read the rota ({exc.strerror})")
        invalid = oncall.RotaInvalid([problem])
    else:
        try:
            return oncall.parse_rota(source, shown, key=settings.rota_key)
        except oncall.RotaInvalid as exc:
            invalid = exc
    stored = _stored(settings, shown)
    if stored is None:
        raise invalid
    rota, sha = stored
    count = len(invalid.problems)
    print(
        f"WARNING {shown} has {count} problem{'s' if count != 1 else ''} "
        f"(run `hotline rota check`); showing the last valid rota, sha256 {sha[:12]}, which "
        "the hotline is using",
        file=sys.stderr,
    )
    return rota


def _stored(settings: Settings, shown: str) -> tuple[oncall.Rota, str] | None:
    import sqlalchemy

    from hotline.crypto import Vault
    from hotline.db import make_engine
    from hotline.rotasource import stored_rota
    from routing.tables import RotaVersion

    engine = make_engine(settings.database_url)
    try:
        # a hotline that never ran has no table: that is "nothing stored", not a traceback
        if not sqlalchemy.inspect(engine).has_table(RotaVersion.__tablename__):
            return None
        found = stored_rota(engine, Vault(settings.secret_keys), shown)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        print(f"hotline: cannot read the stored rota ({exc.__class__.__name__})", file=sys.stderr)
        return None
    finally:
        engine.dispose()
    return None if found is None else (found[0], found[1].sha256)


def _instant(at: str | None, rota: oncall.Rota) -> datetime:
    if at is None:
        return datetime.now(rota.timezone)
    try:
        return parse_local_datetime(at, rota.timezone)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None


def _person(person: oncall.Staff, reveal: bool) -> str:
    spoken = ", ".join(person.languages) or "no languages listed"
    return (
        f"{person.name} ({person.id})  {show_number(person.phone, reveal)}  [{spoken}]  "
        f"by {' and '.join(person.notify)}"
    )


def _overrides(rota: oncall.Rota, level: oncall.Level, at: datetime) -> list[str]:
    notes = []
    for target in level.targets:
        override = active_override(rota, target, at) if target in rota.rotations else None
        if override is not None:
            until = override.end.astimezone(rota.timezone)
            why = f": {override.note}" if override.note else ""
            notes.append(f"(override of {target} until {until:%Y-%m-%d %H:%M}{why})")
    return notes


# --- both -----------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    """`path` as a coordinator would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
