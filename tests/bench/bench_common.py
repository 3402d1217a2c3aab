"""What every benchmark needs around its measurement: a booted kernel on SQLite and, when
asked, on a scratch PostgreSQL database (created and dropped here), the figures printed one
line per engine, and optionally saved as JSON under bench/results/."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Measure = Callable[[dict[str, str]], Awaitable[dict[str, Any]]]


from core.scratch import drop_database  # noqa: E402
from core.scratch import scratch_postgres as postgres_env  # noqa: E402


async def on_engines(measure: Measure, postgres_url: str = "", sqlite: bool = True
                     ) -> dict[str, dict[str, Any]]:
    """Run `measure(settings env)` on SQLite (unless told not to), then on PostgreSQL if a
    URL is given."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if sqlite:
            results["sqlite"] = await measure({"XINDAI_DATA_DIR": tmp})
        if postgres_url:
            env, name = await postgres_env(postgres_url)
            try:
                results["postgres"] = await measure({"XINDAI_DATA_DIR": tmp, **env})
            finally:
                await drop_database(postgres_url, name)
    return results


def report(name: str, results: dict[str, dict[str, Any]], save: bool = False,
           **context: Any) -> Path | None:
    """Print one line per engine; with `save`, also write bench/results/<name>_<time>.json."""
    for engine, figures in results.items():
        print(f"{engine:9} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    if not save:
        return None
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}_{time.strftime('%Y%m%d_%H%M%S')}.json"
    path.write_text(json.dumps({**context, **results}, indent=2))
    print(f"saved {path}")
    return path
