"""Scenario 2b: webhooks and pages while the Twilio API takes 400 ms to answer each call.

The real API answers in 100–500 ms; the fake answers in about a millisecond unless told
otherwise, which hides a worker that waits on Twilio one send at a time. Here the fake holds
back every REST answer for `--twilio-latency` seconds (default 0.4). Each round, 5 defenders
write 100 ms apart (open loop, from the load generator's own process): their webhooks are
answered while the worker has the round's pages and auto-replies in flight at Twilio.

Measured, over all rounds: each webhook's answer time from its planned send time, and the
time from each defender's webhook to its level-1 page reaching the fake (the request's
arrival, not the held-back answer). Targets: webhook p99 < 50 ms; every page within 1 s.
A serial sender would need 400 ms per page and per auto-reply, so the fifth defender's page
would come seconds late.

Between rounds a colleague (`bo`) resolves the round's incidents and the run waits until the
outbox has drained (stand-downs, confirmations), so every round starts idle and no page of
a later round is bundled into a surge digest (routing.bundling).
"""

from __future__ import annotations

from bench.common import (
    BenchHotline,
    Options,
    Report,
    first_page_latencies,
    run_load,
    settle,
    staff_command,
    tail,
    tail_text,
)

DEFAULT_LATENCY_S = 0.4
DEFENDERS = 5
RATE = 10.0  # webhooks a second: 100 ms apart
TARGET_WEBHOOK_P99_MS = 50.0
TARGET_PAGE_MAX_MS = 1000.0


def run(opts: Options, db: str) -> Report:
    report = Report("slow_api", db)
    latency = opts.latency_or(DEFAULT_LATENCY_S)
    rounds = 2 if opts.quick else 10
    webhook_s: list[float] = []
    page_s: list[float] = []
    missing = errors = 0
    with BenchHotline(db, **opts.hotline_kwargs(twilio_latency=latency)) as hotline:
        hotline.start_web()
        hotline.start_worker()
        settle(hotline)
        for index in range(rounds):
            load = run_load(
                hotline.sms_url,
                hotline.token,
                hotline.fake.account_sid,
                mode="open",
                count=DEFENDERS,
                senders=DEFENDERS,
                sender_base=600_000 + index * DEFENDERS,
                rate=RATE,
                duration=DEFENDERS / RATE + 1,
                body="they are at the office",
            )
            webhook_s += load.latencies(from_schedule=True)
            errors += load.errors
            latencies, unpaged, _last = first_page_latencies(hotline, load.sent_at(), timeout=15.0)
            page_s += latencies
            missing += unpaged + (DEFENDERS - load.ok)
            opened = {
                n for n, sid in hotline.first_sid_by_incident().items() if sid in load.sent_at()
            }
            for incident in sorted(opened):
                staff_command(hotline, "bo", f"RESOLVE {incident}")
            settle(hotline, timeout=60.0)
        report.add("fake Twilio API answer time", latency * 1000, "ms")
        report.add("rounds of 5 defenders, 100 ms apart", rounds)
        webhook = report.add_latency(
            "webhook answer while the round's sends are in flight", webhook_s
        )
        page = report.add_latency("webhook → page reached Twilio", page_s)
        report.add("webhooks not answered 200", errors)
        report.add("defenders never paged (15 s)", missing)
        label = f"Twilio answering in {latency * 1000:.0f} ms"
        report.check(
            f"{label}: webhook p99 < {TARGET_WEBHOOK_P99_MS:.0f} ms",
            errors == 0 and tail(webhook) < TARGET_WEBHOOK_P99_MS,
            tail_text(webhook),
        )
        report.check(
            f"{label}: each page < 1 s after its webhook (5 defenders 100 ms apart)",
            missing == 0 and page["max"] < TARGET_PAGE_MAX_MS,
            f"max {page['max']:,.0f} ms",
        )
    return report
