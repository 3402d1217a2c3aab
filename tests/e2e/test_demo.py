"""`xindai demo` as a new user runs it (what `make demo` ends in): it migrates, loads the demo
tenant, prints logins, serves the API; a restart keeps the data and prints the same logins."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

XINDAI = str(Path(sys.executable).parent / "xindai")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(data_dir: Path, port: int, settings: dict[str, str] | None = None
               ) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    env.update(settings or {})
    env["XINDAI_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen([XINDAI, "demo", "--port", str(port)], cwd=data_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    logins: dict[str, str] = {}
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.match(r"^\s{2}(\w+)\s+(\S{12,})$", line.rstrip("\n"))
        if m:
            logins[m.group(1)] = m.group(2)
        if "Uvicorn running" in line or "Application startup complete" in line:
            return proc, logins
    proc.kill()
    raise AssertionError("demo did not start:\n" + "".join(seen))


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_demo_starts_serves_and_restarts(tmp_path: Path) -> None:
    port = free_port()
    proc, logins = start_demo(tmp_path, port)
    try:
        assert {"admin", "officer", "reviewer", "compliance"} <= set(logins)
        base = f"http://127.0.0.1:{port}/api/v1"
        token = httpx.post(f"{base}/auth/login", json={
            "tenant": "demo", "username": "officer", "password": logins["officer"]}).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        page = httpx.get(f"{base}/customers", headers=headers, params={"per_page": 5}).json()
        import yaml

        root = Path(__file__).resolve().parents[2]
        rows = yaml.safe_load((root / "tenants/demo/customers.yaml").read_text("utf-8"))
        own = sum(1 for r in rows if r["owner"] == "officer")
        assert page["total"] == own < 120 and len(page["items"]) == 5  # an officer: own only
        assert all("****" in c["mobile"] for c in page["items"])
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "xindai API"
        page = httpx.get(f"{base}/customers", headers=headers, params={"mobile": "13800000000"})
        assert page.status_code == 200
    finally:
        stop(proc)
    log = proc.stdout.read() if proc.stdout else ""
    assert "/api/v1/customers" in log and "13800000000" not in log  # no query strings
    assert (tmp_path / "xindai.sqlite3").is_file()
    assert oct((tmp_path / "master.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "demo-logins.txt").stat().st_mode & 0o777) == "0o600"
    proc, again = start_demo(tmp_path, port)
    stop(proc)
    assert again == logins


def test_secrets_are_not_in_the_database_file(tmp_path: Path) -> None:
    """Grep the raw SQLite file for the demo's ID numbers and mobiles: none in clear."""
    import yaml

    port = free_port()
    proc, _ = start_demo(tmp_path, port)
    stop(proc)
    root = Path(__file__).resolve().parents[2]
    rows = yaml.safe_load((root / "tenants" / "demo" / "customers.yaml").read_text("utf-8"))
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("xindai.sqlite3*"))
    secrets = [r[k] for r in rows for k in ("resident_id", "mobile") if k in r]
    assert len(secrets) > 200
    assert [s for s in secrets if s.encode() in raw] == []
    names = [r["name"] for r in rows]
    assert any(n.encode() in raw for n in names)  # the check can find text that is there
