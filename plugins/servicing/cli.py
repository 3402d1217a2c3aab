"""`xindai schedule`: one JSON request on stdin, the schedule as JSON on stdout.

For integrators and auditors; it needs no database or settings beyond the plugin list.
Bad input exits 2 with one line `错误 / error: <zh-CN> / <en>` on stderr.
"""

from __future__ import annotations

import sys

import click

MAX_REQUEST_BYTES = 1 << 20


@click.command("schedule")
def schedule() -> None:
    """Read a schedule request (JSON) on stdin and print the schedule with its APR as JSON.

    See docs/servicing.md for the request and response contract.
    """
    from core.cli import fail
    from plugins.servicing.request import parse_json
    from plugins.servicing.response import dumps
    from plugins.servicing.schedule import TermsError, build_schedule

    raw = sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1)
    if len(raw) > MAX_REQUEST_BYTES:
        fail("请求超过 1 MiB / the request is larger than 1 MiB", 2)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("请求须为 UTF-8 编码 / the request must be UTF-8", 2)
    try:
        result = build_schedule(parse_json(text))
    except TermsError as exc:
        fail(str(exc), 2)
    click.echo(dumps(result, indent=2))


@click.group("cob")
def cob() -> None:
    """Close of business (日终): close a tenant's business date, see past runs."""


@cob.command("run")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--date", "requested", default=None,
              help="The business date to close (must be the tenant's; default: it).")
@click.option("--chunk", "chunk", default=5000, show_default=True, help="Loans per transaction.")
@click.option("--workers", default=None, type=int,
              help="Chunks closed at once (PostgreSQL; default 2).")
def cob_run(slug: str, requested: str | None, chunk: int, workers: int | None) -> None:
    """Close the business date now, in this process (safe to repeat after a crash)."""
    import json
    from datetime import date

    from core.cli import _tenant_run, fail
    from plugins.servicing import cob as closing

    try:
        wanted = date.fromisoformat(requested) if requested else None
    except ValueError:
        fail(f"日期应为 YYYY-MM-DD / the date must be YYYY-MM-DD: {requested}", 2)

    async def work(ctx):  # type: ignore[no-untyped-def]
        return await closing.close_business_date(ctx, wanted, chunk_size=max(chunk, 1),
                                                 workers=workers)

    click.echo(json.dumps(_tenant_run(slug, work), ensure_ascii=False))


@cob.command("status")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
def cob_status(slug: str) -> None:
    """The business date and the latest runs."""
    from core.cli import _tenant_run
    from plugins.servicing import cob as closing

    async def work(ctx):  # type: ignore[no-untyped-def]
        return ctx.tenant.business_date, await closing.list_runs(ctx, 10)

    business_date, runs = _tenant_run(slug, work)
    click.echo(f"business date 营业日: {business_date.isoformat()}")
    for r in runs:
        click.echo(f"{r['business_date']}  {r['status']:8} loans={r['loans']} "
                   f"accrued={r['accrued']} penalty={r['penalty']} events={r['events']}"
                   + (f"  error: {r['error']}" if r["error"] else ""))


@click.group("bench")
def bench() -> None:
    """Benchmarks that print their figures (one JSON line)."""


@bench.command("cob")
@click.option("--loans", "n", default=100_000, show_default=True, help="Active loans.")
@click.option("--postgres", "postgres", default="",
              help="Admin URL of a PostgreSQL server: a scratch database is created there "
                   "and dropped (default: SQLite in a temporary directory).")
@click.option("--chunk", default=5000, show_default=True, help="Loans per transaction.")
@click.option("--workers", default=None, type=int,
              help="Chunks closed at once (PostgreSQL; default 2).")
@click.option("--save", is_flag=True, help="Also write the figures under bench/results/.")
def bench_cob(n: int, postgres: str, chunk: int, workers: int | None, save: bool) -> None:
    """Close one business date of N active loans: seconds, loans/s, the floor of one plain
    set-based statement touching the same loans, their ratio, and peak memory."""
    import asyncio
    import json

    from plugins.servicing.bench import run_cob_bench

    figures = asyncio.run(run_cob_bench(n, postgres, chunk, workers))
    line = json.dumps(figures)
    click.echo(line)
    if save:
        import time
        from pathlib import Path

        out = Path("bench") / "results"
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"cob_{figures['engine']}_{n}_{time.strftime('%Y%m%d_%H%M%S')}.json"
        path.write_text(line + "\n")
        click.echo(f"saved {path}", err=True)
