"""The `workflows:` section of tenant packs: the demo pack's workflow is the engine's
DEMO_WORKFLOW, a pack round-trips through export, and a bad definition is refused with the
pack's file and the line of the offending step or key, creating no tenant."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.packs import PackError, apply_pack, load_pack
from core.tables import Tenant
from core.tenancy import Context
from plugins.origination import approvals
from plugins.origination.definition import parse_definition, to_data
from plugins.origination.examples import DEMO_WORKFLOW
from tests.conftest import ROOT

BASE = """format: 1
tenant:
  slug: {slug}
  name: 测试审批
  business_date: 2026-11-20
  plugins: [crm, origination]
workflows:
"""

GOOD = """  - subject: application
    id: quick
    version: 3
    name: 快审
    when: {field: amount, op: lt, value: "50000"}
    priority: 10
    steps:
      - id: check
        assignees: {roles: [risk_reviewer]}
"""

UNREACHABLE = """  - id: broken
    version: 1
    steps:
      - id: first
        assignees: {roles: [risk_reviewer]}
        next: approved
      - id: orphan
        assignees: {roles: [branch_manager]}
"""

UNKNOWN_FIELD = """  - id: colours
    version: 1
    steps:
      - id: first
        assignees: {roles: [risk_reviewer]}
        next:
          - when:
              field: colour
              op: eq
              value: red
            to: approved
          - to: rejected
"""


def write(tmp_path: Path, body: str) -> tuple[Path, str]:
    slug = f"wf-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "pack.yaml"
    path.write_text(BASE.format(slug=slug) + body, encoding="utf-8")
    return path, slug


async def test_the_demo_pack_carries_the_demo_workflow(kernel: Any, demo: Any) -> None:
    tenant, _ = demo
    assert "origination" in tenant.plugins
    found = [v for v in await approvals.workflows(Context.system(tenant)) if v.active]
    assert [(v.key, v.version, v.subject) for v in found] == [
        ("loan_approval", 1, "application")]
    assert found[0].data == to_data(parse_definition(DEMO_WORKFLOW))
    section = yaml.safe_load((ROOT / "tenants" / "demo" / "pack.yaml").read_text())
    assert section["workflows"][0] == {"subject": "application", **DEMO_WORKFLOW}


async def test_a_pack_loads_and_exports_its_workflows(kernel: Any, tmp_path: Path) -> None:
    path, _ = write(tmp_path, GOOD)
    info, _ = await apply_pack(load_pack(path))
    ctx = Context.system(info)
    [v] = await approvals.workflows(ctx)
    assert (v.key, v.version, v.priority, v.selector_data) == (
        "quick", 3, 10, {"field": "amount", "op": "lt", "value": "50000"})
    data = approvals.export_data(v)
    assert data["subject"] == "application" and data["when"]["value"] == "50000"
    # what export gives is what a pack takes back
    again, _ = write(tmp_path, yaml.safe_dump([data], allow_unicode=True))
    info2, _ = await apply_pack(load_pack(again))
    [v2] = await approvals.workflows(Context.system(info2))
    assert (v2.data, v2.selector_data, v2.priority) == (v.data, v.selector_data, v.priority)


@pytest.mark.parametrize(("body", "line", "words"), [
    (UNREACHABLE, 14, ["workflows[0]", "orphan", "从开始无法到达", "unreachable"]),
    (UNKNOWN_FIELD, 15, ["未知字段“colour”", "unknown field 'colour'"]),
    ("  - {id: x, version: 1, steps: []}\n", 8, ["须至少有一个步骤"]),
    ("  oops: 1\n", 7, ["workflows 应为列表"]),
])
async def test_bad_workflows_name_the_pack_line(kernel: Any, tmp_path: Path, body: str,
                                                line: int, words: list[str]) -> None:
    path, slug = write(tmp_path, body)
    with pytest.raises(PackError) as exc:
        await apply_pack(load_pack(path))
    assert exc.value.path == str(path) and exc.value.line == line, str(exc.value)
    for word in words:
        assert word in str(exc.value)
    assert not await Tenant.exists().where(Tenant.slug == slug).run()
