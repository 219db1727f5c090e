"""`hotline serve`: the webhook receiver under gunicorn (the production WSGI server)."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from hotline.settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict):
        self.settings, self.options = settings, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # noqa: ANN201
        from hotline.app import create_app

        return create_app(self.settings)  # built in each web process, after the fork


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve until stopped. Raises hotline.migrate.SchemaBehind when the database needs
    `hotline db upgrade`, and RotaUnavailable when no rota is valid, both before forking."""
    from hotline.app import build_runtime
    from hotline.migrate import require_current_database

    # fail before forking when the database, its schema or the rota is unusable, and leave
    # no pooled connection for the forked web processes to inherit
    require_current_database(settings.database_url)
    runtime = build_runtime(settings)
    runtime.rota.current()
    runtime.engine.dispose()
    _Gunicorn(settings, {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,  # access logs would carry no numbers, but we keep none
        "loglevel": "warning",
        "proc_name": "hotline-web",
    }).run()
