"""The rota as the hotline uses it, for commands that run beside it (`hotline rota who`,
`hotline report`): the file's, else the newest valid one stored."""

from __future__ import annotations

import sys
from pathlib import Path

import oncall
from hotline.settings import Settings


def live_rota(settings: Settings, shown: str | None = None) -> oncall.Rota:
    """The rota in the file, else (warned) the newest valid one stored, as the hotline does.
    `shown`: the file's name in messages (default: as a coordinator would type it).

    Raises oncall.RotaInvalid when neither exists.
    """
    shown = shown or shown_path(settings.rota_path)
    try:
        source = settings.rota_path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = oncall.Problem(shown, 1, f"cannot read the rota ({exc.strerror})")
        invalid = oncall.RotaInvalid([problem])
    else:
        try:
            return oncall.parse_rota(source, shown, key=settings.rota_key)
        except oncall.RotaInvalid as exc:
            invalid = exc
    stored = _stored(settings, shown)
    if stored is None:
        raise invalid
    rota, sha = stored
    count = len(invalid.problems)
    print(
        f"WARNING {shown} has {count} problem{'s' if count != 1 else ''} "
        f"(run `hotline rota check`); showing the last valid rota, sha256 {sha[:12]}, which "
        "the hotline is using",
        file=sys.stderr,
    )
    return rota


def _stored(settings: Settings, shown: str) -> tuple[oncall.Rota, str] | None:
    import sqlalchemy

    from hotline.crypto import Vault
    from hotline.db import make_engine
    from hotline.rotasource import stored_rota
    from routing.tables import RotaVersion

    engine = make_engine(settings.database_url)
    try:
        # a hotline that never ran has no table: that is "nothing stored", not a traceback
        if not sqlalchemy.inspect(engine).has_table(RotaVersion.__tablename__):
            return None
        found = stored_rota(engine, Vault(settings.secret_keys), shown)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        print(f"hotline: cannot read the stored rota ({exc.__class__.__name__})", file=sys.stderr)
        return None
    finally:
        engine.dispose()
    return None if found is None else (found[0], found[1].sha256)


def shown_path(path: Path) -> str:
    """`path` as a coordinator would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
