"""The compliance export: a signed zip that a standalone verifier checks, naming the first
entry that was changed, removed, inserted or reordered, and noticing truncation."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core import audit, records
from core.audit_export import checkpoint, export_zip
from core.audit_verify import verify_export
from core.errors import Forbidden
from tests.conftest import as_user


def rewrite_file(data: bytes, target: str, change: Any) -> bytes:
    """A copy of the zip with the bytes of `target` passed through `change`."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            dst.writestr(name, change(body) if name == target else body)
    return out.getvalue()


def rewrite(data: bytes, change: Any) -> bytes:
    """A copy of the zip with entries.jsonl lines passed through `change`."""
    return rewrite_file(data, "entries.jsonl", lambda body: "".join(
        line + "\n" for line in change(body.decode().splitlines())).encode())


async def exported(new_tenant: Any, tmp_path: Path) -> tuple[bytes, list[dict[str, Any]]]:
    ctx = await new_tenant(records=False)
    for i in range(6):
        await records.create(ctx, "customer", {"kind": "company", "name": f"出口{i}",
                                               "credit_code": "91110000600037341L"})
    data = await export_zip(ctx)
    lines = zipfile.ZipFile(io.BytesIO(data)).read("entries.jsonl").decode().splitlines()
    return data, [json.loads(line) for line in lines]


def check(tmp_path: Path, data: bytes, **kw: Any) -> audit.Verdict:
    path = tmp_path / "export.zip"
    path.write_bytes(data)
    return verify_export(path, **kw)


async def test_an_untouched_export_verifies(new_tenant: Any, tmp_path: Path) -> None:
    data, entries = await exported(new_tenant, tmp_path)
    verdict = check(tmp_path, data)
    assert verdict.ok and verdict.checked == len(entries) >= 10
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert names == {"entries.jsonl", "entries.csv", "checkpoints.jsonl", "manifest.json",
                     "manifest.sig"}
    csv_text = zipfile.ZipFile(io.BytesIO(data)).read("entries.csv").decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("seq,at,username")
    assert "出口0" in csv_text


@pytest.mark.parametrize("kind,expected", [
    ("change", (4, "changed")),
    ("remove", (4, "removed")),
    ("insert", (4, "inserted_or_reordered")),
    ("reorder", (4, "inserted_or_reordered")),
])
async def test_tampered_exports_name_the_entry(new_tenant: Any, tmp_path: Path, kind: str,
                                               expected: tuple[int, str]) -> None:
    data, entries = await exported(new_tenant, tmp_path)
    i = 3  # the fourth entry (seq 4)

    def change(lines: list[str]) -> list[str]:
        lines = list(lines)
        if kind == "change":
            row = json.loads(lines[i])
            row["action"] = "nothing-happened"
            lines[i] = json.dumps(row, ensure_ascii=False, sort_keys=True)
        elif kind == "remove":
            del lines[i]
        elif kind == "insert":
            lines.insert(i, lines[i - 1])
        else:
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        return lines

    verdict = check(tmp_path, rewrite(data, change))
    assert not verdict.ok
    assert (verdict.seq, verdict.problem) == expected, verdict


async def test_a_truncated_export_is_caught(new_tenant: Any, tmp_path: Path) -> None:
    data, entries = await exported(new_tenant, tmp_path)
    verdict = check(tmp_path, rewrite(data, lambda lines: lines[:-2]))
    assert not verdict.ok and verdict.problem == "truncated"
    assert verdict.seq == entries[-2]["seq"]


async def test_signatures_are_checked(new_tenant: Any, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from core.audit_export import public_key_b64

    data, _ = await exported(new_tenant, tmp_path)
    other = public_key_b64(Ed25519PrivateKey.generate())
    assert check(tmp_path, data, pinned_public_key=other).problem.startswith("signed with")
    forged = rewrite_file(data, "manifest.json",
                          lambda body: body.replace(b'"count": ', b'"count": 1'))
    assert check(tmp_path, forged).problem == "manifest signature invalid"


async def test_only_compliance_may_export(demo: Any) -> None:
    tenant, _ = demo
    with pytest.raises(Forbidden):
        await export_zip(await as_user(tenant, "officer"))
    data = await export_zip(await as_user(tenant, "compliance"))
    assert data[:2] == b"PK"


async def test_checkpoints_are_signed_heads(new_tenant: Any, tmp_path: Path) -> None:
    ctx = await new_tenant(records=False)
    first = await checkpoint(ctx)
    await audit.append(ctx, "probe")
    second = await checkpoint(ctx)
    assert second["seq"] == first["seq"] + 1 and second["hash"] != first["hash"]
    data = await export_zip(ctx)
    cps = zipfile.ZipFile(io.BytesIO(data)).read("checkpoints.jsonl").decode().splitlines()
    assert len(cps) >= 2
    assert check(tmp_path, data).ok


async def test_pruning_keeps_six_months_and_a_verifiable_chain(
    request: pytest.FixtureRequest, kernel: Any, new_tenant: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from core import db
    from core.audit_export import prune

    ctx = await new_tenant(records=False)
    for i in range(5):
        await audit.append(ctx, "probe", "probe", i)
    base = await checkpoint(ctx)
    for i in range(3):
        await audit.append(ctx, "later", "probe", i)
    owner = None
    if db.is_postgres(kernel.engine):  # pruning needs the owner role there
        owner = db.make_engine(request.getfixturevalue("pg_database")["owner"])
        await db.open_engine(owner, 1)
        db.bind(owner)
    try:
        now = datetime.now(UTC)
        assert await prune(ctx, now + timedelta(days=150)) == 0  # under six months: keep
        deleted = await prune(ctx, now + timedelta(days=200))
    finally:
        if owner is not None:
            db.bind(kernel.engine)
            await db.close_engine(owner)
    assert deleted == base["seq"]
    verdict = await audit.verify_tenant(ctx)
    assert verdict.ok and verdict.checked == 3 + 1  # the three later ones and the prune entry


async def test_the_app_role_cannot_prune(pg: Any, new_pg_tenant: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from core.audit_export import prune

    ctx = await new_pg_tenant(records=False)
    await checkpoint(ctx)
    await audit.append(ctx, "probe")
    with pytest.raises(Exception) as info:
        await prune(ctx, datetime.now(UTC) + timedelta(days=400))
    assert "permission denied" in str(info.value)
    assert (await audit.verify_tenant(ctx)).ok


async def test_line_separators_inside_values_and_unreadable_lines(new_tenant: Any,
                                                                   tmp_path: Path) -> None:
    """Entries are one a line split at \\n only: U+2028 or U+0085 inside a value (json
    writes them unescaped) verify; a line that is not an entry is named, not a crash."""
    ctx = await new_tenant(records=False)
    await audit.append(ctx, "probe", "probe", 1, {"note": [None, "甲\u2028乙\x85丙\u2029"]})
    await audit.append(ctx, "probe", "probe", 2, {"n": [1.5, 1e16]})
    data = await export_zip(ctx)
    verdict = check(tmp_path, data)
    assert verdict.ok, verdict
    lines = zipfile.ZipFile(io.BytesIO(data)).read("entries.jsonl").decode().split("\n")
    broken = check(tmp_path, rewrite(data, lambda _: [*lines[:3], "{not json", *lines[4:-1]]))
    assert not broken.ok and broken.checked == 3
    assert broken.problem.startswith("not a readable export: entries.jsonl line 4")
