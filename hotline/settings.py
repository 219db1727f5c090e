"""One validated settings object: `config.yaml` plus secrets from the environment.

`load_settings()` is the only way settings are built. A bad value raises `SettingsError`
whose message is one line naming the key and the fix; the CLI prints it and exits.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hotline import configsections as sections
from hotline import opssections as ops
from hotline.configsections import SettingsError, WebFormSettings
from hotline.opssections import BackupSettings, ConsoleSettings

__all__ = ["ConsoleSettings", "Settings", "SettingsError", "WebFormSettings", "load_settings"]

DEFAULT_API_BASE_URL = "https://api.twilio.com"
KEY_CHARACTERS = 32  # a master key: 32 random bytes, encoded (hotline keygen: 43 characters)
TOP_KEYS = (
    "hotline",
    "retention_days",
    "max_open_days",
    "rota",
    "rota_file",
    "send_concurrency",
    "flood_threshold",
    "web_form",
    "reminders",
    "rota_feeds",
    "checkins",
    "console",
    "heartbeat_url",
    "heartbeat_every",
    "backup",
)


@dataclass(frozen=True)
class Settings:
    config_path: Path
    number: str
    rota_path: Path
    rota_key: str | None  # "rota" when the rota lives inside config.yaml, None for a bare file
    instance_dir: Path
    database_url: str
    secret_keys: tuple[str, ...]
    whatsapp: str | None = None
    languages: tuple[str, ...] = ("en",)
    auto_reply: bool = True
    reveal_numbers: bool = False
    retention_days: int = 90
    max_open_days: int = 180  # an incident without contact this long is closed and erased
    send_concurrency: int = 8  # sends and steps a worker keeps in flight at once
    flood_threshold: int = 25  # new incidents within 10 minutes that make a flood
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_base_url: str = DEFAULT_API_BASE_URL
    public_url: str | None = None
    redis_url: str | None = None
    health_token: str | None = None  # HOTLINE_HEALTH_TOKEN: unlocks /healthz details
    web_form: WebFormSettings = field(default_factory=WebFormSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)  # the staff console
    # a dead man's switch the worker pings while healthy (hotline.heartbeat); None: off
    heartbeat_url: str | None = None
    heartbeat_every: timedelta = timedelta(minutes=1)
    backup: BackupSettings | None = None  # the worker's nightly backup (hotline.backup)
    # an SMS this long before each shift (reminders.before); None: no shift reminders
    reminder_before: timedelta | None = timedelta(minutes=30)
    rota_feeds: bool = False  # serve GET /rota/<token>.ics per staff member
    duress_words: tuple[str, ...] = ()  # checkins.duress_words, as written (routing.checkins)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def console_mode(self) -> bool:
        """True when no Twilio credentials are set: outbound traffic is logged, not sent."""
        return not (self.twilio_account_sid and self.twilio_auth_token)

    @property
    def console_url(self) -> str | None:
        """Where staff open the console: `console.url`, else HOTLINE_PUBLIC_URL."""
        return self.console.url or self.public_url

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def webhook_token(self) -> str:
        """The secret webhooks are signed with: the auth token, or in console mode a token
        derived from the secret key (so `hotline simulate` can sign what it sends)."""
        if self.twilio_auth_token:
            return self.twilio_auth_token
        return hmac.new(self.secret_keys[0].encode(), b"console-webhooks", "sha256").hexdigest()


def load_settings(environ: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> Settings:
    """Build settings from `HOTLINE_CONFIG` (default ./config.yaml) and the environment.

    Raises SettingsError with a one-line message on any missing or invalid value.
    """
    env = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else cwd
    config_path = (base / env.get("HOTLINE_CONFIG", "config.yaml")).resolve()
    name = config_path.name
    data = _config(config_path)
    sections.reject_unknown(data, TOP_KEYS, name, "")
    line = sections.hotline_section(data.get("hotline"), name)
    rota_path, rota_key = _rota_location(data, config_path)
    instance_dir = (base / env.get("HOTLINE_INSTANCE_DIR", "instance")).resolve()
    secrets_ = _secrets(env, instance_dir)
    return Settings(
        config_path=config_path,
        number=line.number,
        whatsapp=line.whatsapp,
        languages=line.languages,
        auto_reply=line.auto_reply,
        reveal_numbers=line.reveal_numbers,
        retention_days=sections.whole_number(
            data.get("retention_days", 90), name, "retention_days", 1, None, "of days >= 1"
        ),
        max_open_days=sections.whole_number(
            data.get("max_open_days", 180), name, "max_open_days", 14, None, "of days >= 14"
        ),
        send_concurrency=sections.whole_number(
            data.get("send_concurrency", 8), name, "send_concurrency", 1, 64, "from 1 to 64"
        ),
        flood_threshold=sections.whole_number(
            data.get("flood_threshold", 25),
            name,
            "flood_threshold",
            2,
            None,
            "of new incidents >= 2 (within 10 minutes), e.g. 25",
        ),
        reminder_before=sections.reminders(data.get("reminders", {}), name),
        rota_feeds=sections.boolean(data.get("rota_feeds", False), name, "rota_feeds"),
        duress_words=sections.duress_words(data.get("checkins", {}), name),
        rota_path=rota_path,
        rota_key=rota_key,
        instance_dir=instance_dir,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'hotline.db'}",
        twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/"),
        web_form=sections.web_form(data.get("web_form"), name),
        console=ops.console_from(data.get("console"), name, env.get(ops.LOCAL_CONSOLE)),
        backup=ops.backup_from(data.get("backup"), name, config_path.parent, env),
        **ops.heartbeat(data.get("heartbeat_url"), data.get("heartbeat_every", "1m"), name),
        **secrets_,
    )


def _config(path: Path) -> dict:
    """config.yaml as a mapping; SettingsError when it is missing, not YAML, or not a mapping."""
    if not path.is_file():
        raise SettingsError(
            f"{path}: config file not found; set HOTLINE_CONFIG to your config.yaml "
            "or run from the folder that holds it"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f":{line + 1}" if line is not None else ""
        raise SettingsError(
            f"{path.name}{where}: not valid YAML ({exc.__class__.__name__})"
        ) from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path.name}: expected a mapping with a 'hotline:' section at the top")
    return data


def _rota_location(data: dict, config_path: Path) -> tuple[Path, str | None]:
    """Where the rota is: a file of its own (`rota_file:`) or the `rota:` key of config.yaml."""
    name = config_path.name
    if "rota" in data and "rota_file" in data:
        raise SettingsError(f"{name}: use either 'rota:' or 'rota_file:', not both")
    if "rota_file" in data:
        return (config_path.parent / str(data["rota_file"])).resolve(), None
    if "rota" in data:
        return config_path, "rota"
    raise SettingsError(f"{name}: no rota; add 'rota:' or 'rota_file: rota.yaml'")


def _secrets(env: Mapping[str, str], instance_dir: Path) -> dict[str, Any]:
    """What the environment holds: Twilio's credentials, the secret keys, the public URL, Redis
    and the health token, checked together (live mode needs all of its parts)."""
    sid = env.get("TWILIO_ACCOUNT_SID") or None
    token = env.get("TWILIO_AUTH_TOKEN") or None
    if bool(sid) != bool(token):
        raise SettingsError(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: set both (live mode) "
            "or neither (console mode)"
        )
    keys = tuple(k.strip() for k in env.get("HOTLINE_SECRET_KEY", "").split(",") if k.strip())
    if not keys:
        if sid:
            raise SettingsError(
                "HOTLINE_SECRET_KEY: required with Twilio credentials; `hotline keygen` "
                "prints a new one"
            )
        keys = (_console_key(instance_dir),)
    if any(len(k) < KEY_CHARACTERS for k in keys):
        raise SettingsError(
            f"HOTLINE_SECRET_KEY: each key must be at least {KEY_CHARACTERS} characters of "
            "random (32 random bytes, encoded); `hotline keygen` prints a new one"
        )
    public_url = env.get("HOTLINE_PUBLIC_URL") or None
    if public_url and not public_url.startswith(("http://", "https://")):
        raise SettingsError(
            f"HOTLINE_PUBLIC_URL: {public_url!r} must start with https:// (or http:// locally)"
        )
    if public_url is None and sid:
        # without it the signed URL would come from the request's Host header, which the
        # sender chooses; console mode keeps the request URL for trying things locally
        raise SettingsError(
            "HOTLINE_PUBLIC_URL: required with Twilio credentials; set it to the public base "
            "URL configured in Twilio, e.g. https://hotline.example.org"
        )
    redis_url = env.get("REDIS_URL") or None
    if redis_url:
        _check_redis_url(redis_url)
    health_token = env.get("HOTLINE_HEALTH_TOKEN") or None
    if health_token is not None and len(health_token) < 16:
        raise SettingsError("HOTLINE_HEALTH_TOKEN: must be at least 16 characters long")
    return {
        "twilio_account_sid": sid,
        "twilio_auth_token": token,
        "secret_keys": keys,
        "public_url": public_url.rstrip("/") if public_url else None,
        "redis_url": redis_url,
        "health_token": health_token,
    }


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def _check_redis_url(url: str) -> None:
    """Refuse a network Redis without a password: whoever can write to the queue decides what
    the workers do (and, with RQ's default pickle, what code they run)."""
    parsed = urlsplit(url)
    if parsed.scheme == "unix":
        return
    if parsed.scheme not in ("redis", "rediss"):
        raise SettingsError(
            f"REDIS_URL: scheme {parsed.scheme!r} not supported; use redis://, rediss:// or unix://"
        )
    host = (parsed.hostname or "").lower()
    if not host or host in LOOPBACK_HOSTS or host.startswith("127."):  # none: localhost
        return
    if not parsed.password:
        raise SettingsError(
            "REDIS_URL: a Redis on another host needs a password "
            "(redis://:PASSWORD@host:6379/0, better rediss:// with TLS); only loopback or a "
            "unix socket may go without"
        )


def new_key() -> str:
    """A new master key: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def _console_key(instance_dir: Path) -> str:
    """A per-install key for console mode, kept in the instance folder (mode 0600)."""
    path = instance_dir / "secret.key"
    if path.is_file():
        return path.read_text().strip()
    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
