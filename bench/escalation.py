"""Scenario 3: escalation step lateness with 1,000 open incidents, one worker.

The rota pages level 1 (`pia`), waits `WAIT_S`, then pages level 2 (`bo`), whose own wait is
half an hour: every incident stays open, with a step pending, for the whole run. One
`hotline worker` runs everything (its pool keeps `send_concurrency` steps and sends in flight).

1. burst: 1,000 messages from 1,000 defenders are sent through the webhook as fast as it takes
   them (closed loop, 8 in flight). The webhooks are busy, so most only store the message and
   the worker threads them (routing.intake `defer`): the burst's incidents open, and their
   level-1 steps run, as fast as the one worker threads them, and their 1,000 level-2 steps
   fall due over that same stretch (reported as "due within"), all at one worker, while it
   is still threading and paging the rest. Target: p99 < 2 s late, never early.
2. steady: with those 1,000 still open, 100 more incidents arrive at 5 a second; their level-2
   steps are measured the same way (target p99 < 1 s).

For each incident: how late level 2 ran against (level 1's run + wait: the instant the engine
wrote as `next_step_at`), from the audit trail (bench.common.step_times), and how late its page
reached the fake Twilio API against the same due time (only pages sent on their own: most are
bundled into digests here).
Never early: the minimum of both, burst and steady, must be ≥ 0. bench.punctuality measures
the same to the millisecond on pages that are never bundled.
"""

from __future__ import annotations

import math
import time

from bench.common import (
    BenchHotline,
    Options,
    Report,
    escalation_lateness,
    rota_text,
    run_load,
    step_times,
    summary,
    tail,
    tail_text,
    wait_until,
)

WAIT_S = 10.0  # level 1 -> level 2; the burst's level-1 steps run as its incidents open
TARGET_BURST_P99_MS = 2000.0
TARGET_STEADY_P99_MS = 1000.0


def run(opts: Options, db: str) -> Report:
    report = Report("escalation", db)
    background = 200 if opts.quick else 1000
    probes, probe_rate = (25, 5.0) if opts.quick else (100, 5.0)
    rota = rota_text(wait1=f"{WAIT_S:.0f}s", wait2="30m")
    with BenchHotline(db, rota=rota, **opts.hotline_kwargs()) as hotline:
        hotline.start_web()
        hotline.start_worker()  # one worker, on purpose: the target is per worker
        started = time.monotonic()
        load = run_load(
            hotline.sms_url,
            hotline.token,
            hotline.fake.account_sid,
            mode="closed",
            count=background,
            senders=background,
            sender_base=100_000,
            concurrency=8,
            duration=120,
        )
        report.add(f"burst: {background:,} messages answered in", load.elapsed, "s")
        # the webhooks were busy: most messages wait for the worker to thread them
        # (routing.intake `defer`), so the burst is every incident once all are open
        wait_until(
            lambda: hotline.scalar("SELECT count(*) FROM incident") >= background,
            120,
            "every burst message threaded",
            interval=0.1,
        )
        report.add(f"burst: {background:,} incidents open after", time.monotonic() - started, "s")
        burst = {n for (n,) in hotline.rows("SELECT id FROM incident")}
        result = escalation_lateness(hotline, burst, WAIT_S, timeout=120 if not opts.quick else 60)
        due = [ran[0] + WAIT_S for n, ran in step_times(hotline).items() if n in burst and 0 in ran]
        if due:
            report.add("burst: level-2 steps due within", max(due) - min(due), "s")
        stats = report.add_latency("burst: level 2 step ran late by", result["step_late"])
        report.add_latency(
            "burst: level 2 page sent on its own (not bundled) reached Twilio late by",
            result["page_late"],
        )
        report.add("burst: level 2 never paged (within the wait)", result["missing"])
        report.check(
            f"burst of {background:,} due at once, one worker: level 2 p99 < 2 s late",
            not result["missing"] and tail(stats) < TARGET_BURST_P99_MS,
            tail_text(stats),
        )
        lows = [summary(result["step_late"])["min"], summary(result["page_late"])["min"]]

        open_now = hotline.scalar("SELECT count(*) FROM incident WHERE status = 'open'")
        load = run_load(
            hotline.sms_url,
            hotline.token,
            hotline.fake.account_sid,
            mode="open",
            count=probes,
            senders=probes,
            sender_base=200_000,
            rate=probe_rate,
            duration=probes / probe_rate + 1,
        )
        steady = {n for (n,) in hotline.rows("SELECT id FROM incident")} - burst
        result = escalation_lateness(hotline, steady, WAIT_S, timeout=60)
        report.add("steady: incidents open meanwhile", open_now)
        stats = report.add_latency(
            f"steady ({probe_rate:.0f}/s): level 2 step ran late by", result["step_late"]
        )
        report.add_latency(
            f"steady ({probe_rate:.0f}/s): level 2 page sent on its own reached Twilio late by",
            result["page_late"],
        )
        report.add("steady: level 2 never paged (within the wait)", result["missing"])
        report.check(
            f"steady, {open_now:,} open: level 2 p99 < 1 s late",
            not result["missing"] and tail(stats) < TARGET_STEADY_P99_MS,
            tail_text(stats),
        )
        lows += [summary(result["step_late"])["min"], summary(result["page_late"])["min"]]
        # a list that measured nothing is NaN, which would poison min(): leave it out
        earliest = min((low for low in lows if not math.isnan(low)), default=math.nan)
        report.check(
            "never early (burst and steady)",
            earliest >= 0,
            f"earliest {earliest:,.0f} ms after due",
        )
        report.raw["webhook errors"] = load.errors
    return report
