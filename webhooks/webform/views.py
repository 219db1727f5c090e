"""`GET /help`, `POST /help`, `POST /help/receipt`: parse, check, call routing.webform, render.

Checks come cheapest first and before anything is stored: the rate limit, the form's token,
the message's length. A refused form comes back with the reason and what was written, so
nothing typed is lost; nothing of it is kept.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from limits import parse

from routing import webform
from webhooks.webform import tokens
from webhooks.webform.languages import choose, direction, switcher

log = logging.getLogger(__name__)
bp = Blueprint(
    "webform",
    __name__,
    url_prefix="/help",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
# characters (README.md, "The secure web form"): a page, a relay and the log stay readable
MAX_MESSAGE = 5000
MAX_CONTACT = 200


def _rt():  # noqa: ANN202
    return current_app.extensions["hotline"]


def _page(template: str, status: int = 200, **context: object) -> tuple[str, int]:
    language = choose()
    return render_template(
        f"webform/{template}",
        lang=language,
        dir=direction(language),
        languages=switcher(),
        max_message=MAX_MESSAGE,
        max_contact=MAX_CONTACT,
        **context,
    ), status


def _form(
    status: int = 200, error: str | None = None, message: str = "", contact: str = ""
) -> tuple[str, int]:
    return _page(
        "form.html",
        status,
        token=tokens.issue(_rt()),
        error=error,
        message=message,
        contact=contact,
    )


def _allowed(limit: str, *keys: str) -> bool:
    """Count one hit against `limit` for everyone together (never per client: defenders share
    Tor exits). A Redis outage lets the request through: a defender is never turned away
    because a counter is down."""
    limiter = current_app.extensions["hotline_web_limiter"]
    try:
        return limiter.limiter.hit(parse(limit), "hotline-web", *keys)
    except Exception:
        log.warning("web form rate limit unavailable (Redis?); request let through")
        return True


def _too_many() -> tuple[str, int]:
    return _page("limited.html", 429)


@bp.get("")
def form():  # noqa: ANN201
    return _form()


@bp.post("")
def submit():  # noqa: ANN201
    rt = _rt()
    message = request.form.get("message", "")
    contact = request.form.get("contact", "").strip()
    if not _allowed(rt.settings.web_form.submit_limit, "submit"):
        return _too_many()
    why = tokens.problem(rt, request.form.get("token"))
    if why == "expired":
        return _form(
            400,
            _(
                "This form was open too long and has expired. Your message is "
                "still below: send it again."
            ),
            message,
            contact,
        )
    if why is not None:
        return _form(
            400,
            _("This form could not be checked. Your message is still below: send it again."),
            message,
            contact,
        )
    error = _message_problem(message)
    if error is None and len(contact) > MAX_CONTACT:
        error = _("The line on how to reach you holds at most %(max)d characters.", max=MAX_CONTACT)
    if error is not None:
        return _form(400, error, message, contact)
    sent = webform.submit(rt, message.strip(), contact or None)
    return _page("receipt.html", receipt=sent.receipt)


@bp.post("/receipt")
def receipt():  # noqa: ANN201
    rt = _rt()
    settings = rt.settings.web_form
    typed = request.form.get("receipt", "")
    message = request.form.get("message")
    # the per-receipt count is kept under a keyed hash: Redis never holds a receipt either
    per_receipt = rt.vault.lookup_hash("web-receipt-limit:" + webform.normalise(typed))
    if not (
        _allowed(settings.lookup_limit, "lookup")
        and _allowed(settings.receipt_limit, "receipt", per_receipt)
    ):
        return _too_many()
    person = webform.find(rt, typed)
    if person is None:
        # one answer for every receipt that opens nothing: malformed, mistyped, erased
        return _page("unknown.html", 404)
    notice, error = None, None
    if message is not None and message.strip():
        error = _message_problem(message)
        if error is None:
            webform.write_more(rt, person, message.strip())
            notice, message = _("Your message reached the hotline."), ""
    conversation = webform.conversation(rt, person)
    return _page(
        "conversation.html",
        400 if error else 200,
        receipt=typed.strip(),
        lines=conversation.lines,
        error=error,
        notice=notice,
        message=message or "",
        answered=any(line.from_hotline for line in conversation.lines),
    )


def _message_problem(message: str) -> str | None:
    if not message.strip():
        return _("Please write your message: it is empty.")
    if len(message) > MAX_MESSAGE:
        return _(
            "Your message has %(count)d characters; at most %(max)d fit. Shorten it, or "
            "send the first part now and the rest after it.",
            count=len(message),
            max=MAX_MESSAGE,
        )
    return None
