"""Benchmark of the document store: prints figures, asserts nothing.

    .venv/bin/python tests/bench/bench_documents.py [--mib 20] [--rounds 3]

`--mib` at most 20: the demo server runs with the default upload limit (20 MiB).

1. The chunk format alone (core.docstore Encryptor / Decryptor on one core): MiB/s to
   encrypt and to decrypt `--mib` MiB.
2. A real server (`xindai demo` as a subprocess on a free port, SQLite under a temporary
   data dir): upload a `--mib` MiB PDF-looking file over HTTP as the demo officer
   (multipart, streamed), download it, and compare; prints seconds and MiB/s each way and
   the server process's peak resident memory (VmHWM) before and after, which shows that
   neither direction holds the file in memory (growth well below the file size).

Outside the pass/fail suite on purpose: timings are figures, not assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def format_figures(mib: int) -> None:
    from core.crypto import TenantKeys
    from core.docstore import Decryptor, Encryptor

    keys = TenantKeys(uuid.uuid4(), {1: os.urandom(32)})
    doc = uuid.uuid4()
    plain = os.urandom(mib * 1024 * 1024)
    piece = 64 * 1024
    start = time.perf_counter()
    sealer = Encryptor(keys, doc)
    sealed = b"".join(sealer.feed(plain[i:i + piece]) for i in range(0, len(plain), piece)) \
        + sealer.finish()
    enc = time.perf_counter() - start
    start = time.perf_counter()
    opener = Decryptor(keys, doc)
    out = b"".join(opener.feed(sealed[i:i + 256 * 1024])
                   for i in range(0, len(sealed), 256 * 1024)) + opener.finish()
    dec = time.perf_counter() - start
    assert out == plain
    print(f"format: encrypt {mib / enc:,.0f} MiB/s, decrypt {mib / dec:,.0f} MiB/s "
          f"({mib} MiB, overhead {len(sealed) - len(plain)} bytes)")


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def http_figures(mib: int, rounds: int) -> None:
    import httpx

    from tests.e2e.test_demo import free_port, start_demo, stop

    port = free_port()
    proc, logins = start_demo(Path(tempfile.mkdtemp(prefix="xindai-bench-docs-")), port)
    base = f"http://127.0.0.1:{port}/api/v1"
    content = b"%PDF-1.7\n" + os.urandom(mib * 1024 * 1024 - 9)
    digest = hashlib.sha256(content).hexdigest()
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            token = client.post("/auth/login", json={
                "tenant": "demo", "username": "officer", "password": logins["officer"]}).json()
            headers = {"Authorization": f"Bearer {token['token']}"}
            customer = client.get("/customers", headers=headers).json()["items"][0]["id"]
            before = _peak_rss_mib(proc.pid)
            for n in range(rounds):
                start = time.perf_counter()
                r = client.post(f"/customers/{customer}/documents", headers=headers,
                                data={"kind": "bank_statement"},
                                files={"file": ("流水.pdf", content, "application/pdf")})
                up = time.perf_counter() - start
                assert r.status_code == 201, r.text
                start = time.perf_counter()
                h = hashlib.sha256()
                with client.stream("GET", f"/customers/{customer}/documents/"
                                   f"{r.json()['id']}", headers=headers) as response:
                    for piece in response.iter_bytes():
                        h.update(piece)
                down = time.perf_counter() - start
                assert h.hexdigest() == digest
                print(f"http round {n + 1}: upload {up:.2f} s ({mib / up:,.0f} MiB/s), "
                      f"download {down:.2f} s ({mib / down:,.0f} MiB/s), byte-identical")
            after = _peak_rss_mib(proc.pid)
            print(f"server peak RSS: {before:,.0f} MiB before, {after:,.0f} MiB after "
                  f"{rounds} uploads and downloads of {mib} MiB (growth {after - before:,.0f} "
                  "MiB)")
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    format_figures(args.mib)
    http_figures(args.mib, args.rounds)


if __name__ == "__main__":
    main()
