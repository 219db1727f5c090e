"""An example rota like the repository's rota.yaml, shared by the oncall unit tests (their line
numbers refer to it)."""

from __future__ import annotations

EXAMPLE = """\
timezone: Europe/Dublin
default_region: IE
staff:
  amina: {name: Amina K., phone: "+353 86 123 4567", languages: [en, ar], notify: [sms, call]}
  ben: {name: Ben O., phone: "086 765 4321", languages: [en, fr]}
  chen: {name: Chen L., phone: "+353 87 111 2222", languages: [zh, en]}
  dana: {name: Dana M., phone: "+353 87 333 4444", languages: [es]}
  eli: {name: Eli R., phone: "+353 87 555 6666", languages: [he, ar]}
  fiona: {name: Fiona T., phone: "+353 87 777 8888"}
  george: {name: George P., phone: "+44 7911 123456", languages: [en]}
rotations:
  primary: {members: [amina, ben, chen], shift: 1w, handoff: "2026-11-02 09:00"}
  backup: {members: [dana, eli], shift: 1d, handoff: "2026-11-02 09:00"}
overrides:
  - {rotation: primary, staff: dana, from: "2026-12-24 18:00", to: "2026-12-27 09:00", note: swap}
escalation:
  - {notify: primary, wait: 5m}
  - {notify: backup, wait: 10m}
  - {notify: [fiona], wait: 15m}
repeat: 2
fallback: [fiona, george]
"""
