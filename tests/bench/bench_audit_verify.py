"""Benchmark of `xindai audit verify --tenant T`: prints figures; `--save` also writes
bench/results/.

    .venv/bin/python tests/bench/bench_audit_verify.py [--n 1000000] [--postgres URL]
        [--no-sqlite] [--export] [--save]

Builds one tenant's audit chain of `n` entries, times `core.audit.verify_tenant` (the real
function, through a booted kernel) and prints entries/s, seconds and the process's peak RSS
(issue 4 target: under 30 s for 1,000,000 entries on the 2-core machine); checks the verdict
is ok, then changes one entry in the middle and checks the verdict names exactly that entry.

The chain is built quickly, not through a million `audit.append` calls: the tenant is
created from the small test pack (its onboarding appends a few real entries), and the rest
of the chain continues from its head. Each entry is computed in Python exactly as
`core.audit.append` does (the field set of `hashed_fields`, `chain_hash` over the previous
hash) with realistic content (a customer create or update by a loan officer, secret values
as `hmac:` digests), and bulk-inserted: SQLite with `executemany` in one transaction on the
engine's file; PostgreSQL with asyncpg `copy_records_to_table` as the superuser of the
`--postgres` URL (the append-only triggers refuse only UPDATE/DELETE/TRUNCATE), followed by
`VACUUM ANALYZE audit_entry`, which stands in for the autovacuum that follows any large
load. `audit_head` is then set to the last entry. Each engine is measured in a fresh
process and the chain is built in a child of it, so the peak RSS printed is that of the
booted kernel and the verification only.

`--export` also times the standalone verifier (`xindai audit verify EXPORT.zip`,
`core.audit_verify.verify_export`) on a signed export of the same `n` entries, written as
`core.audit_export` writes one (entries.jsonl with sorted keys, the manifest signed with a
throwaway Ed25519 key; no checkpoints and an empty CSV, which the verifier only hashes),
and on a copy with the middle entry changed; again in a fresh process each.

On PostgreSQL, URL must be an owner role that may create a database (e.g. the local
`postgres` superuser); the benchmark creates roles and a scratch database as the tests do.
Outside the pass/fail suite on purpose: timings are figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_write_path import postgres_env  # noqa: E402

COLUMNS = ("tenant_id", "id", "seq", "at", "user_id", "username", "roles", "ip", "user_agent",
           "request_id", "action", "entity", "record_id", "diff", "prev_hash", "hash")
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36")
COPY_CHUNK = 20_000


def chain(tenant_id: str, start_seq: int, prev: str, count: int) -> Iterator[dict[str, Any]]:
    """`count` stored rows continuing a chain after (start_seq, prev), as append writes them:
    the hash covers `hashed_fields(row)` (the very dict append hashes) chained on `prev`."""
    from core.audit import chain_hash, hashed_fields

    rnd = random.Random(start_seq)
    users = [(str(uuid.UUID(int=rnd.getrandbits(128), version=4)), f"officer{u:02d}")
             for u in range(40)]
    at = datetime.now(UTC) - timedelta(seconds=count)

    def hmac() -> str:  # a secret value's keyed hash, as `audit.secret_digest` writes it
        return f"hmac:{rnd.getrandbits(128):032x}"

    for seq in range(start_seq + 1, start_seq + count + 1):
        user_id, username = users[seq % len(users)]
        if seq % 3:
            action = "create"
            diff = {"kind": [None, "individual"], "name": [None, f"客户{seq}"],
                    "resident_id": [None, hmac()], "mobile": [None, hmac()],
                    "region": [None, "140105"], "annual_income": [None, f"{50000 + seq}.00"]}
        else:
            action = "update"
            diff = {"mobile": [hmac(), hmac()], "annual_income": ["60000.00", f"{seq}.00"]}
        at += timedelta(seconds=1, microseconds=rnd.randrange(1, 999_999) - 500_000)
        row = {"tenant_id": tenant_id, "seq": seq, "at": at, "user_id": user_id,
               "username": username, "roles": ["loan_officer"],
               "ip": f"10.{seq % 7}.{seq % 251}.{seq % 253}", "user_agent": UA,
               "request_id": f"{rnd.getrandbits(128):032x}", "action": action,
               "entity": "customer",
               "record_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
               "diff": diff, "prev_hash": prev}
        row["hash"] = prev = chain_hash(prev, hashed_fields(row))
        row["id"] = uuid.UUID(int=rnd.getrandbits(128), version=4)
        yield row


def build_sqlite(path: str, tenant_id: str, start_seq: int, prev: str, count: int) -> float:
    """Append `count` entries to the SQLite file in one transaction; returns seconds."""
    t0 = time.perf_counter()
    rows = (
        (r["tenant_id"], str(r["id"]), r["seq"], str(r["at"]), r["user_id"], r["username"],
         json.dumps(r["roles"]), r["ip"], r["user_agent"], r["request_id"], r["action"],
         r["entity"], r["record_id"], json.dumps(r["diff"]), r["prev_hash"], r["hash"])
        for r in chain(tenant_id, start_seq, prev, count)
    )
    last: list[tuple[int, str]] = []

    def tap(it: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        for row in it:
            last[:] = [(row[2], row[15])]
            yield row

    con = sqlite3.connect(path, timeout=60)
    try:
        with con:
            con.executemany(f"INSERT INTO audit_entry ({', '.join(COLUMNS)}) VALUES "
                            f"({', '.join('?' * len(COLUMNS))})", tap(rows))
            if last:
                con.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE tenant_id = ?",
                            (*last[0], tenant_id))
    finally:
        con.close()
    return time.perf_counter() - t0


def build_postgres(url: str, tenant_id: str, start_seq: int, prev: str, count: int) -> float:
    """Append `count` entries with COPY as the superuser `url`; returns seconds."""

    async def run() -> float:
        import asyncpg

        t0 = time.perf_counter()
        conn = await asyncpg.connect(url)
        try:
            last = None
            batch: list[tuple[Any, ...]] = []
            async with conn.transaction():
                for r in chain(tenant_id, start_seq, prev, count):
                    batch.append((uuid.UUID(r["tenant_id"]), r["id"], r["seq"], r["at"],
                                  r["user_id"], r["username"], json.dumps(r["roles"]), r["ip"],
                                  r["user_agent"], r["request_id"], r["action"], r["entity"],
                                  r["record_id"], json.dumps(r["diff"]), r["prev_hash"],
                                  r["hash"]))
                    if len(batch) == COPY_CHUNK:
                        await conn.copy_records_to_table("audit_entry", records=batch,
                                                         columns=COLUMNS)
                        last, batch = (batch[-1][2], batch[-1][15]), []
                if batch:
                    await conn.copy_records_to_table("audit_entry", records=batch,
                                                     columns=COLUMNS)
                    last = (batch[-1][2], batch[-1][15])
                if last:
                    await conn.execute("UPDATE audit_head SET seq = $1, hash = $2 "
                                       "WHERE tenant_id = $3", *last, uuid.UUID(tenant_id))
            await conn.execute("VACUUM ANALYZE audit_entry")
        finally:
            await conn.close()
        return time.perf_counter() - t0

    return asyncio.run(run())


def tamper_sqlite(path: str, tenant_id: str, seq: int) -> None:
    """Change one entry's diff around the append-only trigger, as an intruder with the file
    would (the tests' `tamper` does the same)."""
    con = sqlite3.connect(path, timeout=60)
    try:
        with con:
            (trigger,) = con.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                     "AND name = 'audit_entry_no_update'").fetchone()
            con.execute("DROP TRIGGER audit_entry_no_update")
            con.execute("UPDATE audit_entry SET diff = ? WHERE tenant_id = ? AND seq = ?",
                        ('{"annual_income": ["60000.00", "1.00"]}', tenant_id, seq))
            con.execute(trigger)
    finally:
        con.close()


async def tamper_postgres(url: str, tenant_id: str, seq: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")  # triggers off
        await conn.execute("UPDATE audit_entry SET diff = $1 WHERE tenant_id = $2 AND seq = $3",
                           '{"annual_income": ["60000.00", "1.00"]}', uuid.UUID(tenant_id), seq)
    finally:
        await conn.close()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def measure(settings_env: dict[str, str], n: int, super_url: str = "") -> dict[str, Any]:
    from core import audit
    from core import kernel as K
    from core.packs import apply_pack, load_pack
    from core.settings import load_settings
    from core.tables import AuditHead
    from core.tenancy import Context, tenant_scope

    k = K.boot(load_settings(settings_env))
    await K.migrate(k)
    await K.start(k)
    try:
        pack = load_pack(ROOT / "tests" / "fixtures" / "packs" / "small")
        pack.record_files.clear()
        info, _ = await apply_pack(pack, slug=f"b-{uuid.uuid4().hex[:8]}")
        ctx = Context.system(info)
        async with tenant_scope(ctx, write=False):
            head = (await AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id).run())[0]
        tid, count = str(ctx.tenant_id), n - head["seq"]
        args = (tid, head["seq"], head["hash"], count)
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            if super_url:
                build_s = await loop.run_in_executor(pool, build_postgres, super_url, *args)
            else:
                build_s = await loop.run_in_executor(
                    pool, build_sqlite, str(k.settings.sqlite_path), *args)
        rss_before, load_before = peak_rss_mb(), os.getloadavg()[0]
        t0 = time.perf_counter()
        verdict = await audit.verify_tenant(ctx)
        seconds = time.perf_counter() - t0
        rss_after = peak_rss_mb()
        if not verdict.ok or verdict.checked != n:
            raise SystemExit(f"unexpected verdict on the intact chain: {verdict.describe()}")
        middle = n // 2
        if super_url:
            await tamper_postgres(super_url, tid, middle)
        else:
            tamper_sqlite(str(k.settings.sqlite_path), tid, middle)
        t0 = time.perf_counter()
        broken = await audit.verify_tenant(ctx)
        broken_s = time.perf_counter() - t0
        found = (broken.seq, broken.problem) == (middle, "changed")
        return {
            "entries": n,
            "build_s": round(build_s, 1),
            "verify_s": round(seconds, 2),
            "entries_per_s": round(n / seconds),
            "peak_rss_mb": rss_after,
            "rss_before_verify_mb": rss_before,
            "verdict": verdict.describe(),
            "tampered_seq": middle,
            "tampered_verdict": broken.describe(),
            "tampered_verify_s": round(broken_s, 2),
            "tamper_found_at_entry": found,
            "load_1m": f"{load_before:.2f}->{os.getloadavg()[0]:.2f}",
        }
    finally:
        await K.stop(k)


def build_export(folder: str, n: int) -> tuple[float, int]:
    """export.zip (intact) and tampered.zip (entry n // 2 changed) under `folder`; returns
    seconds and the changed entry's seq."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from core.audit_chain import GENESIS, hashed_fields
    from core.audit_export import FORMAT, public_key_b64
    from core.audit_verify import key_id

    t0 = time.perf_counter()
    tid, middle, key = str(uuid.uuid4()), n // 2, Ed25519PrivateKey.generate()
    digest, last = hashlib.sha256(), None
    zips = [zipfile.ZipFile(Path(folder) / name, "w", zipfile.ZIP_DEFLATED)
            for name in ("export.zip", "tampered.zip")]
    outs = [zf.open("entries.jsonl", "w", force_zip64=True) for zf in zips]
    for row in chain(tid, 0, GENESIS, n):
        last = {**hashed_fields(row), "hash": row["hash"]}
        line = (json.dumps(last, ensure_ascii=False, sort_keys=True) + "\n").encode()
        digest.update(line)
        outs[0].write(line)
        if row["seq"] == middle:
            line = line.replace(b'"action": "', b'"action": "x', 1)
        outs[1].write(line)
    for out in outs:
        out.close()
    assert last is not None
    pub = public_key_b64(key)
    manifest = {
        "format": FORMAT, "tenant_id": tid, "tenant": "bench", "exported_at": "-",
        "exported_by": "bench", "since": None, "until": None, "count": n, "first_seq": 1,
        "last_seq": last["seq"], "start_prev_hash": GENESIS, "last_hash": last["hash"],
        "files": {"entries.jsonl": digest.hexdigest(),
                  "entries.csv": hashlib.sha256(b"").hexdigest(),
                  "checkpoints.jsonl": hashlib.sha256(b"").hexdigest()},
        "public_key": pub, "key_id": key_id(pub),
    }
    body = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2).encode()
    for zf in zips:
        zf.writestr("entries.csv", b"")
        zf.writestr("checkpoints.jsonl", b"")
        zf.writestr("manifest.json", body)
        zf.writestr("manifest.sig", base64.b64encode(key.sign(body)))
        zf.close()
    return time.perf_counter() - t0, middle


def verify_file(path: str) -> dict[str, Any]:
    """Time verify_export on one zip in this (fresh) process."""
    from core.audit_verify import verify_export

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    verdict = verify_export(path)
    return {"seconds": round(time.perf_counter() - t0, 2), "verdict": verdict.describe(),
            "seq": verdict.seq, "problem": verdict.problem, "ok": verdict.ok,
            "checked": verdict.checked, "peak_rss_mb": peak_rss_mb(),
            "load_1m": f"{load:.2f}->{os.getloadavg()[0]:.2f}"}


async def measure_export(n: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            build_s, middle = await loop.run_in_executor(pool, build_export, folder, n)
        size = (Path(folder) / "export.zip").stat().st_size
        results = []
        for name in ("export.zip", "tampered.zip"):
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                results.append(await loop.run_in_executor(
                    pool, verify_file, str(Path(folder) / name)))
    intact, tampered = results
    if not intact["ok"] or intact["checked"] != n:
        raise SystemExit(f"unexpected verdict on the intact export: {intact['verdict']}")
    return {
        "entries": n, "build_s": round(build_s, 1), "zip_mb": round(size / 2**20, 1),
        "verify_s": intact["seconds"], "entries_per_s": round(n / intact["seconds"]),
        "peak_rss_mb": intact["peak_rss_mb"], "verdict": intact["verdict"],
        "tampered_seq": middle, "tampered_verdict": tampered["verdict"],
        "tampered_verify_s": tampered["seconds"],
        "tamper_found_at_entry": (tampered["seq"], tampered["problem"]) == (middle, "changed"),
        "load_1m": intact["load_1m"],
    }


def run_engine(settings_env: dict[str, str], n: int, super_url: str = "") -> dict[str, Any]:
    """One engine's measurement in a fresh process, so its peak RSS is its own."""
    return asyncio.run(measure(settings_env, n, super_url))


async def in_child(settings_env: dict[str, str], n: int, super_url: str = "") -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await loop.run_in_executor(pool, run_engine, settings_env, n, super_url)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000,
                        help="entries in the tenant's chain (default 1000000)")
    parser.add_argument("--postgres", default="", help="admin URL: also run on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--export", action="store_true",
                        help="also time the standalone verifier on an export of n entries")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            results["sqlite"] = await in_child({"XINDAI_DATA_DIR": tmp}, args.n)
        if args.postgres:
            env, name = await postgres_env(args.postgres)
            super_url = args.postgres.rsplit("/", 1)[0] + "/" + name
            try:
                results["postgres"] = await in_child({"XINDAI_DATA_DIR": tmp, **env}, args.n,
                                                     super_url)
            finally:
                import asyncpg

                conn = await asyncpg.connect(args.postgres)
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                await conn.close()
    if args.export:
        results["export"] = await measure_export(args.n)
    print(f"n={args.n} entries; target: verify under 30 s for 1,000,000")
    for engine, figures in results.items():
        print(f"{engine:9} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    if args.save:
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"audit_verify_{time.strftime('%Y%m%d_%H%M%S')}.json"
        path.write_text(json.dumps({"n": args.n, **results}, indent=2, ensure_ascii=False))
        print(f"saved {path}")
    if not all(f["tamper_found_at_entry"] for f in results.values()):
        raise SystemExit("the tampered entry was not named by the verdict")


if __name__ == "__main__":
    asyncio.run(main())
