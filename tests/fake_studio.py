"""The fake Twilio's Studio Flows API (`/v2/Flows`), as `client.studio.v2.flows` uses it: create,
update, fetch and list flows, each keeping its definition and every revision. `failing`:
answer every request with a 503, as Twilio does in an outage of its own."""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_FLOW = re.compile(r"^/v2/Flows(?:/(?P<sid>FW[0-9a-f]{32}))?$")


@dataclass
class FakeFlow:
    sid: str
    friendly_name: str
    status: str
    definition: dict[str, Any]
    revisions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, account_sid: str) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "friendly_name": self.friendly_name,
            "definition": self.definition,
            "status": self.status,
            "revision": len(self.revisions),
            "commit_message": None,
            "valid": True,
            "errors": [],
            "warnings": [],
            "date_created": now,
            "date_updated": now,
            "webhook_url": f"https://webhooks.twilio.com/v1/Accounts/{account_sid}/Flows/{self.sid}",
            "url": f"https://studio.twilio.com/v2/Flows/{self.sid}",
            "links": {},
        }


class FakeStudio:
    def __init__(self, account_sid: str) -> None:
        self.account_sid = account_sid
        self.flows: dict[str, FakeFlow] = {}
        self.failing = False
        self._lock = threading.Lock()

    def handles(self, path: str) -> bool:
        return _FLOW.match(path) is not None

    def route(self, method: str, path: str, form: dict[str, list[str]]) -> tuple[int, dict]:
        if self.failing:
            return 503, {"code": 20503, "message": "Service unavailable", "status": 503}
        sid = _FLOW.match(path)["sid"]
        with self._lock:
            if method == "POST" and sid is None:
                flow = FakeFlow(
                    sid="FW" + secrets.token_hex(16),
                    friendly_name=form["FriendlyName"][0],
                    status=form["Status"][0],
                    definition={},
                )
                self.flows[flow.sid] = flow
                return self._revise(flow, form)
            flow = self.flows.get(sid or "")
            if sid is not None and flow is None:
                return 404, {"code": 20404, "message": "not found", "status": 404}
            if method == "POST":
                return self._revise(flow, form)
            if method == "GET" and sid is None:
                items = [f.to_json(self.account_sid) for f in self.flows.values()]
                return 200, {
                    "flows": items,
                    "meta": {"page": 0, "page_size": 50, "next_page_url": None},
                }
            return 200, flow.to_json(self.account_sid)

    def _revise(self, flow: FakeFlow, form: dict[str, list[str]]) -> tuple[int, dict]:
        if "Definition" in form:
            flow.definition = json.loads(form["Definition"][0])
        if "Status" in form:
            flow.status = form["Status"][0]
        flow.revisions.append(flow.definition)
        return 200, flow.to_json(self.account_sid)

    def only(self) -> FakeFlow:
        """The one flow published (AssertionError if not exactly one)."""
        with self._lock:
            [flow] = self.flows.values()
            return flow
