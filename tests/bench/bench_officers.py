"""Load benchmark: 50 loan officers searching customers and working the approval inbox.

    .venv/bin/python tests/bench/bench_officers.py [--postgres URL] [--users 50]
        [--seconds 60] [--customers 10000] [--approvals 300] [--save]

Seeds a scratch PostgreSQL database (row-level security on, the app's own role) with one
tenant: `--customers` customers (names, resident IDs and mobiles encrypted, blind-indexed),
`--users` officers who are also risk reviewers, and `--approvals` applications waiting for
the risk review (so every officer's inbox holds all of them). Then serves the app with
`xindai serve` (one process, no in-process worker) and runs the locust scenario
`tests/load/locustfile.py` headless against it, and prints p50/p95/p99 per request type.
The issue's target: p95 under 150 ms for the inbox and the customer search.
Outside the pass/fail suite on purpose: timings are figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import drop_database, postgres_env, report  # noqa: E402
from bench_write_path import customer  # noqa: E402

PASSWORD = "bench-password-1"


def pack_yaml(users: int) -> str:
    from plugins.origination.examples import DEMO_WORKFLOW

    lines = ["format: 1", "tenant:", "  slug: load", "  name: 压测小贷", "  business_date: 2026-11-20",
             "  plugins: [crm, servicing, origination]", "users:"]
    for i in range(1, users + 1):
        lines.append(f"  - {{username: officer{i:02d}, display_name: 客户经理{i:02d}, "
                     f"roles: [loan_officer, risk_reviewer], password: {PASSWORD}}}")
    workflow = {**DEMO_WORKFLOW, "subject": "application"}
    lines.append("workflows:")
    lines.append("  - " + json.dumps(workflow, ensure_ascii=False, default=str))
    return "\n".join(lines) + "\n"


async def seed(env: dict[str, str], args: argparse.Namespace, tokens_path: Path) -> dict[str, float]:
    from core import identity, records
    from core import kernel as K
    from core.packs import apply_pack, load_pack
    from core.settings import load_settings
    from core.tenancy import Context
    from plugins.origination import approvals

    k = K.boot(load_settings(env))
    await K.migrate(k)
    await K.start(k)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "pack.yaml").write_text(pack_yaml(args.users))
            info, _ = await apply_pack(load_pack(tmp))
        ctx = Context.system(info)
        t0 = time.perf_counter()
        for i in range(args.customers):
            await records.create(ctx, "customer", customer(i))
        seeded_customers_s = time.perf_counter() - t0
        for i in range(args.approvals):
            amount = Decimal(10000 + (i * 137) % 89000)  # under 100,000: the risk review
            await approvals.start(ctx, subject="application", subject_id=uuid.uuid4(),
                                  facts={"amount": amount, "product": "JY01"},
                                  submitted_by="intake", title=f"进件 LOAD-{i:05d} · {amount} 元",
                                  link="")
        tokens = [(await identity.login("load", f"officer{i:02d}", PASSWORD, "zh-CN"))[0]
                  for i in range(1, args.users + 1)]
        tokens_path.write_text(json.dumps({"tokens": tokens}))
        return {"seed_customers_s": round(seeded_customers_s, 1)}
    finally:
        await K.stop(k)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer {url}")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def run_load(env: dict[str, str], args: argparse.Namespace, tokens: Path, out: Path
             ) -> dict[str, dict[str, float]]:
    port = free_port()
    server_env = {**os.environ, **env, "XINDAI_LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port),
                               "--no-jobs"], cwd=ROOT, env=server_env)
    try:
        wait_up(f"http://127.0.0.1:{port}/api/v1/health")
        locust_env = {**os.environ, "LOAD_TOKENS": str(tokens),
                      "LOAD_CUSTOMERS": str(args.customers)}
        subprocess.run([sys.executable, "-m", "locust", "-f",
                        str(ROOT / "tests" / "load" / "locustfile.py"), "--headless",
                        "-u", str(args.users), "-r", str(max(args.users // 5, 1)),
                        "-t", f"{args.seconds}s", "--host", f"http://127.0.0.1:{port}",
                        "--csv", str(out), "--only-summary", "--loglevel", "WARNING"],
                       cwd=ROOT, env=locust_env, check=False)
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    figures: dict[str, dict[str, float]] = {}
    with open(f"{out}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            figures[row["Name"]] = {
                "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1), "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]), "p99_ms": float(row["99%"])}
    figures.setdefault("Aggregated", {})["server_peak_rss_mb"] = rss
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--approvals", type=int, default=300)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    env, name = await postgres_env(args.postgres)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings_env = {"XINDAI_DATA_DIR": tmp, **env}
            tokens = Path(tmp) / "tokens.json"
            seeded = await seed(settings_env, args, tokens)
            print(f"seeded {args.customers} customers in {seeded['seed_customers_s']} s, "
                  f"{args.approvals} open approvals, {args.users} officers")
            figures = await asyncio.to_thread(run_load, settings_env, args, tokens,
                                              Path(tmp) / "locust")
    finally:
        await drop_database(args.postgres, name)
    report("officers", figures, save=args.save, users=args.users, seconds=args.seconds,
           customers=args.customers, approvals=args.approvals)


if __name__ == "__main__":
    asyncio.run(main())
