"""A dead man's switch, and a watcher for a second host.

`heartbeat_url` in config.yaml (healthchecks.io style): each worker GETs it every
`heartbeat_every` (default 1m) while the hotline's health check is ok, and `<url>/fail` when
a check fails (the database, Redis, the workers, the rota: routing.health). The service
behind the URL tells the coordinators when the pings stop or fail: the line is dark.

`hotline watch URL` is that outside watcher for an operator with a second cheap host instead
of a hosted check: it GETs the hotline's `/healthz` every minute and, when it has not answered
200 twice running, texts the coordinators (else the fallback contacts) through Twilio, once,
and again when it is back. It needs Twilio credentials and the rota, not the database.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import urllib.error
import urllib.request

from hotline.liverota import live_rota
from hotline.settings import Settings
from hotline.twilio_client import make_notifier
from routing.health import health_report
from routing.runtime import Runtime

log = logging.getLogger(__name__)
TIMEOUT_S = 10
DOWN_AFTER = 2  # answers missed in a row before the coordinators are told


def _get(url: str) -> int:
    """The status of a GET of `url`; 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


class HeartbeatPinger(threading.Thread):
    """A worker's pings to `heartbeat_url`: the URL while healthy, `<url>/fail` when not."""

    def __init__(self, rt: Runtime):
        super().__init__(name="heartbeat", daemon=True)
        self.rt = rt
        self.stopping = threading.Event()

    def run(self) -> None:
        url, every = self.rt.settings.heartbeat_url, self.rt.settings.heartbeat_every
        while url and not self.stopping.is_set():
            healthy = health_report(self.rt)["ok"]
            target = url if healthy else f"{url}/fail"
            if not 200 <= _get(target) < 300:
                log.warning("heartbeat: %s did not take the ping", target.split("?")[0])
            self.stopping.wait(every.total_seconds())


def watch(settings: Settings, url: str, *, every: float, rounds: int | None = None) -> int:
    """`hotline watch URL`: until interrupted (or `rounds` checks, for tests)."""
    notifier = make_notifier(settings)
    missed, told = 0, False
    done = 0
    while rounds is None or done < rounds:
        status = _get(url)
        missed = 0 if status == 200 else missed + 1
        if missed >= DOWN_AFTER and not told:
            told = _tell(
                settings,
                notifier,
                f"Hotline DOWN: {url} has not answered for "
                f"{missed} checks ({status or 'no answer'}). Calls and texts go to the "
                "fallback at Twilio; check the server.",
            )
        elif missed == 0 and told:
            told = not _tell(settings, notifier, f"Hotline back up: {url} answers again.")
        done += 1
        time.sleep(every)
    return 0


def _tell(settings: Settings, notifier, text: str) -> bool:  # noqa: ANN001
    """Text the coordinators (else the fallback contacts); True when at least one was sent."""
    try:
        rota = live_rota(settings)
    except Exception as exc:
        print(f"hotline watch: no rota to find the coordinators in ({exc})", file=sys.stderr)
        return False
    sent = False
    for staff_id in rota.coordinators_or_fallback():
        person = rota.staff.get(staff_id)
        if person is None:
            continue
        try:
            notifier.send_message(
                to=person.phone, from_=settings.number, body=text, status_callback=None
            )
            sent = True
        except Exception as exc:
            print(f"hotline watch: could not text {staff_id}: {exc}", file=sys.stderr)
    print(f"hotline watch: {text}", flush=True)
    return sent
