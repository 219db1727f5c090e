"""The web form's conversations in the engine: one intake, pages, replies, BLOCK, retention.

In-process with a moved clock (tests/engine_world.py); the form itself over HTTP and in a real
browser is tests/endtoend/test_web_form.py and tests/endtoend/test_web_browser.py.
"""

from __future__ import annotations

import json

from sqlmodel import Session, select

from hotline.db import vault_on
from hotline.incidents import show_incident
from hotline.rekey import rekey
from routing import webform
from routing.retention import purge
from routing.tables import WebReceipt

DEFENDER = "+447700900123"


def test_a_web_message_pages_like_an_sms_and_its_contact_line_stays_off_the_phone(world, capsys):
    sent = webform.submit(world.rt, "They raided our office", "Signal +44 7700 900789 after 6pm")
    world.settle()
    [incident] = world.incidents()
    assert incident.channel == "web" and sent.incident_id == incident.id
    [page] = world.sms_to("amina")
    n = incident.id
    assert page == f'#{n} Web: "They raided our office" ACK {n} | R{n} text | PASS {n}'
    assert world.messages(direction="out", purpose="auto_reply") == [], "no SMS auto-reply"
    # the operator's view has it, masked
    assert show_incident(world.settings, n, as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["contact"] == "Signal +44*****789 after 6pm"


def test_each_receipt_is_its_own_person_and_escalates_like_an_sms(world):
    webform.submit(world.rt, "first", None)
    webform.submit(world.rt, "second", None)
    world.settle()
    assert len(world.incidents()) == 2, "two conversations are never threaded together"
    world.advance(minutes=5)
    world.settle()
    assert len(world.sms_to("chen")) == 2, "level 2 paged for each, as for SMS"


def test_a_receipt_opens_the_conversation_and_staff_replies_show_as_the_hotline(world):
    sent = webform.submit(world.rt, "we need a lawyer", None)
    world.settle()
    amina = world.staff_phone("amina")
    before = len(world.fake.messages)
    confirmation = world.text(amina, f"R{sent.incident_id} A lawyer will call you at 6")
    assert "web form" in confirmation and "Nothing sent by SMS" in confirmation
    world.settle()
    sms_after = [m for m in world.fake.messages[before:] if m.to != amina]
    assert sms_after == [], "a web reply is never texted to anyone"
    person = webform.find(world.rt, sent.receipt)
    lines = webform.conversation(world.rt, person).lines
    assert [(line.from_hotline, line.text) for line in lines] == [
        (False, "we need a lawyer"),
        (True, "A lawyer will call you at 6"),
    ]
    assert world.incident(sent.incident_id).status == "acknowledged"


def test_writing_more_joins_the_incident_and_is_relayed_to_the_taker(world):
    sent = webform.submit(world.rt, "help", None)
    world.settle()
    world.text(world.staff_phone("amina"), f"ACK {sent.incident_id}")
    webform.write_more(world.rt, webform.find(world.rt, sent.receipt), "they left now")
    world.settle()
    assert len(world.incidents()) == 1
    relays = [m for m in world.sms_to("amina") if "they left now" in m]
    assert relays and relays[0].startswith(f"#{sent.incident_id} web form:")


def test_block_blocks_that_receipt_only(world):
    spam = webform.submit(world.rt, "spam", None)
    other = webform.submit(world.rt, "real emergency", None)
    world.settle()
    amina = world.staff_phone("amina")
    confirmation = world.text(amina, f"BLOCK {spam.incident_id}")
    assert "messages on its receipt are kept but page nobody" in confirmation
    world.text(amina, f"RESOLVE {spam.incident_id}")
    received = webform.write_more(world.rt, webform.find(world.rt, spam.receipt), "more spam")
    assert received.blocked
    fresh = webform.write_more(world.rt, webform.find(world.rt, other.receipt), "still here")
    assert not fresh.blocked and fresh.incident_id == other.incident_id
    webform.submit(world.rt, "a new defender", None)
    world.settle()
    assert len(world.incidents()) == 3, "a new form submission is a new person, not blocked"


def test_a_wrong_or_malformed_receipt_opens_nothing(world):
    sent = webform.submit(world.rt, "hello", None)
    digits = sent.receipt.replace(" ", "")
    wrong = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert webform.find(world.rt, sent.receipt) is not None
    assert webform.find(world.rt, digits) == webform.find(world.rt, sent.receipt)
    assert webform.find(world.rt, wrong) is None
    assert webform.find(world.rt, "1234") is None
    assert webform.find(world.rt, "") is None


def test_the_receipt_is_stored_only_as_a_slow_keyed_hash(world):
    sent = webform.submit(world.rt, "hello", "my email x@example.org")
    with Session(world.rt.engine) as session:
        [row] = session.exec(select(WebReceipt)).all()
    digits = sent.receipt.replace(" ", "")
    assert digits not in repr(row) and "x@example.org" not in repr(row)
    assert row.receipt_hash == world.rt.vault.slow_hashes(digits)[0]
    assert row.receipt_hash not in world.rt.vault.lookup_hashes(digits), "not a fast hash"


def test_retention_erases_the_receipt_with_the_incident(world):
    sent = webform.submit(world.rt, "hello", "call +44 7700 900789")
    world.settle()
    world.text(world.staff_phone("amina"), f"RESOLVE {sent.incident_id}")
    world.advance(days=91)
    purge(world.rt, 90)
    assert webform.find(world.rt, sent.receipt) is None
    with Session(world.rt.engine) as session:
        assert session.exec(select(WebReceipt)).all() == []


def test_a_message_after_resolve_opens_a_new_incident_on_the_same_page(world):
    sent = webform.submit(world.rt, "first time", None)
    world.settle()
    world.text(world.staff_phone("amina"), f"RESOLVE {sent.incident_id}")
    person = webform.find(world.rt, sent.receipt)
    world.advance(hours=1)
    again = webform.write_more(world.rt, person, "it happened again")
    world.settle()
    assert again.opened and again.incident_id != sent.incident_id
    texts = [line.text for line in webform.conversation(world.rt, person).lines]
    assert texts == ["first time", "it happened again"]


def test_rekey_counts_the_receipts_that_still_need_the_old_key(world):
    old = webform.submit(world.rt, "first", None).receipt
    new_key = "n" * 43
    world.rt.vault = vault_on(world.rt.engine, [new_key, *world.settings.secret_keys])
    new = webform.submit(world.rt, "second", None).receipt
    report = rekey(world.rt.engine, world.rt.vault)
    assert report.old_receipts == 1, "the first receipt's hash is under the old key"
    assert webform.find(world.rt, old) and webform.find(world.rt, new)  # both keys listed
    world.rt.vault = vault_on(world.rt.engine, [new_key])
    assert webform.find(world.rt, old) is None and webform.find(world.rt, new)
