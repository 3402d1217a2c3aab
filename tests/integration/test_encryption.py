"""Secret fields at rest: bound to tenant, entity, field and row; never stored in clear."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from typing import Any

import pytest

from core import records
from core.crypto import DecryptionError, TenantKeys, tenant_keys
from core.kernel import kernel
from core.tenancy import tenant_scope


def test_a_ciphertext_only_decrypts_where_it_was_written() -> None:
    t1, t2 = uuid.uuid4(), uuid.uuid4()
    key = bytes(range(32))
    keys, other_tenant = TenantKeys(t1, {1: key}), TenantKeys(t2, {1: key})
    row, other_row = uuid.uuid4(), uuid.uuid4()
    token = keys.encrypt("customer", "mobile", row, "13800138000")
    assert keys.decrypt("customer", "mobile", row, token) == "13800138000"
    for attempt in (
        lambda: keys.decrypt("customer", "mobile", other_row, token),
        lambda: keys.decrypt("customer", "resident_id", row, token),
        lambda: keys.decrypt("lead", "mobile", row, token),
        lambda: other_tenant.decrypt("customer", "mobile", row, token),
    ):
        with pytest.raises(DecryptionError):
            attempt()
    assert keys.encrypt("customer", "mobile", row, "13800138000") != token  # fresh nonce
    assert keys.blind_index("customer", "mobile", "13800138000") == \
        keys.blind_index("customer", "mobile", "13800138000")
    assert keys.blind_index("customer", "mobile", "13800138000") != \
        other_tenant.blind_index("customer", "mobile", "13800138000")


async def test_a_sealed_value_copied_to_another_row_does_not_decrypt(new_tenant: Any) -> None:
    ctx = await new_tenant()
    entity = await records.entity_for(ctx, "customer")
    t = entity.table
    async with tenant_scope(ctx):
        rows = await t.select(t.id, t.sealed).where(t.tenant_id == ctx.tenant_id) \
            .output(load_json=True).run()
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    a, b = rows
    with pytest.raises(DecryptionError):
        keys.decrypt("customer", "mobile", b["id"], a["sealed"]["mobile"])
    assert keys.decrypt("customer", "mobile", a["id"], a["sealed"]["mobile"]).startswith("1")


@pytest.mark.postgres
async def test_pg_dump_holds_no_secret_in_clear(new_pg_tenant: Any,
                                                pg_database: dict[str, str]) -> None:
    await new_pg_tenant()
    if shutil.which("pg_dump") is None:
        pytest.fail("pg_dump is missing: `make test` installs postgresql-client")
    dump = subprocess.run(["pg_dump", "--data-only", pg_database["super"]],
                          capture_output=True, timeout=120, check=True).stdout
    assert "王小明".encode() in dump  # the dump does hold the (non-secret) records
    for secret in ("11010519491231002X", "13800138000", "13900139000"):
        assert secret.encode() not in dump


async def test_start_refuses_a_master_key_that_does_not_fit(kernel: Any, new_tenant: Any,
                                                            tmp_path: Any) -> None:
    import base64
    import os

    from core import db
    from core import kernel as K
    from core.settings import load_settings
    from tests.conftest import activate

    await new_tenant(records=False)
    env = {"XINDAI_DATA_DIR": str(tmp_path), "XINDAI_DATABASE_URL": kernel.settings.database_url,
           "XINDAI_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    wrong = K.boot(load_settings(env))
    try:
        with pytest.raises(db.DatabaseError) as info:
            await K.start(wrong)
        assert "XINDAI_MASTER_KEY" in str(info.value)
    finally:
        await K.stop(wrong)
        activate(kernel)
