"""Scenario 1 (and the loaded half of 2): `/twilio/sms` throughput and latency under load.

Three measurements, each on a fresh deployment, all with the load generator in its own process:

1. the baseline: a bare Flask endpoint answering constant TwiML under `hotline serve`'s own
   server configuration (bench.bare_app), closed loop (maximum throughput) and open loop at
   the fixed rate;
2. the hotline's `/twilio/sms`, closed loop without a worker: the webhook path alone (busy, so
   it stores the message and leaves the threading to a worker: routing.intake `defer`); the
   ratio to the baseline;
3. the hotline with one `hotline worker`, open loop at each fixed rate: webhook latency, and the
   time from each incident-opening webhook to its first page reaching the fake Twilio API.

Messages come from many distinct senders, two messages each (the second joins the incident the
first opened), so half the requests open an incident and half thread into one.
"""

from __future__ import annotations

from bench.common import (
    BenchHotline,
    LoadResult,
    Options,
    Report,
    bundled_first_pages,
    first_page_latencies,
    run_load,
    tail,
    tail_text,
)

MESSAGES_PER_SENDER = 2
PAIRS = 3  # closed-loop bare/hotline pairs; the ratio is the median pair's
TARGET_RATE = 200.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.25  # issue 11: at least a quarter of a bare endpoint
TARGET_LOADED_PAGE_P99_MS = 250.0


def run(opts: Options, db: str) -> Report:
    report = Report("webhook_load", db)
    closed_s = 3.0 if opts.quick else 8.0
    open_s = 3.0 if opts.quick else 10.0
    rates = [TARGET_RATE] if opts.quick else [100.0, TARGET_RATE]
    concurrency = 16
    cap = 100_000

    # The machine's speed drifts (bare Flask has measured 2,200-5,500 req/s on the same VM
    # within an hour), so bare and hotline runs alternate, in pairs a few seconds apart, and
    # the ratio is the median of the pairs'.
    pairs = []
    for _ in range(1 if opts.quick else PAIRS):
        base, load = _closed_loop_pair(opts, db, closed_s, concurrency, cap)
        pairs.append((base.throughput, load.throughput, load))
    ratios = [hot / bare if bare else 0.0 for bare, hot, _ in pairs]
    mid = sorted(range(len(pairs)), key=lambda i: ratios[i])[len(pairs) // 2]
    base_tp, hot_tp, load = pairs[mid]
    report.add("bare Flask: max throughput (closed loop, 16 in flight)", base_tp, "req/s")
    report.add(
        "/twilio/sms: max throughput (closed loop, 16 in flight, no worker)", hot_tp, "req/s"
    )
    report.add_latency("/twilio/sms: latency in that closed loop", load.latencies())
    report.add("/twilio/sms: errors (non-200) in the closed loops", sum(p[2].errors for p in pairs))
    report.add("ratio to bare Flask (median pair; above)", f"{ratios[mid]:.2f}")
    report.add(
        "each pair: hotline / bare req/s = ratio",
        "; ".join(
            f"{hot:,.0f} / {bare:,.0f} = {ratio:.2f}"
            for (bare, hot, _), ratio in zip(pairs, ratios, strict=True)
        ),
    )
    report.check(
        "throughput ≥ ¼ of bare Flask",
        ratios[mid] >= TARGET_RATIO,
        f"{hot_tp:,.0f} / {base_tp:,.0f} req/s = {ratios[mid]:.2f}"
        + (
            f" (median of {len(pairs)} pairs, {min(ratios):.2f}-{max(ratios):.2f})"
            if len(pairs) > 1
            else ""
        ),
    )

    with BenchHotline(db, **opts.hotline_kwargs()) as bare:
        bare.start_bare()
        base_open = run_load(
            bare.sms_url,
            bare.token,
            bare.fake.account_sid,
            mode="open",
            count=int(TARGET_RATE * open_s),
            senders=cap,
            sender_base=0,
            rate=TARGET_RATE,
            duration=open_s,
        )
        report.add_latency(
            f"bare Flask: latency at {TARGET_RATE:.0f} req/s",
            base_open.latencies(from_schedule=True),
        )

    for rate in rates:
        with BenchHotline(db, **opts.hotline_kwargs()) as hotline:
            hotline.start_web()
            hotline.start_worker()
            count = int(rate * open_s)
            load = run_load(
                hotline.sms_url,
                hotline.token,
                hotline.fake.account_sid,
                mode="open",
                count=count,
                senders=count // MESSAGES_PER_SENDER,
                sender_base=0,
                rate=rate,
                duration=open_s,
            )
            label = f"{rate:.0f} req/s for {open_s:.0f} s, 1 worker"
            stats = report.add_latency(
                f"/twilio/sms latency at {label}", load.latencies(from_schedule=True)
            )
            report.add(f"errors (non-200) at {rate:.0f} req/s", load.errors)
            latencies, missing, last = first_page_latencies(
                hotline, load.sent_at(), timeout=30.0 if opts.quick else 90.0
            )
            page = report.add_latency(f"webhook → first page at {label}", latencies)
            opened = {
                n for n, sid in hotline.first_sid_by_incident().items() if sid in load.sent_at()
            }
            report.add(
                f"incidents whose first page joined a surge digest at {rate:.0f} req/s",
                len(bundled_first_pages(hotline, opened)),
            )
            if missing:
                report.add(f"incidents not yet paged at {rate:.0f} req/s after the wait", missing)
            if last is not None:
                # how long the pages took to drain once the load stopped; pages that all left
                # while webhooks were still coming drained nothing (no negative delay)
                drained = (last - max(load.t_done)) * 1000
                report.add(
                    f"last page after the last webhook at {rate:.0f} req/s",
                    drained if drained > 0 else "none: every page left during the load",
                    "ms" if drained > 0 else "",
                )
            if rate == TARGET_RATE:
                report.check(
                    f"webhook p99 < {TARGET_P99_MS:.0f} ms at {rate:.0f} req/s",
                    load.errors == 0 and tail(stats) < TARGET_P99_MS,
                    tail_text(stats) + f", {load.errors} errors",
                )
                report.check(
                    f"first page p99 < {TARGET_LOADED_PAGE_P99_MS:.0f} ms under load",
                    not missing and tail(page) < TARGET_LOADED_PAGE_P99_MS,
                    tail_text(page) + (f", {missing} unpaged" if missing else ""),
                )
    return report


def _closed_loop_pair(
    opts: Options, db: str, seconds: float, concurrency: int, cap: int
) -> tuple[LoadResult, LoadResult]:
    """Maximum throughput of the bare endpoint, then of `/twilio/sms` (no worker), each on a
    fresh deployment, one right after the other."""
    with BenchHotline(db, **opts.hotline_kwargs()) as bare:
        bare.start_bare()
        base = run_load(
            bare.sms_url,
            bare.token,
            bare.fake.account_sid,
            mode="closed",
            count=cap,
            senders=cap,
            sender_base=0,
            concurrency=concurrency,
            duration=seconds,
        )
    with BenchHotline(db, **opts.hotline_kwargs()) as hotline:
        hotline.start_web()
        load = run_load(
            hotline.sms_url,
            hotline.token,
            hotline.fake.account_sid,
            mode="closed",
            count=cap,
            senders=cap // MESSAGES_PER_SENDER,
            sender_base=0,
            concurrency=concurrency,
            duration=seconds,
        )
    return base, load
