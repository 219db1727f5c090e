"""The baseline for the webhook benchmark: a bare Flask endpoint under `hotline serve`'s server.

    python -m bench.bare_app --port PORT [--workers 2]

`POST /twilio/sms` answers a constant empty TwiML response: no signature check, no database,
no Redis. It is served by `hotline.server.serve` itself, with only the WSGI app swapped, so
the server configuration (processes, threads, timeouts) is exactly the product's.
`GET /healthz` answers 200 so the driver knows it is up.
"""

from __future__ import annotations

import argparse

from flask import Flask, Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def create_bare_app() -> Flask:
    app = Flask("bare")

    @app.post("/twilio/sms")
    def sms() -> Response:
        return Response(TWIML, status=200, mimetype="application/xml")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("{}", status=200, mimetype="application/json")

    return app


def main() -> None:
    from hotline import server
    from hotline.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    server.serve(
        load_settings(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        app_factory=create_bare_app,
    )  # same server, bare app


if __name__ == "__main__":
    main()
