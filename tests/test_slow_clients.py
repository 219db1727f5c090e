"""Slow clients cannot stall the receiver: the real `hotline serve`, twenty connections that
send a request line and one header and then nothing, and a signed webhook that still answers
at once."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from harness import ROOT, free_port, wait_until
from twilio.request_validator import RequestValidator

pytestmark = pytest.mark.slow
DEFENDER = "+447700900123"


@pytest.fixture
def served(hotline, tmp_path):
    """`hotline serve` as an operator starts it, on its own port, with the shipped defaults."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **hotline.env, "HOTLINE_PUBLIC_URL": base, "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "hotline", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((tmp_path / "serve.log").read_text())
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
        except urllib.error.HTTPError:
            return True  # 503 without a worker is an answer
        except OSError:
            return False
        return True

    wait_until(up, timeout=30, what="hotline serve")
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def signed_sms(hotline, base: str) -> float:  # noqa: ANN001
    """Seconds for one signed /twilio/sms to be answered (200)."""
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": hotline.fake.account_sid,
              "From": DEFENDER, "To": hotline.settings.number, "Body": "help", "NumMedia": "0"}
    url = base + "/twilio/sms"
    signature = RequestValidator(hotline.fake.auth_token).compute_signature(url, params)
    request = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(),
                                     headers={"X-Twilio-Signature": signature}, method="POST")
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200
        response.read()
    return time.monotonic() - started


def test_twenty_slow_header_clients_do_not_delay_a_webhook(hotline, served):
    port = int(served.rsplit(":", 1)[1])
    baseline = statistics.median(signed_sms(hotline, served) for _ in range(5))
    slow: list[socket.socket] = []
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /twilio/sms HTTP/1.1\r\nHost: hotline\r\n")  # ...and no more
            slow.append(sock)
        time.sleep(0.5)  # let the server take them all in
        stalled = [signed_sms(hotline, served) for _ in range(5)]
    finally:
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.close()
    assert max(stalled) - baseline < 0.100, (baseline, stalled)
    assert len(hotline.messages(direction="in")) == 10


def test_serve_listens_on_loopback_by_default():
    from hotline.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
