"""Scenario 4: the next page after a worker is killed between escalation levels.

Incidents are opened and paged at level 1; halfway through their wait the worker process group
(worker, RQ scheduler child) gets SIGKILL, as from a crash or the OOM killer. Two cases:

- takeover: two workers run and the one holding RQ's scheduler lock is killed; the other
  (its sweeper, then its scheduler once the dead lock expires) must page level 2;
- restart: the only worker is killed and a new one started a second later (what a supervisor
  such as systemd with RestartSec=1 does).

Measured: how late the level-2 pages reached the fake Twilio API against their due time.
"""

from __future__ import annotations

import time

from bench.common import (
    BenchHotline,
    Options,
    Report,
    escalation_lateness,
    page_rows,
    rota_text,
    run_load,
    summary,
    wait_until,
)

WAIT_S = 6.0
RESTART_DELAY_S = 1.0
TARGET_S = 10.0


def run(opts: Options, db: str) -> Report:
    report = Report("worker_kill", db)
    incidents = 10 if opts.quick else 30
    for case in ("takeover", "restart"):
        with BenchHotline(
            db, rota=rota_text(wait1=f"{WAIT_S:.0f}s", wait2="30m"), **opts.hotline_kwargs()
        ) as hotline:
            hotline.start_web()
            hotline.start_worker()
            if case == "takeover":
                hotline.start_worker()
            victim = hotline.scheduler_holder() or hotline.workers[0]
            run_load(
                hotline.sms_url,
                hotline.token,
                hotline.fake.account_sid,
                mode="closed",
                count=incidents,
                senders=incidents,
                sender_base=300_000,
                concurrency=4,
                duration=30,
            )
            opened = {n for (n,) in hotline.rows("SELECT id FROM incident")}
            _wait_for_level1(hotline, len(opened))
            time.sleep(WAIT_S / 2)
            victim.kill()
            killed_at = time.monotonic()
            if case == "restart":
                time.sleep(RESTART_DELAY_S)
                hotline.start_worker(wait=False)
            result = escalation_lateness(hotline, opened, WAIT_S, timeout=90)
            # judged on when each level-2 step ran (bundled or not: routing.bundling)
            stats = report.add_latency(f"{case}: level 2 step ran late by", result["step_late"])
            report.add_latency(
                f"{case}: level 2 page sent on its own reached Twilio late by", result["page_late"]
            )
            report.add(f"{case}: level 2 never paged within 90 s", result["missing"])
            earliest = summary(result["step_late"])["min"]
            who = (
                "second worker"
                if case == "takeover"
                else f"restarted worker ({RESTART_DELAY_S:.0f} s after the kill)"
            )
            report.check(
                f"{case}: next page < {TARGET_S:.0f} s late ({who})",
                not result["missing"] and stats["max"] < TARGET_S * 1000 and earliest >= 0,
                f"max {stats['max'] / 1000:,.1f} s",
            )
            report.raw[f"{case} kill to first level-2 page s"] = (
                min((m.received_monotonic for _n, m in hotline.pages("bo")), default=killed_at)
                - killed_at
            )
    return report


def _wait_for_level1(hotline: BenchHotline, count: int) -> None:
    """Every incident's level-1 step has run (its Page rows exist, individual or bundled)."""
    wait_until(lambda: len(page_rows(hotline)) >= count, 30, "level-1 steps", interval=0.1)
