"""Talking HTTP to the staff console as a browser would, with a software passkey (softkey).

`Visitor` keeps its one session cookie itself: the cookie is `__Host-` and Secure, which a
cookie jar would not send over the tests' plain http://localhost.
"""

from __future__ import annotations

import html
import http.client
import re
import urllib.parse
from dataclasses import dataclass, field

from softkey import SoftKey

from routing import access

COOKIE = "__Host-hotline-console"
CONSOLE_ROTA_EXTRA = "coordinators: [fiona]\n"


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)

    def hidden(self, name: str) -> str:
        found = re.search(rf'name="{name}" value="([^"]*)"', self.body)
        assert found, f"no {name} field on the page ({self.status}): {self.body[:300]}"
        return html.unescape(found.group(1))

    def options(self) -> dict:
        import json

        found = re.search(r'data-options="([^"]*)"', self.body)
        assert found, f"no passkey options on the page ({self.status})"
        return json.loads(html.unescape(found.group(1)))


class Visitor:
    """One browser: GET and POST to the console, its session cookie kept."""

    def __init__(self, hotline, key: SoftKey | None = None):  # noqa: ANN001
        self.hotline = hotline
        self.key = key or SoftKey(hotline.console_url)
        self.token: str | None = None

    def request(self, method: str, path: str, fields: dict | None = None, **headers: str) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.hotline.port, timeout=20)
        sent = {"Host": f"localhost:{self.hotline.port}", **headers}
        if self.token:
            sent["Cookie"] = f"{COOKIE}={self.token}"
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        answer = Answer(
            response.status,
            response.read().decode(),
            {k: v for k, v in response.getheaders()},
            [v for k, v in response.getheaders() if k.lower() == "set-cookie"],
        )
        connection.close()
        for cookie in answer.cookies:
            name, _, rest = cookie.partition("=")
            if name == COOKIE:
                self.token = rest.split(";", 1)[0] or None
        return answer

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, **headers)

    def post(
        self, path: str, fields: dict | None = None, *, csrf: bool = True, **headers: str
    ) -> Answer:
        fields = dict(fields or {})
        if csrf and "csrf" not in fields:
            fields["csrf"] = self.csrf()
        return self.request("POST", path, fields, **headers)

    def csrf(self) -> str:
        return self.get("/console").hidden("csrf")

    def enrol(self, token: str) -> Answer:
        page = self.get(f"/console/enrol/{token}")
        assert page.status == 200, page.body
        return self.post(
            f"/console/enrol/{token}",
            {"challenge": page.hidden("challenge"), "credential": self.key.create(page.options())},
            csrf=False,
        )

    def sign_in(self) -> Answer:
        page = self.get("/console/signin")
        return self.post(
            "/console/signin",
            {"challenge": page.hidden("challenge"), "credential": self.key.get(page.options())},
            csrf=False,
        )

    def verify(self, back: str = "/console") -> Answer:
        page = self.get(f"/console/verify?next={urllib.parse.quote(back)}")
        return self.post(
            "/console/verify",
            {
                "challenge": page.hidden("challenge"),
                "credential": self.key.get(page.options()),
                "next": back,
            },
        )


def enrolled(hotline, staff_id: str) -> Visitor:  # noqa: ANN001
    """A visitor signed in as `staff_id`, enrolled through an invite as staff would be."""
    visitor = Visitor(hotline)
    answer = visitor.enrol(access.invite(hotline.rt, staff_id))
    assert answer.status == 303, answer.body
    return visitor
