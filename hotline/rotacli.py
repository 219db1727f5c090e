"""`hotline rota who` and `hotline rota ical`: the coordinator's view of the rota
(`hotline rota check`: hotline.rotacheck).

Both read the clock here (`oncall` never does) and print times in the rota's own zone. Exit
codes: 0 fine (coverage gaps are warnings), 1 the rota has problems, 2 the command itself was
used wrongly or the settings are broken.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import oncall
from hotline.liverota import live_rota, shown_path
from hotline.settings import Settings
from hotline.usage import UsageError, refused
from oncall.localtime import parse_local_datetime
from oncall.schedule import active_override
from routing.masking import show_number


def who(settings: Settings, *, at: str | None, language: str | None) -> int:
    """Print who the hotline would page at `at` (ISO-8601; naive = the rota's zone; default
    now), level by level with waits, then the fallback. `language` puts its speakers first.

    Numbers are masked unless `reveal_numbers: true`. When the rota file is invalid the rota the
    hotline is still using (the newest valid one stored) is shown, with a warning. Returns 0;
    1 when there is no valid rota at all; 2 for a bad `--at` or `--language`.
    """
    shown = shown_path(settings.rota_path)
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
    settings: Settings,
    *,
    staff: str | None,
    days: int,
    urls: bool,
    output: str | None,
    renew: str | None = None,
) -> int:
    """Write the shifts of the next `days` days (overrides applied) as iCalendar to `output`
    (default standard output), of `staff` only when given; or, with `urls`, print each staff
    member's feed URL; or, with `renew`, give that person's feed a new URL (the old one answers
    404 from then on) and print it. Returns 0; 1 when there is no valid rota; 2 for an unknown
    staff id, or `urls` while `rota_feeds` is off."""
    from webhooks.feeds import rota_calendar

    shown = shown_path(settings.rota_path)
    try:
        rota = live_rota(settings, shown)
        for option, value in (("--staff", staff), ("--renew", renew)):
            if value is not None and value not in rota.staff:
                raise UsageError(
                    f"{option} {value!r}: no such staff member; the rota has "
                    + ", ".join(rota.staff)
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
    if urls or renew:
        return _feed_urls(
            settings, [renew] if renew else [staff] if staff else list(rota.staff), renew
        )
    now = datetime.now(rota.timezone)
    body = rota_calendar(rota, now, now + timedelta(days=days), now=now, staff=staff)
    if output:
        Path(output).write_bytes(body)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0


def _feed_urls(settings: Settings, ids: list[str], renew: str | None) -> int:
    """Print the feed URL of each of `ids`, after giving `renew` a new one."""
    from sqlmodel import Session

    from hotline.app import offline_runtime
    from routing.staffstate import feed_salts, renew_feed
    from webhooks.feeds import feed_urls

    base = settings.public_url or "http://127.0.0.1:5000"
    if not settings.public_url:
        print(
            "hotline: HOTLINE_PUBLIC_URL is not set in this shell: these are local URLs; "
            "set it as the hotline's processes have it for the addresses staff can reach",
            file=sys.stderr,
        )
    rt = offline_runtime(settings)
    try:
        if renew:
            renew_feed(rt, renew, actor="operator")
        with Session(rt.engine) as session:
            salts = feed_salts(session, ids)
    finally:
        rt.engine.dispose()
    for sid, url in feed_urls(base, settings.secret_keys[0], salts).items():
        print(f"{sid}  {url}")
    if renew:
        print(
            f"{renew}'s old feed URL no longer answers; send them this one"
            + ("" if settings.rota_feeds else " (served once 'rota_feeds: true')"),
            file=sys.stderr,
        )
    return 0


# --- check ----------------------------------------------------------------------------------


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
