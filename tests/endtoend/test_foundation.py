"""The foundation: settings, signatures, health, storage, console mode."""

from __future__ import annotations

import pytest
from harness import SECRET

from hotline.settings import SettingsError, load_settings


def test_signed_sms_is_accepted_and_stored(hotline):
    response = hotline.sms("+447700900123", "help")
    assert response.status == 200
    assert "<Response" in response.body
    assert len(hotline.messages(direction="in")) == 1


def test_unsigned_request_gets_403_and_changes_nothing(hotline):
    params = {"MessageSid": "SM1", "From": "+447700900123", "Body": "hi"}
    assert hotline.post("/twilio/sms", params, signed=False).status == 403
    assert hotline.post("/twilio/sms", params, signature="bm90LXZhbGlk").status == 403
    assert hotline.post("/twilio/sms", params, token="another-token").status == 403
    assert hotline.messages() == []


def test_signature_covers_the_query_string(hotline):
    from twilio.request_validator import RequestValidator

    params = {"MessageSid": "SM2", "From": "+447700900123", "Body": "hi"}
    signed_for = RequestValidator(hotline.fake.auth_token).compute_signature(
        hotline.base_url + "/twilio/sms", params
    )
    import urllib.error
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(
        hotline.base_url + "/twilio/sms?x=1",
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signed_for},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 403


def test_malformed_webhook_gets_400_and_stores_nothing(hotline):
    assert hotline.post("/twilio/sms", {"Body": "no sid, no sender"}).status == 400
    assert hotline.messages() == []


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_healthz_reports_each_part(hotline, worker):
    import json
    import urllib.request

    with urllib.request.urlopen(hotline.base_url + "/healthz") as resp:
        body = json.loads(resp.read())
        assert resp.status == 200
    assert body == {
        "ok": True,
        "checks": {"database": "ok", "redis": "ok", "rota": "ok", "worker": "ok"},
    }


def test_healthz_is_503_without_a_worker(hotline):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(hotline.base_url + "/healthz")
    assert err.value.code == 503


def _config(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "rota.yaml").write_text("{}")
    return {
        "HOTLINE_CONFIG": str(tmp_path / "config.yaml"),
        "HOTLINE_INSTANCE_DIR": str(tmp_path / "instance"),
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ('hotline: {number: "+35312100489"}\nrota_fil: rota.yaml\n', "did you mean 'rota_file'"),
        ('hotline: {number: "12"}\nrota_file: rota.yaml\n', "hotline.number: '12' is not a valid"),
        (
            'hotline: {number: "+35312100489", languages: english}\nrota_file: r.yaml\n',
            "hotline.languages",
        ),
        (
            'hotline: {number: "+35312100489", auto_reply: maybe}\nrota_file: r.yaml\n',
            "hotline.auto_reply: expected true or false",
        ),
        ('hotline: {number: "+35312100489"}\n', "no rota"),
        (
            'hotline: {number: "+35312100489"}\nretention_days: -1\nrota_file: r.yaml\n',
            "retention_days",
        ),
        ("hotline: [\n", "not valid YAML"),
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(SettingsError) as err:
        load_settings(_config(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_live_mode_requires_a_secret_key(tmp_path):
    env = _config(tmp_path, 'hotline: {number: "+35312100489"}\nrota_file: rota.yaml\n')
    env.update(
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_AUTH_TOKEN="t",
        HOTLINE_PUBLIC_URL="https://hotline.example.org",
    )
    with pytest.raises(SettingsError, match="HOTLINE_SECRET_KEY"):
        load_settings(env)
    env["HOTLINE_SECRET_KEY"] = SECRET
    assert not load_settings(env).console_mode


def test_console_mode_makes_and_keeps_a_private_key(tmp_path):
    env = _config(tmp_path, 'hotline: {number: "+35312100489"}\nrota_file: rota.yaml\n')
    first = load_settings(env)
    assert first.console_mode
    key_file = tmp_path / "instance" / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_settings(env).secret_keys == first.secret_keys
