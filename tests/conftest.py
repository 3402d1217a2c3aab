"""Shared fixtures: kernels on SQLite and on a real PostgreSQL, tenants, HTTP clients.

PostgreSQL and Redis are real servers (127.0.0.1:5432 and :6379 unless TEST_POSTGRES_URL /
TEST_REDIS_URL say otherwise). Without them the tests that need them skip, except when
`CI` is set: then a missing service fails the run instead of silently skipping.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SMALL_PACK = FIXTURES / "packs" / "small"
# The example external plugin is found through its entry point, like any installed plugin.
sys.path.insert(0, str(FIXTURES / "external"))

CI = bool(os.environ.get("CI"))
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
OWNER_ROLE, APP_ROLE = "xindai_test_owner", "xindai_test_app"


def require(service: str, problem: object) -> None:
    """Skip without the service, or fail when CI promises it."""
    message = f"{service} is not reachable: {problem}"
    if CI:
        pytest.fail(f"{message} (CI is set: these tests must run)")
    pytest.skip(message)


def _with_db(url: str, name: str, user: str | None = None) -> str:
    scheme, rest = url.split("://", 1)
    hostpart = rest.split("@", 1)[-1].rsplit("/", 1)[0]
    return f"{scheme}://{user + '@' if user else ''}{hostpart}/{name}" if user else \
        f"{url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
async def pg_database() -> AsyncIterator[dict[str, str]]:
    """A fresh database owned by a non-superuser owner role, plus an app role."""
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        require("PostgreSQL", exc)
    name = f"xindai_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    for role in (OWNER_ROLE, APP_ROLE):
        try:
            await conn.execute(
                f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            )
        except asyncpg.DuplicateObjectError:
            pass
    await conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    await conn.close()
    yield {
        "name": name,
        "app": _with_db(PG_ADMIN_URL, name, APP_ROLE),
        "owner": _with_db(PG_ADMIN_URL, name, OWNER_ROLE),
        "super": _with_db(PG_ADMIN_URL, name),
    }
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.close()


def settings_for(data_dir: Path, **env: str) -> Any:
    from core.settings import load_settings

    return load_settings({"XINDAI_DATA_DIR": str(data_dir), **env})


async def _started_kernel(settings: Any) -> Any:
    from core import kernel as K

    k = K.boot(settings)
    await K.migrate(k)
    await K.start(k)
    return k


@pytest.fixture(scope="session")
async def sqlite_kernel(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    from core import kernel as K

    k = await _started_kernel(settings_for(tmp_path_factory.mktemp("sqlite")))
    yield k
    await K.stop(k)


@pytest.fixture(scope="session")
async def pg_kernel(
    pg_database: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    from core import kernel as K

    k = await _started_kernel(settings_for(
        tmp_path_factory.mktemp("pg"),
        XINDAI_DATABASE_URL=pg_database["app"],
        XINDAI_MIGRATE_DATABASE_URL=pg_database["owner"],
    ))
    yield k
    await K.stop(k)


def activate(k: Any) -> Any:
    """Make `k` the process's kernel (tables bound to its engine)."""
    from core import db
    from core import kernel as K

    db.bind(k.engine, k.apps())
    K._current = k
    return k


@pytest.fixture(params=["sqlite", "pg"])
def kernel(request: pytest.FixtureRequest) -> Any:
    """The same test on both databases."""
    return activate(request.getfixturevalue(f"{request.param}_kernel"))


@pytest.fixture
def pg(pg_kernel: Any) -> Any:
    """PostgreSQL only (row-level security)."""
    return activate(pg_kernel)


@pytest.fixture
def sqlite(sqlite_kernel: Any) -> Any:
    return activate(sqlite_kernel)


NewTenant = Callable[..., Awaitable[Any]]


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Every test signs in from 127.0.0.1: start each with empty rate-limit windows."""
    from core.ratelimit import reset_memory

    reset_memory()


@pytest.fixture
def new_tenant(kernel: Any) -> NewTenant:
    """Create a tenant from the small test pack; returns the admin's Context."""
    return _tenant_factory()


@pytest.fixture
def new_pg_tenant(pg: Any) -> NewTenant:
    return _tenant_factory()


def _tenant_factory() -> NewTenant:
    from core.packs import apply_pack, load_pack
    from core.tenancy import Context

    async def make(plugins: list[str] | None = None, records: bool = True) -> Context:
        pack = load_pack(SMALL_PACK)
        if plugins is not None:
            pack.doc["tenant"]["plugins"] = plugins
            if "crm" not in plugins:  # the pack's custom fields are customer fields
                pack.doc.pop("fields")
        if not records:
            pack.record_files.clear()
        info, _ = await apply_pack(pack, slug=f"t-{uuid.uuid4().hex[:10]}")
        return Context.system(info)

    return make


@pytest.fixture
async def client(kernel: Any) -> AsyncIterator[Any]:
    """An HTTP client on the app of the active kernel, in the test's own event loop (the
    connection pool belongs to that loop)."""
    import httpx

    from core.web.app import create_app

    app = create_app(kernel, open_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


_demo_copies: dict[tuple[int, str, str], tuple[Any, dict[str, str]]] = {}


@pytest.fixture
async def demo(kernel: Any) -> tuple[Any, dict[str, str]]:
    """One copy of the demo tenant per database (created once, shared by tests that only
    read it or add their own records): (tenant, {username: password})."""
    from core.packs import apply_pack, load_pack

    # not id(kernel) alone: a later kernel may reuse a collected one's id, and a demo tenant
    # of another database has no data key in this one
    key = (id(kernel), str(kernel.settings.database_url), str(kernel.settings.data_dir))
    if key not in _demo_copies:
        _demo_copies[key] = await apply_pack(load_pack(ROOT / "tenants" / "demo"),
                                             slug=f"demo-{uuid.uuid4().hex[:8]}")
    return _demo_copies[key]


async def as_user(tenant: Any, username: str) -> Any:
    """The Context a signed-in `username` of `tenant` acts in."""
    from core.identity import user_context
    from core.tables import User
    from core.tenancy import Context, tenant_scope

    async with tenant_scope(Context.system(tenant), write=False):
        rows = await User.select().where(User.tenant_id == tenant.id,
                                         User.username == username).output(load_json=True).run()
    return await user_context(tenant, rows[0], "zh-CN")


async def login(client: Any, tenant: str, username: str = "admin",
                password: str = "test-password-1") -> dict[str, str]:
    r = await client.post("/api/v1/auth/login",
                          json={"tenant": tenant, "username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}
