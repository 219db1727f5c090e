"""A small load generator for signed Twilio SMS webhooks, run in its own process.

    python -m bench.loadgen --url URL --token TOKEN --mode closed|open --count N ... --out F

Every request is built and signed before the clock starts, so the generator spends its time
on HTTP only. Closed loop: `--concurrency` requests in flight at all times (the server's
maximum throughput). Open loop: one request every 1/`--rate` s whatever the responses
(latency at a fixed rate, measured from the planned send time, so a stall is not hidden by
the generator waiting for it). Both stop after `--count` requests or `--duration` seconds.
Writes JSON: per request its MessageSid, planned and actual send time, completion time
(`time.monotonic()`, which is system-wide on Linux) and HTTP status (0: connection error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse

import aiohttp
from twilio.request_validator import RequestValidator

REQUEST_TIMEOUT_S = 30
MAX_IN_FLIGHT = 512  # open loop: beyond this the server is hopelessly behind anyway


def build_requests(args: argparse.Namespace) -> tuple[list[str], list[bytes], list[str]]:
    """Bodies and signatures of every request, message i from sender base + i % senders."""
    validator = RequestValidator(args.token)
    tag = f"{int(time.time() * 1000) % 16**8:08x}"
    sids, bodies, signatures = [], [], []
    for i in range(args.count):
        sid = f"SM{tag}{i:024x}"
        sender = f"+447700{args.sender_base + i % args.senders:06d}"
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": args.account_sid,
            "From": sender,
            "To": "+35312100489",
            "Body": f"{args.body} ({i // args.senders + 1})",
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        sids.append(sid)
        bodies.append(urllib.parse.urlencode(params).encode())
        signatures.append(validator.compute_signature(args.url, params))
    return sids, bodies, signatures


async def run(args: argparse.Namespace) -> dict:
    sids, bodies, signatures = build_requests(args)
    n = len(sids)
    t_sched = [0.0] * n
    t_send = [0.0] * n
    t_done = [0.0] * n
    status = [-1] * n
    limit = args.concurrency if args.mode == "closed" else MAX_IN_FLIGHT
    # idle connections are closed here before the server (keepalive 2 s) closes them: a
    # request sent on a connection the server is closing gets "connection reset", which no
    # real client counts as an answer (measured: 3 of 10,000 in the surge, nothing logged)
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=1.0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signatures[i],
            }
            t_send[i] = time.monotonic()
            try:
                async with session.post(args.url, data=bodies[i], headers=headers) as resp:
                    await resp.read()
                    status[i] = resp.status
            except (TimeoutError, aiohttp.ClientError, OSError):
                status[i] = 0
            t_done[i] = time.monotonic()

        # warm the connection pool, outside the measurement (a GET changes nothing)
        try:
            async with session.get(args.url.rsplit("/twilio/", 1)[0] + "/healthz") as resp:
                await resp.read()
        except aiohttp.ClientError:
            pass
        start = time.monotonic()
        deadline = start + args.duration
        if args.mode == "closed":
            counter = iter(range(n))

            async def loop() -> None:
                for i in counter:
                    if time.monotonic() > deadline:
                        return
                    t_sched[i] = time.monotonic()
                    await one(i)

            await asyncio.gather(*(loop() for _ in range(args.concurrency)))
        else:
            tasks = []
            gate = asyncio.Semaphore(MAX_IN_FLIGHT)

            async def gated(i: int) -> None:
                async with gate:
                    await one(i)

            for i in range(n):
                planned = start + i / args.rate
                if planned > deadline:
                    break
                delay = planned - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                t_sched[i] = planned
                tasks.append(asyncio.create_task(gated(i)))
            await asyncio.gather(*tasks)
        elapsed = max((t for t in t_done if t), default=start) - start
    sent = [i for i in range(n) if status[i] != -1]
    return {
        "sids": [sids[i] for i in sent],
        "t_sched": [t_sched[i] for i in sent],
        "t_send": [t_send[i] for i in sent],
        "t_done": [t_done[i] for i in sent],
        "status": [status[i] for i in sent],
        "elapsed": elapsed,
        "extra": {"planned": n, "mode": args.mode},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--mode", choices=("closed", "open"), required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--senders", type=int, required=True)
    parser.add_argument("--sender-base", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--body", default="help police at my door")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.mode == "open" and args.rate <= 0:
        parser.error("--mode open needs --rate")
    result = asyncio.run(run(args))
    with open(args.out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
