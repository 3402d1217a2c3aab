"""The `xindai` command line. Every subcommand has --help; failures exit non-zero with
one clear line (zh-CN / en)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from core import kernel as K
from core.errors import XindaiError
from core.settings import SettingsError

T = TypeVar("T")
DEMO_PACK = Path(__file__).resolve().parent.parent / "tenants" / "demo"


def fail(message: str, code: int = 1) -> None:
    click.echo(f"错误 / error: {message}", err=True)
    sys.exit(code)


_loaded: dict[str, Any] = {}  # settings and plugins loaded once by main()


def get_kernel() -> K.Kernel:
    try:
        return K.boot(_loaded.get("settings"), _loaded.get("plugins"))
    except SettingsError as exc:
        fail(str(exc), 2)
    except Exception as exc:
        from core.plugins import PluginError

        if isinstance(exc, PluginError):
            fail(str(exc), 2)
        raise
    raise AssertionError("unreachable")


def run(k: K.Kernel, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` with the database open; turn expected errors into one clear line."""
    from core.crypto import DecryptionError
    from core.db import DatabaseError
    from core.packs import PackError

    async def main() -> T:
        await K.start(k)
        try:
            return await work()
        finally:
            await K.stop(k)

    try:
        return asyncio.run(main())
    except (PackError, DatabaseError) as exc:
        fail(str(exc))
    except DecryptionError as exc:
        fail(f"无法解密（密钥已销毁或主密钥不符） / cannot decrypt (keys shredded or wrong master "
             f"key): {exc}")
    except XindaiError as exc:
        fail(f"{exc.message('zh-CN')} / {exc.message('en')}")
    except OSError as exc:
        fail(f"无法连接数据库 / cannot reach the database: {exc}")
    raise AssertionError("unreachable")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xindai")
def cli() -> None:
    """xindai (信贷): loan customer management for Chinese lenders."""


@cli.command()
def migrate() -> None:
    """Apply all database migrations (idempotent); on PostgreSQL also enforce RLS."""
    k = get_kernel()

    async def work() -> list[str]:
        return await K.migrate(k)

    from core.db import DatabaseError

    try:
        applied = asyncio.run(work())
    except DatabaseError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"无法连接数据库 / cannot reach the database: {exc}")
    click.echo(f"已应用 {len(applied)} 个迁移 / applied {len(applied)} migrations")
    for mid in applied:
        click.echo(f"  {mid}")


@cli.command()
def check() -> None:
    """Check settings and the database role (refuses superuser, BYPASSRLS, table owner)."""
    k = get_kernel()
    run(k, lambda: asyncio.sleep(0))
    click.echo(f"ok: {k.settings.profile}, {k.settings.database_url.split('@')[-1]}")


@cli.command("plugins")
def plugins_cmd() -> None:
    """List plugins: name, version, hooks implemented, and the tenants that enabled them."""
    k = get_kernel()
    from core.tenancy import list_tenants

    tenants = run(k, list_tenants)
    for info in k.plugins.info():
        enabled = [t.slug for t in tenants if t.enabled(info.name)]
        kind = "built-in" if info.builtin else "external"
        click.echo(f"{info.name} {info.version} ({kind})")
        click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")
        click.echo(f"  tenants: {', '.join(enabled) or '-'}")


@cli.group()
def tenant() -> None:
    """Create, export and configure tenants."""


@tenant.command("create")
@click.option("--pack", "pack_path", required=True, type=click.Path(path_type=Path),
              help="Pack folder or pack.yaml file.")
@click.option("--slug", default=None, help="Override the pack's tenant slug.")
def tenant_create(pack_path: Path, slug: str | None) -> None:
    """Create a tenant from a declarative pack (all or nothing)."""
    k = get_kernel()
    from core.packs import apply_pack, load_pack

    async def work() -> Any:
        return await apply_pack(load_pack(pack_path), slug)

    info, passwords = run(k, work)
    click.echo(f"已创建租户 / created tenant {info.slug} ({info.name})")
    for user, password in passwords.items():
        click.echo(f"  {user}: {password}")


@tenant.command("export")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write the pack to.")
@click.option("--records/--no-records", default=True,
              help="Include records (they contain personal data in clear).")
def tenant_export(slug: str, out_dir: Path, records: bool) -> None:
    """Export a tenant as a pack in the same format `tenant create` reads."""
    k = get_kernel()
    from core.packs import export_pack

    path = run(k, lambda: export_pack(slug, out_dir, records))
    click.echo(f"已导出 / exported: {path}")
    if records:
        click.echo("注意：导出的记录包含个人信息明文 / note: the records contain personal data "
                   "in clear", err=True)


@tenant.command("list")
def tenant_list() -> None:
    """List tenants with their status and enabled plugins."""
    k = get_kernel()
    from core.tenancy import list_tenants

    for t in run(k, list_tenants):
        click.echo(f"{t.slug}\t{t.status}\t{t.name}\t{','.join(t.plugins)}")


@tenant.command("set-status")
@click.argument("slug")
@click.argument("status", type=click.Choice(["active", "suspended"]))
def tenant_status(slug: str, status: str) -> None:
    """Suspend a tenant (its users can no longer sign in or use tokens) or reactivate it."""
    k = get_kernel()
    from core.tenancy import get_tenant, update_tenant

    async def work() -> None:
        await update_tenant(await get_tenant(slug), status=status)

    run(k, work)
    click.echo(f"{slug}: {status}")


@tenant.command("set-secret")
@click.argument("slug")
@click.argument("key")
def tenant_set_secret(slug: str, key: str) -> None:
    """Seal a new value for the secret setting KEY of tenant SLUG (e.g.
    origination.bureau_secret), read from standard input so it stays out of shell history."""
    k = get_kernel()
    from core.setting_secrets import set_secret

    value = click.get_text_stream("stdin").read().strip()
    run(k, lambda: set_secret(slug, key, value))
    click.echo(f"{slug}: {key} 已加密保存 / sealed")


def _set_plugin(slug: str, plugin: str, enabled: bool) -> None:
    k = get_kernel()
    from core.tenancy import set_plugin_enabled

    run(k, lambda: set_plugin_enabled(slug, plugin, enabled))
    click.echo(f"{slug}: {'+' if enabled else '-'}{plugin}")


@tenant.command("enable-plugin")
@click.argument("slug")
@click.argument("plugin")
def tenant_enable(slug: str, plugin: str) -> None:
    """Enable PLUGIN for tenant SLUG (runs the plugin's onboarding defaults)."""
    _set_plugin(slug, plugin, True)


@tenant.command("disable-plugin")
@click.argument("slug")
@click.argument("plugin")
def tenant_disable(slug: str, plugin: str) -> None:
    """Disable PLUGIN for tenant SLUG: its routes, menus, events and jobs vanish for it."""
    _set_plugin(slug, plugin, False)


@cli.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@click.argument("export", required=False, type=click.Path(path_type=Path))
@click.option("--tenant", "slug", default=None, help="Check this tenant's live chain instead.")
@click.option("--public-key", default=None, help="Pin the signer's public key (base64).")
def audit_verify(export: Path | None, slug: str | None, public_key: str | None) -> None:
    """Verify an export zip (standalone: no database needed) or, with --tenant, the live
    chain; name the first changed, removed, inserted or reordered entry and exit 1."""
    if (export is None) == (slug is None):
        fail("请给出导出文件或 --tenant / give an export file or --tenant", 2)
    if export is not None:
        from core.audit_verify import verify_export

        verdict = verify_export(export, public_key)
    else:
        k = get_kernel()
        from core.audit import verify_tenant
        from core.tenancy import Context, get_tenant

        async def work() -> Any:
            return await verify_tenant(Context.system(await get_tenant(slug or "")))

        verdict = run(k, work)
    click.echo(verdict.describe())
    if not verdict.ok:
        sys.exit(1)


@audit_group.command("export")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="The zip file to write.")
@click.option("--since", default=None, help="From this ISO date/time (UTC if no zone).")
@click.option("--until", default=None, help="Up to this ISO date/time.")
def audit_export(slug: str, out: Path, since: str | None, until: str | None) -> None:
    """Export a range of the audit log as a signed zip (JSONL, CSV, checkpoints, manifest)."""
    k = get_kernel()
    from datetime import UTC, datetime

    from core.audit_export import export_zip
    from core.tenancy import Context, get_tenant

    def when(text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            fail(f"日期无效 / invalid date: {text}", 2)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    async def work() -> bytes:
        return await export_zip(Context.system(await get_tenant(slug)), when(since), when(until))

    data = run(k, work)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    click.echo(f"已导出 / exported: {out}")


@audit_group.command("prune")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
def audit_prune(slug: str) -> None:
    """Delete entries past the tenant's retention (at least 6 months) up to a signed
    checkpoint; on PostgreSQL runs as the owner role (XINDAI_MIGRATE_DATABASE_URL)."""
    k = get_kernel()
    from core import db
    from core.audit_export import prune
    from core.tenancy import Context, get_tenant

    async def work() -> int:
        owner_url = k.settings.migrate_database_url or k.settings.database_url
        if owner_url == k.settings.database_url:
            return await prune(Context.system(await get_tenant(slug)))
        owner = db.make_engine(owner_url)
        await db.open_engine(owner, 2)
        db.bind(owner)
        try:
            return await prune(Context.system(await get_tenant(slug)))
        finally:
            db.bind(k.engine)
            await db.close_engine(owner)

    click.echo(f"已删除 / deleted {run(k, work)} entries")


@audit_group.command("checkpoint")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
def audit_checkpoint(slug: str) -> None:
    """Sign the tenant's current chain head (run periodically, e.g. hourly from cron)."""
    k = get_kernel()
    from core.audit_export import checkpoint
    from core.tenancy import Context, get_tenant

    async def work() -> dict[str, Any]:
        return await checkpoint(Context.system(await get_tenant(slug)))

    cp = run(k, work)
    click.echo(f"checkpoint {cp['seq']} {cp['hash']} key {cp['key_id']}")


@audit_group.command("rotate-key")
def audit_rotate_key() -> None:
    """Replace the checkpoint signing key (XINDAI_AUDIT_KEY_FILE); the old public key is kept
    so earlier checkpoints still verify; then sign every tenant's head with the new key."""
    k = get_kernel()
    from core.audit import append
    from core.audit_export import checkpoint, rotate_signing_key
    from core.tenancy import Context, list_tenants, tenant_scope

    old, new = rotate_signing_key(k.settings.audit_key_file)

    async def work() -> int:
        tenants = await list_tenants()
        for tenant in tenants:
            ctx = Context.system(tenant)
            async with tenant_scope(ctx):
                await append(ctx, "audit.key_rotated", "audit", None, {"key_id": [old, new]})
            await checkpoint(ctx)
        return len(tenants)

    signed = run(k, work)
    click.echo(f"signing key {old} retired, {new} in use; {signed} tenants' heads signed")


@cli.group("keys")
def keys_group() -> None:
    """Encryption keys: rotate, re-encrypt, status, re-wrap, shred."""


def _tenant_run(slug: str, work: Any) -> Any:
    k = get_kernel()
    from core.tenancy import Context, get_tenant

    async def go() -> Any:
        return await work(Context.system(await get_tenant(slug)))

    return run(k, go)


@keys_group.command("rotate")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--wait/--no-wait", default=False,
              help="Follow the background re-encryption with a progress bar.")
def keys_rotate(slug: str, wait: bool) -> None:
    """New data key version (used by new writes at once); old rows are re-encrypted by a
    background job (workers, or the demo server)."""
    from core import jobs, keys
    from core.tenancy import tenant_scope

    async def work(ctx: Any) -> tuple[int, Any]:
        async with tenant_scope(ctx):
            version = await keys.rotate(ctx)
            job_id = await jobs.enqueue(ctx, "core.keys.reencrypt")
        return version, job_id

    version, job_id = _tenant_run(slug, work)
    click.echo(f"version {version}; re-encryption job {job_id}")
    if wait:
        _watch(slug, job_id)
    else:
        click.echo(f"progress: xindai jobs watch --tenant {slug} {job_id}")


@keys_group.command("reencrypt")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
def keys_reencrypt(slug: str) -> None:
    """Re-encrypt in this process, now (when no worker runs); safe to repeat."""
    from core import keys

    async def work(ctx: Any) -> int:
        before = await keys.status(ctx)
        with click.progressbar(length=max(sum(before.stale.values()), 1),
                               label="re-encrypting") as bar:
            done = 0

            def step(entity: str, changed: int) -> None:
                nonlocal done
                bar.update(max(changed - done, 0))
                done = max(done, changed)

            return await keys.reencrypt(ctx, progress=step)

    click.echo(f"re-encrypted {_tenant_run(slug, work)} rows")


@keys_group.command("status")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
def keys_status(slug: str) -> None:
    """Key versions and how many rows still use an older one."""
    from core import keys

    s = _tenant_run(slug, keys.status)
    click.echo(f"versions {s.versions}, active {s.active}")
    for entity, count in s.stale.items():
        click.echo(f"  {entity}: {count} rows on older versions")
    job = _tenant_run(slug, _last_reencrypt_job)
    if job is not None:
        click.echo(f"re-encryption job {job['id']}: {job['status']}, "
                   f"{job['progress_done']}/{job['progress_total'] or '?'}"
                   + (f" ({job['last_error'][:200]})" if job["last_error"] else ""))
    click.echo("done" if s.done else "re-encryption pending: the job above, or "
               "xindai keys reencrypt")


async def _last_reencrypt_job(ctx: Any) -> dict[str, Any] | None:
    from core import outbox

    rows = [r for r in await outbox.recent(ctx, kind="job", limit=200)
            if r["name"] == "core.keys.reencrypt"]
    return rows[0] if rows else None


@keys_group.command("rewrap")
@click.option("--new-key-file", required=True, type=click.Path(path_type=Path),
              help="The new master key file (created 0600 if missing).")
def keys_rewrap(new_key_file: Path) -> None:
    """Re-wrap every tenant's data keys under a new master key; then point XINDAI_KEY_FILE
    (or XINDAI_MASTER_KEY) at the new key and restart every process."""
    from dataclasses import replace

    from core import keys
    from core.crypto import load_master_key

    k = get_kernel()
    new = load_master_key(replace(k.settings, master_key="", key_file=new_key_file))
    count = run(k, lambda: keys.rewrap_all(k.master_key, new))
    click.echo(f"re-wrapped {count} data keys; switch to {new_key_file} and restart")


@keys_group.command("shred")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--confirm", required=True, help="Repeat the tenant slug to confirm.")
def keys_shred(slug: str, confirm: str) -> None:
    """Delete a tenant's data keys: its secret data becomes unreadable for good."""
    from core import keys

    count = _tenant_run(slug, lambda ctx: keys.shred(ctx, confirm))
    click.echo(f"deleted {count} data keys of {slug}")


@cli.group("platform")
def platform_group() -> None:
    """The platform operator of a SaaS installation."""


@platform_group.command("init")
def platform_init() -> None:
    """Create the platform tenant and its first operator; prints the operator's password."""
    k = get_kernel()
    from core.platform import init_platform

    tenant, password = run(k, lambda: init_platform(k.settings.platform_tenant))
    click.echo(f"平台租户 / platform tenant: {tenant.slug}")
    click.echo(f"  operator: {password}")


@cli.command()
@click.option("--host", default=None, help="Bind address (default: XINDAI_HOST).")
@click.option("--port", default=None, type=int, help="Port (default: XINDAI_PORT).")
@click.option("--jobs/--no-jobs", default=None,
              help="Run the in-process worker (default: on unless XINDAI_REDIS_URL is set).")
def serve(host: str | None, port: int | None, jobs: bool | None) -> None:
    """Serve the web app and API."""
    k = get_kernel()
    _serve(k, host, port, jobs)


def _serve(k: K.Kernel, host: str | None, port: int | None, jobs: bool | None) -> None:
    import uvicorn

    from core.web.app import create_app

    app = create_app(k, run_jobs=not k.settings.redis_url if jobs is None else jobs)
    uvicorn.run(app, host=host or k.settings.host, port=port or k.settings.port,
                log_level=k.settings.log_level, http="httptools",
                access_log=False)  # AccessLog logs requests without their query strings


def _run_forever(k: K.Kernel, runtime: Any, banner: str) -> None:
    """Start `runtime` with the database open and run until SIGTERM or Ctrl-C."""
    import signal

    async def main() -> None:
        await K.start(k)
        await runtime.start()
        click.echo(banner)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runtime.stop()
            await K.stop(k)

    asyncio.run(main())


@cli.command()
@click.option("--threads", default=4, show_default=True, help="Worker threads per process.")
@click.option("--processes", default=1, show_default=True, help="Worker processes.")
def worker(threads: int, processes: int) -> None:
    """Run workers and the outbox relay against the Redis broker (XINDAI_REDIS_URL)."""
    k = get_kernel()
    if not k.settings.redis_url:
        fail("需要 XINDAI_REDIS_URL（嵌入模式下作业在 serve 进程内运行） / XINDAI_REDIS_URL is "
             "required (in embedded mode jobs run inside `serve`)", 2)
    if processes > 1:
        _supervise([sys.executable, "-m", "core.cli", "worker", "--threads", str(threads)],
                   processes)
        return
    from core.jobs import Runtime

    names = ", ".join(j.name for j in k.jobs) or "-"
    _run_forever(k, Runtime(threads=threads, relay=True),
                 f"worker {os.getpid()}: {threads} threads, jobs: {names}")


def _supervise(argv: list[str], n: int) -> None:
    """Run n copies of a command; stop them all on SIGTERM/Ctrl-C; restart none (systemd
    or the orchestrator restarts the supervisor)."""
    import signal
    import subprocess

    children = [subprocess.Popen(argv) for _ in range(n)]

    def stop(*_: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [child.wait() for child in children]
    sys.exit(max(codes, key=abs))


@cli.command()
def scheduler() -> None:
    """Fire periodic jobs (one leader at a time; start one on each server for failover)."""
    k = get_kernel()
    from core.jobs import Runtime

    names = ", ".join(f"{p.name} ({p.cron})" for p in k.periodic_jobs) or "-"
    _run_forever(k, Runtime(threads=0, relay=False, scheduler=True),
                 f"scheduler {os.getpid()}: {names}")


@cli.group("jobs")
def jobs_group() -> None:
    """Background jobs and events: list, retry dead ones, watch progress."""


@jobs_group.command("list")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--dead", is_flag=True, help="Only dead messages (retries exhausted).")
def jobs_list(slug: str, dead: bool) -> None:
    """The tenant's latest jobs and events, newest first."""
    from core import outbox

    rows = _tenant_run(slug, lambda ctx: outbox.recent(ctx, "dead" if dead else None))
    for r in rows:
        progress = (f" {r['progress_done']}/{r['progress_total']}"
                    if r["progress_total"] else "")
        click.echo(f"{r['id']}  {r['kind']:5}  {r['status']:8}  {r['name']}  "
                   f"attempts {r['attempts']}{progress}"
                   + (f"  {r['last_error'].splitlines()[-1][:120]}" if r["last_error"] else ""))


@jobs_group.command("retry")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.argument("message_id", type=click.UUID)
def jobs_retry(slug: str, message_id: Any) -> None:
    """Send a dead job or event again."""
    from core import outbox

    if not _tenant_run(slug, lambda ctx: outbox.retry(ctx, message_id)):
        fail("没有这条失败的消息 / no dead message with that id")
    click.echo(f"retrying {message_id}")


@cli.command("import")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--entity", required=True, help="Registry entity, e.g. customer.")
@click.option("--commit", is_flag=True, help="Write the rows (all or none); default: dry run.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write the error report (xlsx) here when there are errors.")
@click.option("--lang", default="zh-CN", help="Language of the report (zh-CN or en).")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_command(slug: str, entity: str, commit: bool, report: str | None, lang: str,
                   path: str) -> None:
    """Import an xlsx file as the system (data migrations, benchmarks): the same checks and
    the same all-or-nothing commit as the web page; prints the counts and the timing."""
    import time
    from pathlib import Path

    from core import imports

    async def work(ctx: Any) -> Any:
        t0 = time.perf_counter()
        job = await imports.upload(ctx, entity, Path(path).name, Path(path).read_bytes())
        if job["mapping_errors"]:
            fail("; ".join(job["mapping_errors"]), 2)
        out = await imports.run(ctx, job["id"], commit)
        if out.error_count and report:
            Path(report).write_bytes(await imports.report_bytes(ctx, job["id"], lang))
        return job["id"], out, time.perf_counter() - t0

    import_id, out, seconds = _tenant_run(slug, work)
    click.echo(f"import {import_id}: {out.total} rows, {out.error_count} errors, "
               f"{out.warning_count} warnings, {out.created} created in {seconds:.1f} s")
    if out.error_count:
        for e in out.errors[:10]:
            click.echo(f"  row {e['row']} {e['column'] or e['field']}: {e['code']}")
        sys.exit(1)


@jobs_group.command("watch")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.argument("message_id", type=click.UUID)
def jobs_watch(slug: str, message_id: Any) -> None:
    """Follow one job's progress until it finishes (exit 1 if it dies)."""
    _watch(slug, message_id)


def _watch(slug: str, message_id: Any) -> None:
    from core import outbox
    from core.tenancy import Context, get_tenant

    async def follow() -> dict[str, Any] | None:
        ctx = Context.system(await get_tenant(slug))
        bar = None
        shown = 0
        while True:
            row = await outbox.get(ctx, message_id)
            if row is None:
                return None
            total = row["progress_total"] or 0
            if bar is None and total:
                bar = click.progressbar(length=total, label=row["name"])
                bar.__enter__()
            if bar is not None:
                bar.update(max(row["progress_done"] - shown, 0))
                shown = max(shown, row["progress_done"])
            if row["status"] in ("done", "dead"):
                if bar is not None:
                    bar.__exit__(None, None, None)
                return row
            await asyncio.sleep(0.5)

    row = run(get_kernel(), follow)
    if row is None:
        fail("没有这个作业 / no such job")
    assert row is not None
    click.echo(f"{row['name']}: {row['status']}")
    if row["status"] == "dead":
        fail(row["last_error"] or "dead")


@cli.command()
@click.option("--host", default=None, help="Bind address.")
@click.option("--port", default=None, type=int, help="Port.")
def demo(host: str | None, port: int | None) -> None:
    """Migrate, load the demo tenant if missing, print the demo logins, and serve."""
    k = get_kernel()
    from core.db import DatabaseError

    try:
        asyncio.run(K.migrate(k))
    except DatabaseError as exc:
        fail(str(exc))
    logins = k.settings.data_dir / "demo-logins.txt"

    async def load() -> None:
        from core.packs import apply_pack, load_pack
        from core.tables import Tenant

        if await Tenant.exists().where(Tenant.slug == "demo").run():
            return
        _, passwords = await apply_pack(load_pack(DEMO_PACK))
        fd = os.open(logins, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            for user, password in passwords.items():
                fh.write(f"{user}\t{password}\n")

    run(k, load)
    h, p = host or k.settings.host, port or k.settings.port
    click.echo("")
    click.echo(f"xindai 演示 / demo: http://{h}:{p}   API: http://{h}:{p}/api/v1/openapi.json")
    click.echo("租户 / tenant: demo   演示账号 / demo logins (username / password):")
    if logins.exists():
        for line in logins.read_text().splitlines():
            user, _, password = line.partition("\t")
            click.echo(f"  {user:<12} {password}")
    click.echo("")
    _serve(k, host, port, None)


def standalone(argv: list[str]) -> bool:
    """Is this `xindai audit verify EXPORT.zip`? It runs on an auditor's computer, so it
    reads no settings (no XINDAI_*, no xindai.toml), plugins, keys or database: whatever
    is or is not configured there cannot stop it."""
    return argv[:2] == ["audit", "verify"] and not any(
        a == "--tenant" or a.startswith("--tenant=") for a in argv[2:])


def main() -> None:
    """Entry point: load plugin commands, then run."""
    if standalone(sys.argv[1:]):
        cli()
        return
    try:
        from core.plugins import Plugins
        from core.settings import load_settings

        settings = load_settings()
        plugins = Plugins(settings.plugins, settings.disable_plugins)
        plugins.hook.register_commands(cli=cli)
        _loaded.update(settings=settings, plugins=plugins)
    except Exception as exc:  # settings or plugin loading: one line, unless asking for help
        from core.plugins import PluginError

        if not isinstance(exc, SettingsError | PluginError):
            raise
        if not {"-h", "--help", "--version"} & set(sys.argv[1:]):
            fail(str(exc), 2)
    cli()


if __name__ == "__main__":
    main()
