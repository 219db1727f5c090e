"""What a page carries: the defender's words, as many as one SMS segment holds.

Everything the hotline adds to an SMS (the masked number, the cut mark) is GSM-7, so a page
is UCS-2 (70 characters a segment instead of 160) only when the defender's own words are. A web
form's contact line never travels in a page; words that one segment would cut to almost
nothing take a second. Segments are counted by the fake Twilio's own reading of GSM 03.38
(tests/fake_twilio.py), not the product's.
"""

from __future__ import annotations

import pytest
from fake_twilio import sms_segments

from routing import webform

DEFENDER = "+447700900123"
LONG = (
    "Police at my door, please call my lawyer now. They have taken Marguerite and the "
    "laptops from the Kestrel office and are moving us to the station"
)
ARABIC = "الشرطة عند بابي، أخذوا حاسوبي وهاتفي، أرجوكم اتصلوا بمحاميتي فورًا"


def quoted(page: str) -> str:
    """The defender's words as a page quotes them."""
    return page.split('"')[1]


def test_a_page_in_gsm7_carries_up_to_160_characters(world):
    world.text(DEFENDER, LONG)
    [page] = world.sms_to("amina")
    assert page.startswith("#1 SMS +44*****123:") and sms_segments(page) == 1
    assert len(quoted(page)) >= 100 and quoted(page).endswith("...")
    assert LONG.startswith(quoted(page).removesuffix("..."))
    assert "…" not in page and "•" not in page


def test_words_one_segment_would_cut_to_nothing_take_a_second(world):
    world.text(f"whatsapp:{DEFENDER}", ARABIC)
    [page] = world.sms_to("amina")
    assert page.startswith("#1 WhatsApp whatsapp:+44*****123:")
    assert quoted(page) == ARABIC and sms_segments(page) == 2


def test_short_words_in_another_script_stay_in_one_segment(world):
    world.text(DEFENDER, "الشرطة عند بابي")
    [page] = world.sms_to("amina")
    assert quoted(page) == "الشرطة عند بابي" and sms_segments(page) == 1


@pytest.mark.parametrize(
    "contact",
    [
        "Signal: ask for Maria after 6pm",
        "<b>Signal</b> +44 7700 900789 after six in the evening, never mornings",
        "سيغنال: اسأل عن ماريا بعد السادسة مساءً",
    ],
)
def test_a_web_page_carries_the_words_and_never_the_contact_line(world, contact):
    words = "They raided our office and took the computers"
    webform.submit(world.rt, words, contact)
    world.settle()
    [page] = world.sms_to("amina")
    assert page == f'#1 Web: "{words}" ACK 1 | R1 text | PASS 1'
    assert sms_segments(page) == 1


def test_digests_and_lists_cut_with_dots(world):
    for n in range(1, 8):
        world.text(
            f"+4477009{n:05d}", f"raid on the office number {n}, " + "they took everything " * 3
        )
    answer = world.text("+353861234567", "STATUS NEW")
    world.advance(seconds=11)  # the surge digest leaves
    world.settle()
    [digest] = [t for t in world.sms_to("amina") if t.startswith("Hotline surge")]
    assert "..." in digest and "…" not in digest
    assert answer and "..." in answer and "…" not in answer
