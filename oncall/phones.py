"""Phone numbers as the hotline stores them: E.164, read once in one way everywhere.

The rota's staff numbers, the hotline's own numbers in config.yaml and the numbers a person
types into `hotline simulate` all go through `e164`.
"""

from __future__ import annotations

import phonenumbers


def e164(raw: str, region: str | None = None, *, possible: bool = False) -> str | None:
    """`raw` as E.164 (`+353861234567`), or None when it is no number.

    A number without a leading `+` is read in the national format of `region` (ISO 3166
    alpha-2, e.g. `IE`); without a region it is no number. A number must be valid (assigned
    to a line) unless `possible`, which also takes the ranges set aside for fiction and any
    number of a plausible length, as the hotline takes what Twilio sends.
    """
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    usable = phonenumbers.is_possible_number if possible else phonenumbers.is_valid_number
    if not usable(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
