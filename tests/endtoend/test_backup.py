"""Backups that restore: taken while webhooks stream in, encrypted with a key of their own,
restored into an empty database; a truncated or wrong-key file is refused, nothing written."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest
from harness import hotline_cli

from hotline.backup import BackupRefused, backup_key, counts, read, restore, scratch_database
from hotline.settings import new_key


def test_a_backup_taken_during_a_stream_restores_every_acknowledged_message(make_hotline, tmp_path):
    site = make_hotline()
    key = new_key()
    env = {**site.env, "HOTLINE_BACKUP_KEY": key}
    answered: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set():
            sid = "SM" + secrets.token_hex(16)
            if site.sms(f"+4477009{n % 1000:05d}", f"message {n}", sid=sid).status == 200:
                answered.append(sid)
            n += 1

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        while len(answered) < 20:
            stop.wait(0.05)
        before = list(answered)  # acknowledged (200) before the backup began
        file = tmp_path / "hotline.backup"
        taken = hotline_cli(env, "backup", str(file))
        assert taken.returncode == 0, taken.stderr
    finally:
        stop.set()
        writer.join()
    assert file.stat().st_mode & 0o077 == 0  # for the operator's eyes only
    assert b"message 1" not in file.read_bytes()
    verified = hotline_cli(env, "backup", "--verify", str(file))
    assert verified.returncode == 0 and "counts match" in verified.stdout, verified.stderr
    kind, held, _ = read(file, backup_key({"HOTLINE_BACKUP_KEY": key}))
    with scratch_database(site.settings.database_url, kind) as url:
        restored = restore(url, file, backup_key({"HOTLINE_BACKUP_KEY": key}))
        assert restored == held and restored["message"] >= len(before)
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as connection:
            sids = {row[0] for row in connection.execute(text("SELECT sid FROM message"))}
        engine.dispose()
    assert set(before) <= sids


def test_a_truncated_damaged_or_wrong_key_backup_is_refused(make_hotline, tmp_path):
    site = make_hotline()
    site.sms("+447700900111", "they came at night")
    key = new_key()
    file = tmp_path / "good.backup"
    assert hotline_cli({**site.env, "HOTLINE_BACKUP_KEY": key}, "backup", str(file)).returncode == 0
    good = backup_key({"HOTLINE_BACKUP_KEY": key})
    data = file.read_bytes()
    cases = {
        "truncated": data[:-7],
        "cut at a frame": data[: data.index(b"\n", data.index(b"\n") + 1) + 1],
        "damaged": data[:-40] + bytes([data[-40] ^ 1]) + data[-39:],
    }
    for name, bad in cases.items():
        damaged = tmp_path / f"{name}.backup"
        damaged.write_bytes(bad)
        with pytest.raises(BackupRefused):
            read(damaged, good)
    with pytest.raises(BackupRefused, match="wrong backup key"):
        read(file, backup_key({"HOTLINE_BACKUP_KEY": new_key()}))
    # the command line: one line, exit 2, and nothing written into the empty database
    kind, _, _ = read(file, good)
    with scratch_database(site.settings.database_url, kind) as url:
        for bad_file, bad_key in ((tmp_path / "truncated.backup", key), (file, new_key())):
            refused = hotline_cli(
                {**site.env, "DATABASE_URL": url, "HOTLINE_BACKUP_KEY": bad_key},
                "restore",
                str(bad_file),
            )
            assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
            assert counts(url) == {}
    missing = hotline_cli(site.env, "backup", str(tmp_path / "x.backup"))
    assert missing.returncode == 2 and "HOTLINE_BACKUP_KEY" in missing.stderr
    assert not Path(tmp_path / "x.backup").exists()


def test_the_worker_takes_the_nightly_backup_and_keeps_the_newest(make_hotline, tmp_path):
    from harness import TestWorker, wait_until

    folder = tmp_path / "backups"
    folder.mkdir()
    for day in ("20200101", "20200102", "20200103"):
        (folder / f"hotline-{day}-0300.backup").write_bytes(b"old")
    key = new_key()
    site = make_hotline(
        env={"HOTLINE_BACKUP_KEY": key},
        config=f'backup: {{dir: "{folder}", keep: 2, at: "00:00"}}\n',
    )
    worker = TestWorker(site).start()
    try:
        # a busy CI machine: pg_dump and the worker's start can take a while
        wait_until(
            lambda: {e.kind for e in site.events()} & {"backup_taken", "backup_failed"},
            timeout=120,
            what="the nightly backup",
        )
    finally:
        worker.stop()
    kinds = [e.kind for e in site.events()]
    assert "backup_taken" in kinds, worker.log()[-3000:]
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 2 and kept[0] == "hotline-20200103-0300.backup", kept
    read(folder / kept[1], backup_key({"HOTLINE_BACKUP_KEY": key}))  # a whole, readable backup


def test_a_failing_nightly_backup_tells_the_coordinators_once(make_hotline, tmp_path):
    from conftest import rota_text
    from harness import TestWorker, wait_until

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    site = make_hotline(
        rota=rota_text() + "coordinators: [dana]\n",
        env={"HOTLINE_BACKUP_KEY": new_key()},
        config=f'backup: {{dir: "{blocker}", at: "00:00"}}\n',
    )
    worker = TestWorker(site).start()
    try:
        wait_until(lambda: any(e.kind == "backup_failed" for e in site.events()), timeout=30)
        wait_until(lambda: site.messages(purpose="alert"), timeout=10)
    finally:
        worker.stop()
    [alert] = site.messages(purpose="alert")
    assert alert.staff_id == "dana" and "backup failed" in site.unseal(alert, "body")
