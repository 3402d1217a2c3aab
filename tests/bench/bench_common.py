"""What every benchmark needs around its measurement: a booted kernel on SQLite and, when
asked, on a scratch PostgreSQL database (created and dropped here), the figures printed one
line per engine, and optionally saved as JSON under bench/results/."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Measure = Callable[[dict[str, str]], Awaitable[dict[str, Any]]]


async def postgres_env(admin_url: str) -> tuple[dict[str, str], str]:
    """A scratch database owned by a non-superuser owner role, used through an app role."""
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    name = f"xindai_bench_{uuid.uuid4().hex[:8]}"
    for role in ("xindai_test_owner", "xindai_test_app"):
        try:
            await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        except asyncpg.DuplicateObjectError:
            pass
    await conn.execute(f"CREATE DATABASE {name} OWNER xindai_test_owner")
    await conn.close()
    host = admin_url.split("@", 1)[1].rsplit("/", 1)[0]
    return {"XINDAI_DATABASE_URL": f"postgresql://xindai_test_app@{host}/{name}",
            "XINDAI_MIGRATE_DATABASE_URL": f"postgresql://xindai_test_owner@{host}/{name}"}, name


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.close()


async def on_engines(measure: Measure, postgres_url: str = "") -> dict[str, dict[str, Any]]:
    """Run `measure(settings env)` on SQLite, then on PostgreSQL if a URL is given."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
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
