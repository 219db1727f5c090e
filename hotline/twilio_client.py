"""The one place a Twilio SDK client is built."""

from __future__ import annotations

import logging
import os

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from hotline.settings import DEFAULT_API_BASE_URL, Settings
from routing.notifier import ConsoleNotifier, Notifier, TwilioNotifier

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 10


def make_twilio_client(settings: Settings) -> Client:
    """An SDK client for the configured account, talking to `TWILIO_API_BASE_URL`.

    Only the REST API domain is redirected: edge and region stay unset so that a local base
    URL (a Twilio-compatible provider, or the tests' fake) is used exactly as given.
    """
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT_S),
        # not os.environ: TWILIO_EDGE/TWILIO_REGION would rewrite the host of a local base URL
        environment={"HOTLINE": "1"},
    )
    client.api.base_url = settings.twilio_api_base_url
    if settings.twilio_api_base_url != DEFAULT_API_BASE_URL:
        # a local stand-in (the tests' fake) serves Studio's /v2/Flows too; Twilio's own
        # Studio stays at studio.twilio.com
        client.studio.base_url = settings.twilio_api_base_url
    # the SDK logs every request's form (numbers, texts) at INFO: never let that through
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    return client


# set by `hotline run` for the processes it starts: it announces console mode itself, once
UNDER_RUN = "HOTLINE_UNDER_RUN"


def warn_if_console(settings: Settings) -> None:
    """Say loudly, once per command (not once per process it starts), that nothing is sent."""
    if settings.console_mode and not os.environ.get(UNDER_RUN):
        log.warning(
            "CONSOLE MODE: TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN are not set. Outbound SMS and "
            "calls are written to this log (numbers masked) and NOT sent to anyone."
        )


def make_notifier(settings: Settings) -> Notifier:
    """Twilio when credentials are set, else console mode (`warn_if_console`)."""
    if settings.console_mode:
        return ConsoleNotifier()
    return TwilioNotifier(make_twilio_client(settings))
