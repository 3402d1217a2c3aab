"""The `products` section of a tenant pack: loan products by code, loaded all or nothing
with the pack, and exported back in the same shape."""

from __future__ import annotations

from typing import Any

from core.declarations import PackSource
from core.errors import ValidationFailed
from core.packs import PackError
from core.tenancy import Context
from plugins.servicing import products


async def load_products(ctx: Context, data: Any, source: PackSource) -> None:
    """`products: {CODE: {name: ..., active: true, config: {...}}}`."""
    if not isinstance(data, dict):
        raise PackError(source.path, source.lines.get("products"),
                        "products 应为“代码: 产品”的映射 / products must map codes to products")
    lines = getattr(data, "key_lines", {}) or {}
    for code, spec in data.items():
        line = lines.get(code) or source.lines.get("products")
        if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
            raise PackError(source.path, line, f"产品 {code} 需要 name 和 config / product "
                            f"{code} needs a name and a config")
        try:
            await products.save_product(ctx, str(code), str(spec.get("name") or code),
                                        spec["config"], bool(spec.get("active", True)))
        except ValidationFailed as exc:
            raise PackError(source.path, line, f"产品 {code}：" + "；".join(
                e.message("zh-CN") for e in exc.errors) + " / product " + f"{code}: " + "; ".join(
                e.message("en") for e in exc.errors)) from None


async def export_products(ctx: Context) -> Any:
    rows = await products.list_products(ctx)
    return {r["code"]: {"name": r["name"], "active": r["active"], "config": r["config"]}
            for r in rows} or None
