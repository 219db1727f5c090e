"""A browser-less client for `/help`, as a plain HTTP client sends it: from a chosen local
address, with chosen headers, so tests can look for those values afterwards."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from dataclasses import dataclass, field

TOKEN = re.compile(r'name="token" value="([^"]+)"')
RECEIPT = re.compile(r'class="receipt"[^>]*>([0-9 ]{19})<')


@dataclass
class Page:
    status: int
    body: str
    headers: dict[str, str]
    cookies: list[str] = field(default_factory=list)

    def token(self) -> str:
        match = TOKEN.search(self.body)
        assert match, f"no form token in:\n{self.body[:500]}"
        return match.group(1)

    def receipt(self) -> str:
        match = RECEIPT.search(self.body)
        assert match, f"no receipt in:\n{self.body[:800]}"
        return match.group(1)


class WebClient:
    def __init__(
        self, base_url: str, *, source: str = "127.0.0.1", headers: dict[str, str] | None = None
    ):
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.source = parsed.hostname, parsed.port, source
        self.headers = headers or {}

    def request(
        self,
        method: str,
        path: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=30, source_address=(self.source, 0)
        )
        body = urllib.parse.urlencode(fields).encode() if fields is not None else None
        sent = {**self.headers, **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode()
            return Page(
                response.status,
                text,
                dict(response.getheaders()),
                response.headers.get_all("Set-Cookie") or [],
            )
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Page:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, str], **headers: str) -> Page:
        return self.request("POST", path, fields, headers=headers)

    def send(self, message: str, contact: str = "", lang: str = "en") -> Page:
        """What a browser does: fetch the form, then post it with its token."""
        token = self.get(f"/help?lang={lang}").token()
        return self.post(
            "/help", {"token": token, "lang": lang, "message": message, "contact": contact}
        )
