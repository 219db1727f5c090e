"""Scenario 3: escalation step lateness with 1,000 open incidents.

The rota pages level 1 (`pia`), waits `WAIT_S`, then pages level 2 (`bo`), whose own wait is
half an hour: every incident stays open, with a step pending, for the whole run.

1. burst: 1,000 incidents are opened through the webhook as fast as it takes them (closed loop,
   8 in flight), so their level-2 steps all fall due within the same few seconds;
2. steady: with those 1,000 still open, 100 more incidents arrive at 5 a second; their level-2
   steps are measured the same way.

For each incident: how late level 2 ran against (level 1's run + wait), from the Page rows, and
how late its page reached the fake Twilio API against the same due time. Never early: the
minimum of both must be ≥ 0.
"""

from __future__ import annotations

from bench.common import (
    BenchHotline,
    Options,
    Report,
    escalation_lateness,
    rota_text,
    run_load,
    summary,
)

WAIT_S = 5.0
TARGET_P99_MS = 1000.0


def run(opts: Options, db: str) -> Report:
    report = Report("escalation", db)
    background = 200 if opts.quick else 1000
    probes, probe_rate = (25, 5.0) if opts.quick else (100, 5.0)
    rota = rota_text(wait1=f"{WAIT_S:.0f}s", wait2="30m")
    with BenchHotline(db, rota=rota, **opts.hotline_kwargs()) as hotline:
        hotline.start_web()
        hotline.start_worker()
        load = run_load(hotline.sms_url, hotline.token, hotline.fake.account_sid, mode="closed",
                        count=background, senders=background, sender_base=100_000,
                        concurrency=8, duration=120)
        report.add(f"burst: {background:,} incidents opened in", load.elapsed, "s")
        burst = {n for (n,) in hotline.rows("SELECT id FROM incident")}
        result = escalation_lateness(hotline, burst, WAIT_S, timeout=120 if not opts.quick
                                     else 60)
        stats = report.add_latency("burst: level 2 step ran late by", result["step_late"])
        report.add_latency("burst: level 2 page sent on its own (not bundled) reached Twilio "
                           "late by", result["page_late"])
        report.add("burst: level 2 never paged (within the wait)", result["missing"])
        report.check(f"burst of {background:,}: level 2 p99 < 1 s late",
                     not result["missing"] and stats["p99"] < TARGET_P99_MS,
                     f"p99 {stats['p99']:,.0f} ms")

        open_now = hotline.scalar("SELECT count(*) FROM incident WHERE status = 'open'")
        load = run_load(hotline.sms_url, hotline.token, hotline.fake.account_sid, mode="open",
                        count=probes, senders=probes, sender_base=200_000, rate=probe_rate,
                        duration=probes / probe_rate + 1)
        steady = {n for (n,) in hotline.rows("SELECT id FROM incident")} - burst
        result = escalation_lateness(hotline, steady, WAIT_S, timeout=60)
        report.add("steady: incidents open meanwhile", open_now)
        stats = report.add_latency(f"steady ({probe_rate:.0f}/s): level 2 step ran late by",
                                   result["step_late"])
        report.add_latency(f"steady ({probe_rate:.0f}/s): level 2 page sent on its own "
                           "reached Twilio late by", result["page_late"])
        report.add("steady: level 2 never paged (within the wait)", result["missing"])
        report.check(f"steady, {open_now:,} open: level 2 p99 < 1 s late",
                     not result["missing"] and stats["p99"] < TARGET_P99_MS,
                     f"p99 {stats['p99']:,.0f} ms")
        earliest = min(summary(result["step_late"])["min"],
                       summary(result["page_late"])["min"])
        report.check("never early", earliest >= 0, f"earliest {earliest:,.0f} ms after due")
        report.raw["webhook errors"] = load.errors
    return report
