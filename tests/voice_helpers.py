"""Walking call flows as Twilio does: post signed forms to the URLs the TwiML names, and read
the TwiML answers as XML (never as strings)."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import oncall

DEFENDER = "+447700900123"


def new_sid(prefix: str = "CA") -> str:
    return prefix + secrets.token_hex(16)


def twiml(response) -> ET.Element:  # noqa: ANN001
    assert response.status == 200, (response.status, response.body)
    assert "xml" in response.content_type
    root = ET.fromstring(response.body)
    assert root.tag == "Response"
    return root


def post_to(hotline, url: str, params: dict) -> ET.Element:  # noqa: ANN001
    """POST to a URL the hotline put in its TwiML (absolute under the public URL)."""
    assert url.startswith(hotline.base_url + "/twilio/"), url
    return twiml(hotline.post(url[len(hotline.base_url) :], params))


def call_params(hotline, sid: str, sender: str = DEFENDER, **extra: str) -> dict:  # noqa: ANN001
    params = {
        "CallSid": sid,
        "AccountSid": hotline.fake.account_sid,
        "From": sender,
        "To": hotline.settings.number,
        "Called": hotline.settings.number,
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }
    params.update(extra)
    return params


def incoming_call(hotline, sid: str, sender: str = DEFENDER) -> ET.Element:  # noqa: ANN001
    return twiml(
        hotline.post("/twilio/voice", call_params(hotline, sid, sender, CallStatus="ringing"))
    )


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def levels(hotline, language: str | None = None) -> list[list[str]]:  # noqa: ANN001
    rota = hotline.rt.rota.current()
    return [
        [s.phone for s in level.staff]
        for level in oncall.who_is_on_call(rota, datetime.now(UTC), language)
    ]


def staff_id(hotline, phone: str) -> str:  # noqa: ANN001
    return hotline.rt.rota.current().staff_by_phone(phone).id


def dial_of(root: ET.Element) -> ET.Element:
    dials = root.findall("Dial")
    assert len(dials) == 1, ET.tostring(root)
    return dials[0]
