"""The fake Twilio's IncomingPhoneNumbers (`hotline twilio configure`): list them by number and
update their URLs. `add(number)` puts a number in the account, its URLs empty."""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

_NUMBERS = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers(?:/(?P<sid>PN[0-9a-f]{32}))?\.json$"
)
FIELDS = (
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "voice_fallback_method",
    "status_callback",
    "status_callback_method",
    "sms_url",
    "sms_method",
    "sms_fallback_url",
    "sms_fallback_method",
)


@dataclass
class FakeNumber:
    sid: str
    phone_number: str
    urls: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(FIELDS))
    updates: list[dict[str, str]] = field(default_factory=list)

    def to_json(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "phone_number": self.phone_number,
            "friendly_name": self.phone_number,
            **self.urls,
        }


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


class FakeNumbers:
    def __init__(self, account_sid: str) -> None:
        self.account_sid = account_sid
        self.numbers: dict[str, FakeNumber] = {}
        self._lock = threading.Lock()

    def add(self, phone_number: str) -> FakeNumber:
        number = FakeNumber("PN" + secrets.token_hex(16), phone_number)
        with self._lock:
            self.numbers[number.sid] = number
        return number

    def handles(self, path: str) -> bool:
        return _NUMBERS.match(path) is not None

    def route(self, method: str, path: str, form: dict[str, list[str]]) -> tuple[int, dict]:
        sid = _NUMBERS.match(path)["sid"]
        with self._lock:
            if method == "GET" and sid is None:
                wanted = (form.get("PhoneNumber") or [None])[0]
                items = [
                    n.to_json(self.account_sid)
                    for n in self.numbers.values()
                    if wanted is None or n.phone_number == wanted
                ]
                return 200, {
                    "incoming_phone_numbers": items,
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": 50,
                }
            number = self.numbers.get(sid or "")
            if number is None:
                return 404, {"code": 20404, "message": "not found", "status": 404}
            if method == "POST":
                changed = {}
                for name in FIELDS:
                    if _camel(name) in form:
                        number.urls[name] = changed[name] = form[_camel(name)][0]
                number.updates.append(changed)
            return 200, number.to_json(self.account_sid)
