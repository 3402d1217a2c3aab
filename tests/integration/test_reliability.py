"""Reliability against real services: real `xindai worker` processes on real PostgreSQL and
Redis. A worker killed with SIGKILL mid-batch and a Redis outage while events are produced
lose nothing and handle nothing twice (side effects are counted in the database)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from core.events import emit
from core.tables import AuditEntry, OutboxMessage
from core.tenancy import tenant_scope
from tests.conftest import FIXTURES, REDIS_URL, ROOT, require
from tests.integration.test_cli import XINDAI

pytestmark = pytest.mark.redis


def redis_reachable() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        require("Redis", exc)


def start_worker(pg: Any, redis_url: str, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    env.update({
        "XINDAI_DATA_DIR": str(pg.settings.data_dir),
        "XINDAI_DATABASE_URL": pg.settings.database_url,
        "XINDAI_REDIS_URL": redis_url,
        "XINDAI_REDIS_NAMESPACE": namespace,
        "XINDAI_EVENT_ACK_SECONDS": "3",
        "XINDAI_RELAY_POLL_MS": "50",
        "XINDAI_LOG_LEVEL": "warning",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES / "external")]),
    })
    return subprocess.Popen([*XINDAI, "worker", "--threads", "4"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def effects(ctx: Any) -> list[int]:
    async with tenant_scope(ctx, write=False):
        rows = await AuditEntry.select(AuditEntry.record_id).where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.action == "example.effect").run()
    return sorted(int(r["record_id"]) for r in rows)


async def unfinished(ctx: Any) -> int:
    async with tenant_scope(ctx, write=False):
        return await OutboxMessage.count().where(OutboxMessage.tenant_id == ctx.tenant_id,
                                                 OutboxMessage.finished_at.is_null())


async def until(predicate: Any, seconds: float, what: str, log: Path) -> None:
    for _ in range(int(seconds / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n"
                         f"{log.read_text(errors='replace')[-3000:]}")


async def produce(ctx: Any, numbers: range, sleep: float = 0.0) -> None:
    async with tenant_scope(ctx):
        for n in numbers:
            await emit(ctx, "example.ping", {"n": n, "sleep": sleep})


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def forget_namespace(namespace: str) -> None:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(f"{namespace}*"):
        r.delete(key)


async def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(
        pg: Any, new_pg_tenant: Any, tmp_path: Path) -> None:
    redis_reachable()
    ctx = await new_pg_tenant(plugins=["crm", "example"], records=False)
    namespace = f"xindai-rel-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    total = 200
    await produce(ctx, range(total), sleep=0.02)
    first = start_worker(pg, REDIS_URL, namespace, log)
    second = None
    try:
        await until(lambda: _at_least(ctx, 30), 90, "the first effects", log)
        first.send_signal(signal.SIGKILL)  # kill -9 in the middle of the batch
        first.wait()
        done = await effects(ctx)
        assert 30 <= len(done) < total, "the batch was not interrupted"
        second = start_worker(pg, REDIS_URL, namespace, log)
        await until(lambda: _none_left(ctx), 120, "the backlog to drain", log)
        assert await effects(ctx) == list(range(total))  # every event, each exactly once
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.kill()
        if second is not None:
            stop(second)
        forget_namespace(namespace)


async def _at_least(ctx: Any, n: int) -> bool:
    return len(await effects(ctx)) >= n


async def _none_left(ctx: Any) -> bool:
    return await unfinished(ctx) == 0


class TcpProxy:
    """A TCP relay in front of the real Redis that the test can cut and restore: the
    worker and its relay see Redis go away and come back on the same address."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_redis_outage_while_producing_loses_nothing(pg: Any, new_pg_tenant: Any,
                                                            tmp_path: Path) -> None:
    redis_reachable()
    url = urlparse(REDIS_URL)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 6379)
    await proxy.start()
    ctx = await new_pg_tenant(plugins=["crm", "example"], records=False)
    namespace = f"xindai-rel-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    worker = start_worker(pg, f"redis://127.0.0.1:{proxy.port}{url.path or ''}", namespace, log)
    try:
        await produce(ctx, range(0, 50))
        await until(lambda: _at_least(ctx, 10), 90, "the first effects", log)
        await proxy.stop()  # Redis goes away
        for start in range(50, 150, 25):  # the product keeps accepting changes meanwhile
            await produce(ctx, range(start, start + 25))
            await asyncio.sleep(0.5)
        assert len(await effects(ctx)) < 150
        await proxy.start()  # Redis is back
        await until(lambda: _none_left(ctx), 120, "the backlog to drain", log)
        assert await effects(ctx) == list(range(150))
    finally:
        stop(worker)
        await proxy.stop()
        forget_namespace(namespace)
