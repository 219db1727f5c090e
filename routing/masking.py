"""How personal numbers look wherever a person reads them: `+44*****789`.

The mask is GSM-7 (`*`): a bullet would make every SMS carrying a masked number UCS-2, 70
characters a segment instead of 160, and cut the defender's words from the page.
"""

from __future__ import annotations

import re

import phonenumbers

MASK = "*****"
_LONG_DIGITS = re.compile(r"\d(?:[ .\-()]*\d){5,}")
WEB_FORM = "web form"  # a web conversation has no number; its key is never shown


def mask_number(address: str | None) -> str:
    """`+447700900789` -> `+44*****789`; a `whatsapp:` prefix is kept; None -> `unknown`;
    a web form conversation (`web:…`) -> `web form`."""
    if not address:
        return "unknown"
    if address.startswith("web:"):
        return WEB_FORM
    prefix, _, number = address.rpartition(":")
    prefix = f"{prefix}:" if prefix else ""
    digits = number.lstrip("+")
    try:
        country = str(phonenumbers.parse(number, None).country_code)
    except phonenumbers.NumberParseException:
        country = ""
    if not country or len(digits) <= len(country) + 3:
        return f"{prefix}{MASK}{digits[-2:]}" if len(digits) > 2 else f"{prefix}{MASK}"
    return f"{prefix}+{country}{MASK}{digits[-3:]}"


def show_number(address: str | None, reveal: bool) -> str:
    """The number as configured: in clear only when `reveal_numbers: true`."""
    if reveal and address and not address.startswith("web:"):
        return address
    return mask_number(address)


def mask_numbers_in(text: str) -> str:
    """`text` with every phone number in it masked (`Signal +44 7700 900789` ->
    `Signal +44*****789`): a web form's free "how to reach you" line."""
    out, last = [], 0
    lenient = phonenumbers.Leniency.POSSIBLE
    for match in phonenumbers.PhoneNumberMatcher(text, None, leniency=lenient):
        out.append(text[last : match.start])
        out.append(
            mask_number(
                phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            )
        )
        last = match.end
    out.append(text[last:])
    masked = "".join(out)
    # numbers written without a country code cannot be parsed: hide their digits all the same
    return _LONG_DIGITS.sub(lambda m: MASK + m.group(0)[-2:], masked)
