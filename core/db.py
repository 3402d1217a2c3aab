"""Database engines, migrations and the PostgreSQL row-level-security guarantees.

SQLite (embedded default) and PostgreSQL run the same migration history. On PostgreSQL,
`migrate` connects as the schema owner, then enables and forces RLS with a `WITH CHECK`
policy on every table that has `tenant_id`, and grants the app role plain DML; at start-up
the app role is refused if it is a superuser, has BYPASSRLS, or owns tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table

from core import piccolo_conf

os.environ.setdefault("PICCOLO_CONF", "core.piccolo_conf")

TENANT_SETTING = "app.tenant_id"
POLICY = "tenant_isolation"
_POLICY_EXPR = f"tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid"


class DatabaseError(Exception):
    """The database is not usable as configured; the message names the setting."""


def is_postgres(engine: Engine) -> bool:
    return engine.engine_type == "postgres"


def make_engine(url: str) -> Engine:
    """An engine for a `sqlite:///path` or `postgresql://...` URL."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteEngine(path=str(path), timeout=30)
    return PostgresEngine(config={"dsn": url})


def _all_tables(cls: type[Table] = Table) -> list[type[Table]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_tables(sub))
    return found


def bind(engine: Engine, apps: list[str] | None = None) -> None:
    """Make `engine` the one piccolo uses: for migrations and for every table class."""
    piccolo_conf.DB = engine
    if apps is not None:
        from piccolo.conf.apps import AppRegistry

        piccolo_conf.APP_REGISTRY = AppRegistry(apps=apps)
    for table in _all_tables():
        table._meta.db = engine


async def open_engine(engine: Engine, pool_size: int = 10) -> None:
    if is_postgres(engine):
        await engine.start_connection_pool(min_size=1, max_size=pool_size)
    else:
        await engine._run_in_new_connection("PRAGMA journal_mode=WAL")


async def close_engine(engine: Engine) -> None:
    if is_postgres(engine) and engine.pool:
        await engine.close_connection_pool()


async def fetch(engine: Engine, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run raw SQL (with `{}` placeholders) on `engine`, inside the current transaction if any."""
    from piccolo.querystring import QueryString

    return await engine.run_querystring(QueryString(sql, *args)) or []


async def run_migrations(engine: Engine, apps: list[str]) -> list[str]:
    """Apply every pending migration of `apps` on `engine`; returns the ids applied."""
    from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
    from piccolo.apps.migrations.tables import Migration

    bind(engine, apps)
    async def applied() -> set[str]:
        rows = await Migration.select(Migration.app_name, Migration.name).run()
        return {f"{r['app_name']}:{r['name']}" for r in rows}

    before = await applied() if await Migration.table_exists().run() else set()
    import contextlib
    import io

    from piccolo.apps.migrations.commands.base import BaseMigrationManager

    with contextlib.redirect_stdout(io.StringIO()):
        for app_name in BaseMigrationManager().get_sorted_app_names():
            result = await ForwardsMigrationManager(app_name=app_name).run()
            if not result.success:
                raise DatabaseError(f"migration of {app_name} failed: {result.message}")
    return sorted(await applied() - before)


async def tenant_tables(engine: Engine) -> list[str]:
    """Names of the tables in the current schema that have a `tenant_id` column (PostgreSQL)."""
    rows = await fetch(
        engine,
        "SELECT c.relname AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' "
        "AND NOT a.attisdropped "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY 1",
    )
    return [r["name"] for r in rows]


async def enforce_row_level_security(engine: Engine, app_role: str | None) -> list[str]:
    """Enable and force RLS with a WITH CHECK policy on every tenant table; grant the app role.

    Idempotent: re-running replaces the policy. Returns the tables covered.
    """
    tables = await tenant_tables(engine)
    async with engine.transaction():
        for name in tables:
            await fetch(engine, f'ALTER TABLE "{name}" ENABLE ROW LEVEL SECURITY')
            await fetch(engine, f'ALTER TABLE "{name}" FORCE ROW LEVEL SECURITY')
            await fetch(engine, f'DROP POLICY IF EXISTS {POLICY} ON "{name}"')
            await fetch(
                engine,
                f'CREATE POLICY {POLICY} ON "{name}" USING ({_POLICY_EXPR}) '
                f"WITH CHECK ({_POLICY_EXPR})",
            )
        if app_role:
            role = _quote_ident(app_role)
            await fetch(engine, f"GRANT USAGE ON SCHEMA public TO {role}")
            await fetch(
                engine,
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            )
            await fetch(engine, f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
            await fetch(engine, f"REVOKE INSERT, UPDATE, DELETE ON migration FROM {role}")
            await fetch(engine, f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_entry FROM {role}")
            await fetch(engine,
                        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoint FROM {role}")
    return tables


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def role_of(url: str) -> str | None:
    return urlparse(url).username if url.startswith("postgres") else None


async def check_app_role(engine: Engine) -> None:
    """Refuse to run as a role that would see every tenant's rows."""
    if not is_postgres(engine):
        return
    rows = await fetch(
        engine,
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    role = rows[0]
    if role["rolsuper"] or role["rolbypassrls"]:
        raise DatabaseError(
            f"XINDAI_DATABASE_URL: 角色 {role['rolname']} 是超级用户或可绕过行级安全，拒绝启动 / "
            f"role {role['rolname']} is a superuser or has BYPASSRLS; refusing to start"
        )
    owned = await fetch(
        engine,
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema() "
        "AND pg_has_role(current_user, tableowner, 'MEMBER')",
    )
    if owned[0]["n"]:
        raise DatabaseError(
            f"XINDAI_DATABASE_URL: 角色 {role['rolname']} 拥有数据表（表的所有者不受行级安全约束），"
            f"请用 XINDAI_MIGRATE_DATABASE_URL 指定所有者角色 / role {role['rolname']} owns "
            f"tables, and owners bypass row-level security: run migrations as another role "
            f"with XINDAI_MIGRATE_DATABASE_URL"
        )
    temp = await fetch(engine, "SELECT has_database_privilege(current_user, "
                               "current_database(), 'TEMPORARY') AS ok")
    if not temp[0]["ok"]:  # set-based batch work (the nightly close) uses private work tables
        raise DatabaseError(
            f"XINDAI_DATABASE_URL: 角色 {role['rolname']} 不能建临时表，请执行 GRANT TEMPORARY "
            f"ON DATABASE <库名> TO {role['rolname']} / role {role['rolname']} may not create "
            f"temporary tables: GRANT TEMPORARY ON DATABASE <db> TO {role['rolname']}"
        )


async def rls_problems(engine: Engine) -> list[str]:
    """Tenant tables whose RLS is not exactly ours: enabled, forced, one permissive policy
    for all commands whose USING and WITH CHECK are the tenant expression."""
    rows = await fetch(engine, """
        SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
               array_agg(p.polname) FILTER (WHERE p.polname IS NOT NULL) AS policies,
               bool_and(p.polname = {} AND p.polcmd = '*' AND p.polpermissive
                        AND pg_get_expr(p.polqual, p.polrelid) = pg_get_expr(p.polwithcheck,
                                                                             p.polrelid)
                        AND pg_get_expr(p.polqual, p.polrelid) LIKE {}) AS ours
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             AND NOT a.attisdropped
        LEFT JOIN pg_policy p ON p.polrelid = c.oid
        WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
        GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
    """, POLICY, f"%current_setting('{TENANT_SETTING}'%")
    return sorted(r["name"] for r in rows if not (
        r["enabled"] and r["forced"] and r["policies"] == [POLICY] and r["ours"]))


async def check_row_level_security(engine: Engine) -> None:
    """Refuse to start when a tenant table is not isolated (e.g. migrations not applied)."""
    if not is_postgres(engine):
        return
    bad = await rls_problems(engine)
    if bad:
        raise DatabaseError(
            f"XINDAI_DATABASE_URL: 这些租户表未启用行级安全，请运行 xindai migrate / tenant tables "
            f"without row-level security, run `xindai migrate`: {', '.join(bad)}"
        )


def raw_step(statement: str | None = None, *, sqlite: str | None = None,
             postgres: str | None = None) -> Any:
    """A migration step running SQL as is, for `MigrationManager.add_raw`.

    Used for what piccolo cannot express: composite unique indexes (one `statement` that
    works on both engines), or DDL whose syntax differs (`sqlite=` / `postgres=` variants,
    e.g. triggers); the migration history stays the same on both engines.
    """

    async def step() -> None:
        from piccolo.engine import engine_finder

        engine = engine_finder()
        assert engine is not None
        sql = statement or (postgres if is_postgres(engine) else sqlite)
        if sql:
            await engine.run_ddl(sql)

    return step


async def insert_rows(table: type[Table], rows: list[dict[str, Any]]) -> int:
    """INSERT many rows with one prepared statement (`executemany`) on the open
    transaction's connection: the bulk writers' path (imports, audit, outbox), where
    piccolo's per-object query building costs more than the database. Rows are dicts by
    column name; a missing column gets its declared default, JSON columns are serialised
    as piccolo would. Values reach the driver as Python values (piccolo's SQLite adapters
    and asyncpg's codecs convert them)."""
    from piccolo.columns import JSON, JSONB, Serial
    from piccolo.utils.encoding import dump_json

    if not rows:
        return 0
    engine = table._meta.db
    tx = engine.current_transaction.get()
    if tx is None:
        raise RuntimeError("insert_rows runs inside a transaction (tenant_scope)")
    columns = [c for c in table._meta.columns if not isinstance(c, Serial)]
    names = ", ".join(f'"{c._meta.db_column_name}"' for c in columns)
    marks = ", ".join(f"${i}" if is_postgres(engine) else "?"
                      for i in range(1, len(columns) + 1))
    sql = f'INSERT INTO "{table._meta.tablename}" ({names}) VALUES ({marks})'
    # (name, is JSON, default: a constant, or a callable to call per row)
    plan = []
    for c in columns:
        default = getattr(c, "default", None)
        fresh = default.python if hasattr(default, "python") else (
            default if callable(default) else None)
        plan.append((c._meta.name, isinstance(c, JSON | JSONB), fresh,
                     None if fresh else c.get_default_value()))
    missing = object()
    args = []
    for row in rows:
        values = []
        for name, is_json, fresh, constant in plan:
            value = row.get(name, missing)
            if value is missing:
                value = fresh() if fresh else constant
            if is_json and value is not None and not isinstance(value, str):
                value = dump_json(value)
            values.append(value)
        args.append(tuple(values))
    await tx.connection.executemany(sql, args)
    return len(args)
