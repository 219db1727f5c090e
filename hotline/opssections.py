"""The sections of config.yaml that say where and how the line runs beside its calls and texts:
the staff console (`console:`), the dead man's switch (`heartbeat_url`, `heartbeat_every`)
and the nightly backup (`backup:`). Each parser raises SettingsError with one line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from hotline.configsections import SettingsError, boolean, rate, reject_unknown, whole_number
from oncall import parse_duration

CONSOLE_KEYS = ("enabled", "url", "signin_limit")


@dataclass(frozen=True)
class ConsoleSettings:
    enabled: bool = False
    # the address staff open it at (passkeys are bound to its host name); None: the public URL
    url: str | None = None
    signin_limit: str = "30/minute"  # sign-in, enrolment and verification answers, all together


def console(value: Any, name: str) -> ConsoleSettings:
    """`console:` as configured (None: the defaults, off). Raises SettingsError."""
    if value is None:
        return ConsoleSettings()
    if not isinstance(value, dict):
        raise SettingsError(
            f"{name}: console: expected a mapping, e.g. 'console: {{enabled: true}}'"
        )
    reject_unknown(value, CONSOLE_KEYS, name, "console.")
    url = value.get("url")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("https://", "http://localhost"))
    ):
        raise SettingsError(
            f"{name}: console.url: {url!r} must start with https:// (or http://localhost for "
            "a console on this machine only): passkeys work only on a secure address"
        )
    limit = rate(
        value.get("signin_limit", ConsoleSettings.signin_limit), name, "console.signin_limit"
    )
    return ConsoleSettings(
        enabled=boolean(value.get("enabled", False), name, "console.enabled"),
        url=url.rstrip("/") if url else None,
        signin_limit=limit,
    )


def heartbeat(url: Any, every: Any, name: str) -> dict[str, Any]:
    """`heartbeat_url` (a dead man's switch, healthchecks.io style) and `heartbeat_every`, as
    the Settings fields of those names."""
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("https://", "http://"))
    ):
        raise SettingsError(
            f"{name}: heartbeat_url: {url!r} is not a URL; e.g. https://hc-ping.com/<uuid>"
        )
    try:
        interval = parse_duration(str(every))
    except ValueError as exc:
        raise SettingsError(f"{name}: heartbeat_every: {exc}") from None
    if not timedelta(seconds=1) <= interval <= timedelta(hours=1):
        raise SettingsError(f"{name}: heartbeat_every: give a duration from 1s to 1h, e.g. 1m")
    return {"heartbeat_url": url.rstrip("/") if url else None, "heartbeat_every": interval}


@dataclass(frozen=True)
class BackupSettings:
    dir: str
    keep: int = 14
    at: str = "03:00"  # local time of the rota's zone


def backup(value: Any, name: str) -> BackupSettings | None:
    """`backup: {dir, keep, at}`: a nightly encrypted backup by the worker; None: off."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("dir"), str):
        raise SettingsError(
            f"{name}: backup: expected a mapping with dir, e.g. "
            "'backup: {dir: /var/backups/hotline, keep: 14, at: \"03:00\"}'"
        )
    reject_unknown(value, ("dir", "keep", "at"), name, "backup.")
    at = str(value.get("at", "03:00"))
    hours, _, minutes = at.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise SettingsError(f'{name}: backup.at: {at!r} is not a time of day; e.g. "03:00"')
    keep = whole_number(value.get("keep", 14), name, "backup.keep", 1, 3650, "of backups >= 1")
    return BackupSettings(dir=value["dir"], keep=keep, at=f"{int(hours):02d}:{int(minutes):02d}")


# set by `hotline run` for the processes it starts: the staff console on this machine only,
# at this address, unless config.yaml configures the console itself
LOCAL_CONSOLE = "HOTLINE_CONSOLE_URL"


def console_from(value: Any, name: str, local: str | None) -> ConsoleSettings:
    configured = console(value, name)
    if local and not configured.enabled:
        return console({"enabled": True, "url": local}, LOCAL_CONSOLE)
    return configured


def backup_from(value: Any, name: str, folder: Path, env: Mapping[str, str]):  # noqa: ANN202
    configured = backup(value, name)
    if configured is None:
        return None
    if not env.get("HOTLINE_BACKUP_KEY"):
        raise SettingsError(
            f"{name}: backup: set HOTLINE_BACKUP_KEY (`hotline keygen`; keep it apart from "
            "HOTLINE_SECRET_KEY) or remove backup:"
        )
    return BackupSettings(
        dir=str((folder / configured.dir).resolve()), keep=configured.keep, at=configured.at
    )
