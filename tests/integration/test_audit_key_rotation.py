"""Rotating the audit signing key: checkpoints signed by the retired key still verify, live
and in exports, because its public key is kept; the retired private key is gone."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from core import audit, records
from core.audit_export import (
    checkpoint,
    export_zip,
    keyring,
    retired_keys_path,
    rotate_signing_key,
)
from core.audit_verify import verify_export
from core.tenancy import tenant_scope
from tests.integration.test_cli import run

CUSTOMER = {"kind": "company", "name": "轮换公司", "credit_code": "91110000600037341L"}


async def test_old_checkpoints_verify_after_a_rotation(kernel: Any, new_tenant: Any,
                                                       tmp_path: Path) -> None:
    ctx = await new_tenant(records=False)
    await records.create(ctx, "customer", CUSTOMER)
    before = await checkpoint(ctx)
    key_file = kernel.settings.audit_key_file
    old_id, new_id = rotate_signing_key(key_file)
    assert old_id == before["key_id"] and new_id != old_id
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    ring = keyring(key_file)
    assert {old_id, new_id} <= set(ring)
    retired = json.loads(retired_keys_path(key_file).read_text())["keys"]
    assert "PRIVATE" not in retired_keys_path(key_file).read_text()  # public keys only
    assert any(k["key_id"] == old_id for k in retired)

    await records.create(ctx, "customer", {**CUSTOMER, "name": "轮换后公司"})
    after = await checkpoint(ctx)
    assert after["key_id"] == new_id
    assert (await audit.verify_tenant(ctx)).ok  # the old checkpoint checks with the old key

    data = await export_zip(ctx)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    assert {old_id, new_id} <= set(manifest["keyring"]) and manifest["key_id"] == new_id
    path = tmp_path / "export.zip"
    path.write_bytes(data)
    assert verify_export(path).ok
    assert verify_export(path, pinned_public_key=ring[new_id]).ok


async def test_a_checkpoint_by_a_key_nobody_vouches_for_fails(kernel: Any, new_tenant: Any,
                                                              tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    import core.audit_export as audit_export

    ctx = await new_tenant(records=False)
    await checkpoint(ctx)
    rotate_signing_key(kernel.settings.audit_key_file)
    async with tenant_scope(ctx):
        await audit.append(ctx, "test.after_rotation")
    # without the retired public key, the earlier checkpoint cannot be checked
    current_only = {k: v for k, v in keyring().items()
                    if k == audit_export.key_id(audit_export.public_key_b64(
                        audit_export._signing_key()))}
    monkeypatch.setattr(audit_export, "keyring", lambda key_file=None: current_only)
    verdict = await audit.verify_tenant(ctx)
    assert not verdict.ok and "checkpoint signature invalid" in verdict.problem


def test_the_cli_rotates_and_signs_every_tenant(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0
    pack = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "small"
    assert run(["tenant", "create", "--pack", str(pack)], tmp_path).returncode == 0
    first = run(["audit", "rotate-key"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "retired" in first.stdout and "1 tenants' heads signed" in first.stdout
    slug = run(["tenant", "list"], tmp_path).stdout.split("\t", 1)[0]
    check = run(["audit", "verify", "--tenant", slug], tmp_path)
    assert check.returncode == 0 and "chain intact" in check.stdout, check.stdout
