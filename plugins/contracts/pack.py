"""The `contract_templates` section of a tenant pack: a template per product code (`*` is
the default), given inline (`body`) or as a file next to pack.yaml (`file`); checked like
a template saved in the editor, all or nothing with the pack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.declarations import PackSource
from core.errors import ValidationFailed
from core.packs import PackError
from core.tenancy import Context
from plugins.contracts import library


async def load_templates(ctx: Context, data: Any, source: PackSource) -> None:
    """`contract_templates: {PRODUCT|"*": {name?, body | file}}`."""
    if not isinstance(data, dict):
        raise PackError(source.path, source.lines.get("contract_templates"),
                        "contract_templates 应为“产品代码: 模板”的映射 / contract_templates "
                        "must map product codes to templates")
    lines = getattr(data, "key_lines", {}) or {}
    folder = Path(source.path).parent
    for product, spec in data.items():
        line = lines.get(product) or source.lines.get("contract_templates")
        if not isinstance(spec, dict) or not (spec.get("body") or spec.get("file")):
            raise PackError(source.path, line, f"合同模板 {product} 需要 body 或 file / "
                            f"contract template {product} needs a body or a file")
        body = spec.get("body")
        if not body:
            path = (folder / str(spec["file"])).resolve()
            if folder.resolve() not in path.parents or not path.is_file():
                raise PackError(source.path, line, f"找不到模板文件 / template file not "
                                f"found: {spec['file']}")
            body = path.read_text(encoding="utf-8")
        try:
            await library.save_template(ctx, str(product), str(body), spec.get("name") or "")
        except ValidationFailed as exc:
            raise PackError(source.path, line, f"合同模板 {product}：" + "；".join(
                e.message("zh-CN") for e in exc.errors) + f" / contract template {product}: "
                + "; ".join(e.message("en") for e in exc.errors)) from None


async def export_templates(ctx: Context) -> Any:
    rows = await library.list_templates(ctx)
    return {r["product"]: {"name": r["name"], "body": r["body"]} for r in rows} or None
