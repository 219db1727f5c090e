"""The web form under abuse: junk spends no one's budget, a token pays for one submission, a
post from another site is refused, and nothing a client sends makes a 500."""

from __future__ import annotations

import secrets
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from web_helpers import WebClient

LANGUAGES = ("en", "fr", "ar")
ON = {"enabled": True}  # the default budgets
JUNK_TOKENS = ("", "1796646177", "1796646177.é", "².abc", "١٧٩٦٦٤٦١٧٧.é", "9" * 13 + ".x")

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database


@pytest.fixture
def site(make_hotline):
    return make_hotline(languages=LANGUAGES, web_form=ON)


def client(hotline, **kwargs) -> WebClient:
    return WebClient(hotline.base_url, **kwargs)


def test_junk_and_wrong_receipts_spend_no_one_s_budget(site):
    web = client(site)
    for n in range(40):  # no token, forged ones, non-ASCII digits: refused, counted nowhere
        junk = {"token": JUNK_TOKENS[n % len(JUNK_TOKENS)], "message": f"junk {n}"}
        assert web.post("/help", junk).status == 400
    for _ in range(150):  # each a different wrong receipt
        wrong = "".join(secrets.choice(string.digits) for _ in range(16))
        assert web.post("/help/receipt", {"receipt": wrong}).status == 404
    sent = web.send("they are at the door")
    assert sent.status == 200, "the next defender is not locked out"
    assert web.post("/help/receipt", {"receipt": sent.receipt()}).status == 200
    assert len(site.incidents()) == 1


def test_a_receipt_typed_in_other_digits_opens_the_same_page(site):
    web = client(site)
    receipt = web.send("help").receipt()
    for zero in ("٠", "۰", "０"):  # Arabic-Indic, Persian, full-width
        typed = "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in receipt)
        assert web.post("/help/receipt", {"receipt": typed}).status == 200, zero


def test_a_token_pays_for_one_submission(site):
    web = client(site)
    token = web.get("/help").token()
    first = web.post("/help", {"token": token, "message": "help"})
    again = web.post("/help", {"token": token, "message": "help"})  # a double click
    assert first.status == 200 and first.receipt()
    assert again.status == 200 and "already sent" in again.body
    assert 'class="receipt"' not in again.body
    assert len(site.incidents()) == 1, "the second post opened nothing"
    assert web.send("and a new form opens a new one").status == 200
    assert len(site.incidents()) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://127.0.0.1:1"},  # this machine, another port: another site
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_post_from_another_site_is_refused_and_stores_nothing(site, headers):
    web = client(site)
    token = web.get("/help").token()
    refused = web.post("/help", {"token": token, "message": "help"}, **headers)
    assert refused.status == 403
    receipt = web.send("a real one").receipt()
    looked = web.post("/help/receipt", {"receipt": receipt, "message": "more"}, **headers)
    assert looked.status == 403
    assert len(site.incidents()) == 1 and len(site.messages(direction="in")) == 1
    # the refused post spent nothing: its token still pays for its one submission
    assert web.post("/help", {"token": token, "message": "help"}).status == 200


def test_origin_null_and_this_site_s_own_origin_are_accepted(site):
    web = client(site)
    for origin in ("null", site.base_url):
        page = web.post(
            "/help",
            {"token": web.get("/help").token(), "message": f"from {origin}"},
            Origin=origin,
            **{"Sec-Fetch-Site": "same-origin"},
        )
        assert page.status == 200, origin
    assert len(site.incidents()) == 2


def test_a_real_flood_meets_the_ceiling_and_the_fallback_is_told_once(make_hotline, fake_twilio):
    site = make_hotline(languages=LANGUAGES, web_form={"enabled": True, "submit_limit": "2/minute"})
    web = client(site)
    statuses = [web.send(f"flood {n}").status for n in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    alerts = site.messages(direction="out", purpose="alert")
    assert len(alerts) == 1, "told once"
    assert "web form FLOOD" in site.unseal(alerts[0], "body")
    assert [e.kind for e in site.events() if e.kind == "web_flood"] == ["web_flood"]


@pytest.mark.parametrize("path", ["/rota/%C3%A9.ics", "/rota/%ff%fe.ics", "/rota/%F0%9F%92%A9.ics"])
def test_a_feed_token_of_any_characters_is_a_404_not_a_traceback(make_hotline, path, caplog):
    site = make_hotline(config="rota_feeds: true\n")
    assert client(site).get(path).status == 404
    assert "Traceback" not in caplog.text  # it logged the feed's path, token and all


@pytest.mark.slow
def test_generated_form_posts_never_get_a_5xx(site, caplog):
    web = client(site)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        token=st.text(max_size=40)
        | st.builds(
            lambda digits, mac: f"{digits}.{mac}",
            st.text(alphabet="0123456789²³١٧٩٦٤٠٫０９", min_size=1, max_size=14),
            st.text(max_size=20),
        ),
        receipt=st.text(max_size=30),
        message=st.text(max_size=50),
    )
    @example(token="1796646177.é", receipt="", message="x")
    @example(token="².abc", receipt="", message="x")
    @example(token="١٧٩٦٦٤٦١٧٧.é", receipt="١٢٣٤ ٥٦٧٨ ٩٠١٢ ٣٤٥٦", message="x")
    def post(token: str, receipt: str, message: str) -> None:
        assert web.post("/help", {"token": token, "message": message}).status < 500
        assert web.post("/help/receipt", {"receipt": receipt}).status < 500

    post()
    assert "Traceback" not in caplog.text


def test_another_language_on_the_receipt_page_keeps_the_receipt_on_screen(site):
    web = client(site)
    shown = web.send("help", lang="en")
    receipt = shown.receipt()
    assert 'href="/help?lang=fr"' not in shown.body, "a link there would leave the receipt behind"
    again = web.post("/help/receipt", {"receipt": receipt, "show": "receipt", "lang": "fr"})
    assert again.status == 200 and again.receipt() == receipt
    assert 'lang="fr"' in again.body
    assert len(site.incidents()) == 1 and len(site.messages(direction="in")) == 1


def test_the_receipt_limiter_keys_redis_under_a_key_of_its_own(site):
    web = client(site)
    receipt = web.send("they are at the door").receipt()
    assert web.post("/help/receipt", {"receipt": receipt}).status == 200
    digits, vault = receipt.replace(" ", ""), site.rt.vault
    keys = b" ".join(site.rt.queue.connection.keys("*"))
    assert vault.limit_hash(digits).encode() in keys, "the receipt's own budget is counted"
    for matchable in (digits, *vault.lookup_hashes(digits), *vault.slow_hashes(digits)):
        assert matchable.encode() not in keys
