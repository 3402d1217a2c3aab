"""Scratch PostgreSQL databases for benchmarks: created with the owner and app roles the
product uses in production (so RLS is in force), dropped afterwards."""

from __future__ import annotations

import uuid

OWNER_ROLE, APP_ROLE = "xindai_test_owner", "xindai_test_app"


async def scratch_postgres(admin_url: str, prefix: str = "xindai_bench"
                           ) -> tuple[dict[str, str], str]:
    """A new database owned by a non-superuser owner role and used through an app role;
    returns the settings environment pointing at it and its name."""
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        for role in (OWNER_ROLE, APP_ROLE):
            try:
                await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
            except asyncpg.DuplicateObjectError:
                pass
        await conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    finally:
        await conn.close()
    host = admin_url.split("@", 1)[1].rsplit("/", 1)[0]
    return {"XINDAI_DATABASE_URL": f"postgresql://{APP_ROLE}@{host}/{name}",
            "XINDAI_MIGRATE_DATABASE_URL": f"postgresql://{OWNER_ROLE}@{host}/{name}"}, name


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()
