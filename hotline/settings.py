"""One validated settings object: `config.yaml` plus secrets from the environment.

`load_settings()` is the only way settings are built. A bad value raises `SettingsError`
whose message is one line naming the key and the fix; the CLI prints it and exits.
"""

from __future__ import annotations

import difflib
import hmac
import os
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
import yaml

from hotline.webformsettings import WebFormSettings, parse_web_form

DEFAULT_API_BASE_URL = "https://api.twilio.com"
HOTLINE_KEYS = ("number", "whatsapp", "languages", "auto_reply", "reveal_numbers")
TOP_KEYS = (
    "hotline",
    "retention_days",
    "rota",
    "rota_file",
    "send_concurrency",
    "flood_threshold",
    "web_form",
    "reminders",
    "rota_feeds",
    "checkins",
)
CHECKIN_KEYS = ("duress_words",)


class SettingsError(Exception):
    """A setting is missing or wrong; the message names the key and the fix."""


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
    send_concurrency: int = 8  # sends and steps a worker keeps in flight at once
    flood_threshold: int = 25  # new incidents within 10 minutes that make a flood
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_base_url: str = DEFAULT_API_BASE_URL
    public_url: str | None = None
    redis_url: str | None = None
    health_token: str | None = None  # HOTLINE_HEALTH_TOKEN: unlocks /healthz details
    web_form: WebFormSettings = field(default_factory=WebFormSettings)
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
    if not config_path.is_file():
        raise SettingsError(
            f"{config_path}: config file not found; set HOTLINE_CONFIG to your config.yaml "
            "or run from the folder that holds it"
        )
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f":{line + 1}" if line is not None else ""
        raise SettingsError(f"{name}{where}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{name}: expected a mapping with a 'hotline:' section at the top")
    _reject_unknown(data, TOP_KEYS, name, "")
    section = data.get("hotline")
    if not isinstance(section, dict):
        raise SettingsError(f"{name}: hotline: missing; add a 'hotline:' section with 'number:'")
    _reject_unknown(section, HOTLINE_KEYS, name, "hotline.")

    number = _phone(section.get("number"), name, "hotline.number")
    whatsapp = section.get("whatsapp")
    if whatsapp is not None:
        raw = str(whatsapp).removeprefix("whatsapp:")
        whatsapp = "whatsapp:" + _phone(raw, name, "hotline.whatsapp")
    languages = section.get("languages", ["en"])
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(c, str) and len(c) == 2 and c.isalpha() for c in languages)
    ):
        raise SettingsError(
            f"{name}: hotline.languages: expected a non-empty list of two-letter codes, "
            "e.g. [en, fr, es]"
        )
    retention = data.get("retention_days", 90)
    if not isinstance(retention, int) or isinstance(retention, bool) or retention < 1:
        raise SettingsError(f"{name}: retention_days: expected a whole number of days >= 1")

    concurrency = data.get("send_concurrency", 8)
    if (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= 64
    ):
        raise SettingsError(f"{name}: send_concurrency: expected a whole number from 1 to 64")

    flood = data.get("flood_threshold", 25)
    if not isinstance(flood, int) or isinstance(flood, bool) or flood < 2:
        raise SettingsError(
            f"{name}: flood_threshold: expected a whole number of new "
            "incidents >= 2 (within 10 minutes), e.g. 25"
        )

    reminder_before = _reminders(data.get("reminders", {}), name)
    rota_feeds = _bool(data.get("rota_feeds", False), name, "rota_feeds")
    duress_words = _duress_words(data.get("checkins", {}), name)

    if "rota" in data and "rota_file" in data:
        raise SettingsError(f"{name}: use either 'rota:' or 'rota_file:', not both")
    if "rota_file" in data:
        rota_path = (config_path.parent / str(data["rota_file"])).resolve()
        rota_key = None
    elif "rota" in data:
        rota_path, rota_key = config_path, "rota"
    else:
        raise SettingsError(f"{name}: no rota; add 'rota:' or 'rota_file: rota.yaml'")

    instance_dir = (base / env.get("HOTLINE_INSTANCE_DIR", "instance")).resolve()
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
                "HOTLINE_SECRET_KEY: required with Twilio credentials; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        keys = (_console_key(instance_dir),)
    if any(len(k) < 16 for k in keys):
        raise SettingsError("HOTLINE_SECRET_KEY: each key must be at least 16 characters long")

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
    return Settings(
        config_path=config_path,
        number=number,
        whatsapp=whatsapp,
        languages=tuple(code.lower() for code in languages),
        auto_reply=_bool(section.get("auto_reply", True), name, "hotline.auto_reply"),
        reveal_numbers=_bool(section.get("reveal_numbers", False), name, "hotline.reveal_numbers"),
        retention_days=retention,
        send_concurrency=concurrency,
        flood_threshold=flood,
        reminder_before=reminder_before,
        rota_feeds=rota_feeds,
        duress_words=duress_words,
        rota_path=rota_path,
        rota_key=rota_key,
        instance_dir=instance_dir,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'hotline.db'}",
        redis_url=redis_url,
        health_token=health_token,
        secret_keys=keys,
        twilio_account_sid=sid,
        twilio_auth_token=token,
        twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/"),
        public_url=public_url.rstrip("/") if public_url else None,
        web_form=parse_web_form(data.get("web_form"), name),
    )


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


def _reject_unknown(mapping: dict, known: tuple[str, ...], name: str, prefix: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (
                f" (did you mean '{prefix}{close[0]}'?)"
                if close
                else f"; known: {', '.join(known)}"
            )
            raise SettingsError(f"{name}: unknown setting '{prefix}{key}'{hint}")


def _duress_words(section: Any, name: str) -> tuple[str, ...]:
    """`checkins: {duress_words: [sunflower, "blue kite"]}`: words or short phrases of letters
    and digits, matched whole, ignoring case and accents (routing.checkins)."""
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise SettingsError(
            f"{name}: checkins: expected a mapping, e.g. 'checkins: {{duress_words: [sunflower]}}'"
        )
    _reject_unknown(section, CHECKIN_KEYS, name, "checkins.")
    words = section.get("duress_words") or []
    example = 'e.g. [sunflower, "blue kite"]'
    if not isinstance(words, list):
        raise SettingsError(f"{name}: checkins.duress_words: expected a list of words, {example}")
    seen: dict[str, str] = {}
    for word in words:
        if (
            not isinstance(word, str)
            or not 2 <= len(word.strip()) <= 40
            or not all(ch.isalnum() or ch in " '-" for ch in word.strip())
        ):
            raise SettingsError(
                f"{name}: checkins.duress_words: {word!r} is not a word; use letters and digits "
                f"(2 to 40 characters), {example}"
            )
        folded = "".join(
            ch
            for ch in unicodedata.normalize("NFKD", word.strip().casefold())
            if not unicodedata.combining(ch)
        )
        if folded in seen:
            raise SettingsError(
                f"{name}: checkins.duress_words: {word!r} repeats "
                f"{seen[folded]!r} (case and accents are ignored)"
            )
        seen[folded] = word.strip()
    return tuple(seen.values())


def _phone(value: Any, name: str, key: str) -> str:
    example = 'write it in international format, e.g. "+35312100489"'
    if value is None:
        raise SettingsError(f"{name}: {key}: missing; {example}")
    try:
        parsed = phonenumbers.parse(str(value), None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise SettingsError(f"{name}: {key}: {value!r} is not a valid phone number; {example}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _reminders(section: Any, name: str) -> timedelta | None:
    """`reminders: {before: 30m}`; `before: off` (or `reminders: false`) sends none."""
    from oncall import parse_duration

    if section is False:
        return None
    if not isinstance(section, dict):
        raise SettingsError(
            f"{name}: reminders: expected a mapping, e.g. reminders: {{before: 30m}}"
        )
    _reject_unknown(section, ("before",), name, "reminders.")
    raw = section.get("before", "30m")
    if raw is False or raw == "off":
        return None
    try:
        before = parse_duration(str(raw))
    except ValueError as exc:
        raise SettingsError(f"{name}: reminders.before: {exc}") from None
    if before <= timedelta(0) or before > timedelta(days=1):
        raise SettingsError(
            f"{name}: reminders.before: give a duration from 1s to 1d, e.g. 30m, or 'off'"
        )
    return before


def _bool(value: Any, name: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{name}: {key}: expected true or false, got {value!r}")
    return value


def _console_key(instance_dir: Path) -> str:
    """A per-install key for console mode, kept in the instance folder (mode 0600)."""
    path = instance_dir / "secret.key"
    if path.is_file():
        return path.read_text().strip()
    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
