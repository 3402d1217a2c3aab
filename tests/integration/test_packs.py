"""Tenant packs: the demo loads, a tenant round-trips through export, and broken packs are
refused with the file and line, leaving nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core import records
from core.packs import PackError, apply_pack, export_pack, load_pack
from core.tables import Tenant
from tests.conftest import ROOT, SMALL_PACK


async def test_demo_pack_loads_synthetic_shanxi_customers(kernel: Any) -> None:
    from core.tables import Role, User
    from core.tenancy import Context, tenant_scope

    info, passwords = await apply_pack(load_pack(ROOT / "tenants" / "demo"), slug="demo-copy")
    ctx = Context.system(info)
    page = await records.list_records(ctx, "customer", per_page=200)
    assert page.total == 120
    kinds = {r["kind"] for r in page.items}
    assert kinds == {"individual", "company"}
    assert all(r["region"].startswith("14") for r in page.items)  # Shanxi
    assert all("*" in r["mobile"] for r in page.items)
    assert sum(1 for r in page.items if r.get("wechat_id")) > 10
    assert set(passwords) == {"admin", "officer", "officer2", "reviewer", "manager", "finance",
                              "collector", "gm", "compliance"}
    assert all(len(p) >= 12 for p in passwords.values())
    async with tenant_scope(ctx):
        assert await Role.count().where(Role.tenant_id == info.id).run() == 8
        assert await User.count().where(User.tenant_id == info.id).run() == 9


async def test_export_round_trips_to_the_same_pack(kernel: Any, tmp_path: Path) -> None:
    first, _ = await apply_pack(load_pack(SMALL_PACK), slug="rt-a")
    await export_pack("rt-a", tmp_path / "a")
    second, _ = await apply_pack(load_pack(tmp_path / "a"), slug="rt-b")
    await export_pack("rt-b", tmp_path / "b")

    def read(folder: Path) -> dict[str, Any]:
        doc = yaml.safe_load((folder / "pack.yaml").read_text(encoding="utf-8"))
        doc["tenant"].pop("slug")
        return doc

    assert read(tmp_path / "a") == read(tmp_path / "b")
    a_rows = yaml.safe_load((tmp_path / "a" / "customers.yaml").read_text(encoding="utf-8"))
    b_rows = yaml.safe_load((tmp_path / "b" / "customers.yaml").read_text(encoding="utf-8"))
    assert a_rows == b_rows and len(a_rows) == 2
    assert {r["resident_id"] for r in a_rows if "resident_id" in r} == {"11010519491231002X"}
    assert read(tmp_path / "a")["fields"]["customer"][0]["key"] == "wechat_id"


async def test_the_demo_tenant_exports_to_a_pack_that_loads(kernel: Any, demo: Any,
                                                             tmp_path: Path) -> None:
    """Every section of a full tenant (products, workflows, scorecards, templates, records)
    is written as YAML a new tenant loads; applications, like loans, stay out."""
    from core.tenancy import Context

    info, _ = demo  # shared: other tests may have added customers to it
    source = await records.list_records(Context.system(info), "customer", per_page=1)
    await export_pack(info.slug, tmp_path / "demo")
    doc = yaml.safe_load((tmp_path / "demo" / "pack.yaml").read_text(encoding="utf-8"))
    assert doc["products"] and "application" not in doc["records"]
    copy, _ = await apply_pack(load_pack(tmp_path / "demo"), slug=f"copy-{info.slug}")
    page = await records.list_records(Context.system(copy), "customer", per_page=1)
    assert page.total == source.total >= 120


def write_pack(folder: Path, pack: str, customers: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text(pack, encoding="utf-8")
    if customers is not None:
        (folder / "customers.yaml").write_text(customers, encoding="utf-8")
    return folder


HEAD = """format: 1
tenant:
  slug: broken
  name: 坏包
  plugins: [crm]
"""


@pytest.mark.parametrize("pack,customers,where,words", [
    (HEAD + "roles:\n  - name: x\n    permissions: [customer.read\n", None,
     "pack.yaml:", "YAML"),
    (HEAD + "products:\n  - name: x\n", None, "pack.yaml:6", "products"),
    (HEAD + "records:\n  customer: customers.yaml\n",
     "- kind: individual\n  name: 甲\n  resident_id: '110105194912310021'\n"
     "- kind: individual\n  name: 乙\n  resident_id: '11010519491231002X'\n  colour: red\n",
     "customers.yaml:3", "身份证号校验位错误"),
    (HEAD + "records:\n  customer: customers.yaml\n",
     "- kind: company\n  name: 丙公司\n  credit_code: '91110000600037341L'\n"
     "- kind: individual\n  name: 丁\n  resident_id: '11010519491231002X'\n  colour: red\n",
     "customers.yaml:7", "colour"),
    (HEAD + "fields:\n  customer:\n    - key: size\n      type: shoe\n", None,
     "pack.yaml:9", "shoe"),
    (HEAD + "roles:\n  - name: r\n    permissions: [loan.fly]\n", None,
     "pack.yaml:8", "loan.fly"),
    (HEAD.replace("[crm]", "[crm, teleport]"), None, "pack.yaml:5", "teleport"),
    (HEAD + "  timezone: Mars/Olympus\n", None, "pack.yaml:6", "Mars/Olympus"),
])
async def test_broken_packs_name_file_and_line_and_write_nothing(
    kernel: Any, tmp_path: Path, pack: str, customers: str | None, where: str, words: str
) -> None:
    folder = write_pack(tmp_path / "p", pack, customers)
    with pytest.raises(PackError) as info:
        await apply_pack(load_pack(folder))
    message = str(info.value)
    assert where in message and words in message, message
    assert not await Tenant.exists().where(Tenant.slug == "broken").run()


async def test_a_failing_record_rolls_back_everything(kernel: Any, tmp_path: Path) -> None:
    good = "\n".join(f"- kind: company\n  name: 公司{i}\n  credit_code: '91110000600037341L'"
                     for i in range(5))
    folder = write_pack(tmp_path / "p", HEAD + "records:\n  customer: customers.yaml\n",
                        good + "\n- kind: company\n  name: 坏公司\n  credit_code: 'X'\n")
    with pytest.raises(PackError) as info:
        await apply_pack(load_pack(folder))
    assert "customers.yaml:18" in str(info.value)
    assert not await Tenant.exists().where(Tenant.slug == "broken").run()


async def test_an_existing_slug_is_refused(kernel: Any) -> None:
    await apply_pack(load_pack(SMALL_PACK), slug="twice")
    with pytest.raises(PackError) as info:
        await apply_pack(load_pack(SMALL_PACK), slug="twice")
    assert "twice" in str(info.value)
