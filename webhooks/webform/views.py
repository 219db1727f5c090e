"""`GET /help`, `POST /help`, `POST /help/receipt`: parse, check, call routing.webform, render.

Checks come cheapest first and before anything is stored or counted: a post declaring another
site (403), the form's token, the message's length. Junk that fails them spends no one's
budget, so it can never lock out the next defender. Then a good token pays for exactly one
submission, and only then is the line's ceiling for everyone counted (a real flood, which
also tells the fallback contacts once). A receipt's guesses are counted per receipt first.
A refused form comes back with the reason and what was written, so nothing typed is lost;
nothing of it is kept.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, request
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


def _from_another_site() -> bool:
    """True for a post that declares another site: `Sec-Fetch-Site: cross-site`, or an
    `Origin` naming another host than this one (or the public URL's). `Origin: null`, what
    browsers send under `Referrer-Policy: no-referrer`, declares no site."""
    if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        return True
    origin = request.headers.get("Origin", "").strip()
    if not origin or origin == "null":
        return False
    public = _rt().settings.public_url
    ours = {request.host.lower()} | ({urlsplit(public).netloc.lower()} if public else set())
    try:
        return urlsplit(origin).netloc.lower() not in ours
    except ValueError:
        return True


def _refused_cross_site() -> Response:
    return Response("refused: this form was posted from another site\n", 403, mimetype="text/plain")


@bp.post("")
def submit():  # noqa: ANN201
    rt = _rt()
    if _from_another_site():
        return _refused_cross_site()
    message = request.form.get("message", "")
    contact = request.form.get("contact", "").strip()
    token = request.form.get("token") or ""
    why = tokens.problem(rt, token)
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
    if tokens.first_use(rt, token) is False:
        # sent twice (a double click, a reload): the first is in, nothing new is opened
        return _form(
            200,
            _(
                "This form was already sent: your message reached the hotline. Its receipt "
                "was shown then. To write again, send this new form."
            ),
        )
    if not _allowed(rt.settings.web_form.submit_limit, "submit"):
        tokens.give_back(rt, token)  # turned away: the same form may be sent again
        webform.ceiling_reached(rt, "submissions")
        return _too_many()
    sent = webform.submit(rt, message.strip(), contact or None)
    return _page("receipt.html", receipt=sent.receipt)


@bp.post("/receipt")
def receipt():  # noqa: ANN201
    rt = _rt()
    if _from_another_site():
        return _refused_cross_site()
    settings = rt.settings.web_form
    typed = request.form.get("receipt", "")
    message = request.form.get("message")
    # the per-receipt count is kept under a keyed hash of its own key: Redis never holds a
    # receipt, nor anything the database's lookup hashes could be matched with
    per_receipt = rt.vault.limit_hash(webform.normalise(typed))
    # this receipt's guesses first: guessing one receipt spends only that receipt's budget
    if not _allowed(settings.receipt_limit, "receipt", per_receipt):
        return _too_many()
    if not _allowed(settings.lookup_limit, "lookup"):
        webform.ceiling_reached(rt, "receipt look-ups")
        return _too_many()
    person = webform.find(rt, typed)
    if person is None:
        # one answer for every receipt that opens nothing: malformed, mistyped, erased
        return _page("unknown.html", 404)
    if request.form.get("show") == "receipt":  # the receipt page, in another language
        return _page("receipt.html", receipt=typed.strip())
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
