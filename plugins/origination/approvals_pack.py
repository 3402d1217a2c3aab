"""The `workflows:` section of a tenant pack: approval workflows as data.

Each item is a workflow definition (docs/workflows.md) plus its selection: `subject`
(what it approves, default `application`), an optional `when` condition and `priority`.
A refused item names the pack's file and the line of the offending step or key.
"""

from __future__ import annotations

import re
from typing import Any

from core.declarations import PackSource
from core.errors import ValidationFailed
from core.tenancy import Context
from plugins.origination import approvals
from plugins.origination.errors import DefinitionError, Problem

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _line_of(node: Any) -> int | None:
    return getattr(node, "line", None)


def locate(item: Any, p: Problem) -> int | None:
    """The line of a problem inside a pack item: its step, then the path of its field."""
    node, line = item, _line_of(item)
    if p.step and isinstance(item, dict):
        for step in item.get("steps") or []:
            if isinstance(step, dict) and step.get("id") == p.step:
                node, line = step, _line_of(step) or line
                break
    for key, index in _TOKEN.findall(p.field or ""):
        if key and isinstance(node, dict) and key in node:
            line = getattr(node, "key_lines", {}).get(key, line)
            node = node[key]
        elif index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
            line = _line_of(node) or line
        else:
            break
    return line


async def load(ctx: Context, value: Any, source: PackSource) -> None:
    from core.packs import PackError

    if not isinstance(value, list):
        raise PackError(source.path, source.lines.get("workflows"),
                        "workflows 应为列表 / workflows must be a list")
    for i, item in enumerate(value):
        try:
            if not isinstance(item, dict):
                raise DefinitionError([approvals.problem(
                    "bad_definition", "工作流定义应为一个对象",
                    "a workflow definition must be an object")])
            await approvals.check_workflow(ctx, item)
        except DefinitionError as exc:
            first = exc.problems[0]
            line = locate(item, first) or source.lines.get("workflows")
            raise PackError(source.path, line, f"workflows[{i}]: "
                            + "；".join(p.zh for p in exc.problems) + " / "
                            + "; ".join(p.en for p in exc.problems)) from None
        try:
            await approvals.save_workflow(ctx, item, keep_version=True)
        except ValidationFailed as exc:  # e.g. the same id and version twice
            raise PackError(source.path, _line_of(item), f"workflows[{i}]: "
                            f"{exc.errors[0].message('zh-CN')} / "
                            f"{exc.errors[0].message('en')}") from None


async def export(ctx: Context) -> list[dict[str, Any]]:
    """The active version of each workflow (what a new tenant would start with)."""
    return [approvals.export_data(v) for v in await approvals.workflows(ctx) if v.active]
