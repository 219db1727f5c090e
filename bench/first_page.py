"""Scenario 2, idle half: time from a webhook to the first page reaching the Twilio API.

One defender message at a time (each from a new sender, so each opens an incident), on an
otherwise idle hotline (`hotline serve` + one `hotline worker`): the clock starts just before
the signed POST leaves and stops when the fake Twilio API accepts the page for level 1.
The loaded half is measured in bench.webhook_load, during the fixed-rate runs.
"""

from __future__ import annotations

import time

from bench.common import (
    BenchHotline,
    Options,
    Report,
    new_sid,
    sender_number,
    signed_post,
    sms_params,
)

TARGET_P99_MS = 100.0


def run(opts: Options, db: str) -> Report:
    report = Report("first_page", db)
    samples = 20 if opts.quick else 100
    with BenchHotline(db, **opts.hotline_kwargs()) as hotline:
        hotline.start_web()
        hotline.start_worker()
        page_s, webhook_s, failures = [], [], 0
        for i in range(samples):
            params = sms_params(new_sid(), sender_number(500_000 + i), "help, they took Ana",
                                hotline.fake.account_sid)
            before = len(hotline.fake.messages)
            start = time.monotonic()
            status = signed_post(hotline.sms_url, params, hotline.token)
            webhook_s.append(time.monotonic() - start)
            if status != 200:
                failures += 1
                continue
            try:
                messages = hotline.fake.wait_for_messages(before + 1, timeout=10.0)
            except Exception:  # noqa: BLE001 (a timeout: counted, the run goes on)
                failures += 1
                continue
            page = messages[before]
            page_s.append(page.received_monotonic - start)
            # idle means nothing else open: the paged person closes it, as staff would
            signed_post(hotline.sms_url, sms_params(new_sid(), page.to, f"RESOLVE {i + 1}",
                                                    hotline.fake.account_sid), hotline.token)
            time.sleep(0.05)  # let the worker settle between samples
        report.add_latency("webhook response (one at a time)", webhook_s)
        stats = report.add_latency("webhook → first page (one at a time)", page_s)
        report.add("failures (non-200 or no page within 10 s)", failures)
        report.check(f"idle first page p99 < {TARGET_P99_MS:.0f} ms",
                     failures == 0 and stats["p99"] < TARGET_P99_MS,
                     f"p99 {stats['p99']:,.0f} ms")
    return report
