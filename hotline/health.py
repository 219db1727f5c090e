"""`hotline health`: the full health report (routing.health) for an operator's terminal."""

from __future__ import annotations

import json
from typing import Any

from routing.display import clean_text
from routing.health import health_report


def format_report(report: dict[str, Any]) -> str:
    """The report as lines for a terminal (operators only: it may quote the rota)."""
    lines = [f"hotline health: {'OK' if report['ok'] else 'NOT OK'}"]
    for name, check in report["checks"].items():
        details = {k: v for k, v in check.items() if k not in ("state", "errors")}
        extra = ", ".join(f"{k} {v}" for k, v in details.items() if v is not None)
        lines.append(f"  {name:<9} {check['state']:<8} {extra}".rstrip())
        for error in check.get("errors", []):
            lines.append(f"    {clean_text(error, one_line=True)}")
    return "\n".join(lines)


def run_health(settings, *, as_json: bool) -> int:  # noqa: ANN001
    """`hotline health`: print the full report; 0 when healthy, 1 when not."""
    from hotline.app import build_runtime

    runtime = build_runtime(settings)
    try:
        report = health_report(runtime)
    finally:
        runtime.engine.dispose()
    print(json.dumps(report, indent=2, ensure_ascii=False) if as_json else format_report(report))
    return 0 if report["ok"] else 1
