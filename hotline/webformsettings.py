"""The `web_form:` section of config.yaml: the secure web form (off unless enabled).

```yaml
web_form:
  enabled: true
  submit_limit: 30/minute      # new conversations, all senders together
  lookup_limit: 120/minute     # receipt look-ups (and messages written on them), all together
  receipt_limit: 10/minute     # look-ups of any one receipt
```
Limits are counted for everyone together, never per IP address: defenders share Tor exits,
and the hotline keeps no addresses. A bad value stops start-up with one line (SettingsError).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KEYS = ("enabled", "submit_limit", "lookup_limit", "receipt_limit")


@dataclass(frozen=True)
class WebFormSettings:
    enabled: bool = False
    submit_limit: str = "30/minute"
    lookup_limit: str = "120/minute"
    receipt_limit: str = "10/minute"


def parse_web_form(value: Any, name: str) -> WebFormSettings:
    """`web_form:` as configured (None: the defaults, off). Raises SettingsError."""
    from limits import parse

    from hotline.settings import SettingsError, _bool, _reject_unknown

    if value is None:
        return WebFormSettings()
    if not isinstance(value, dict):
        raise SettingsError(
            f"{name}: web_form: expected a mapping, e.g. 'web_form: {{enabled: true}}}}'"
        )
    _reject_unknown(value, KEYS, name, "web_form.")
    limits = {}
    for key in KEYS[1:]:
        raw = value.get(key, getattr(WebFormSettings, key))
        try:
            parse(str(raw))
        except ValueError:
            raise SettingsError(
                f"{name}: web_form.{key}: {raw!r} is not a rate; write it like "
                "'30/minute' or '500/hour'"
            ) from None
        limits[key] = str(raw)
    return WebFormSettings(
        enabled=_bool(value.get("enabled", False), name, "web_form.enabled"), **limits
    )
