"""How personal numbers look wherever a person reads them: `+44•••••789`."""

from __future__ import annotations

import phonenumbers

BULLETS = "•••••"


def mask_number(address: str | None) -> str:
    """`+447700900789` -> `+44•••••789`; a `whatsapp:` prefix is kept; None -> `unknown`."""
    if not address:
        return "unknown"
    prefix, _, number = address.rpartition(":")
    prefix = f"{prefix}:" if prefix else ""
    digits = number.lstrip("+")
    try:
        country = str(phonenumbers.parse(number, None).country_code)
    except phonenumbers.NumberParseException:
        country = ""
    if not country or len(digits) <= len(country) + 3:
        return f"{prefix}{BULLETS}{digits[-2:]}" if len(digits) > 2 else f"{prefix}{BULLETS}"
    return f"{prefix}+{country}{BULLETS}{digits[-3:]}"


def show_number(address: str | None, reveal: bool) -> str:
    """The number as configured: in clear only when `reveal_numbers: true`."""
    if reveal and address:
        return address
    return mask_number(address)
