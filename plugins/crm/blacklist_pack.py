"""The `blacklist:` section of a tenant pack: `[{kind, value, reason}]`. Entries keep only
a digest, so an export cannot give the values back: it exports nothing (the section is
seed data only)."""

from __future__ import annotations

from typing import Any

from core.declarations import PackSource
from core.errors import XindaiError
from core.tenancy import Context


async def load_blacklist(ctx: Context, data: Any, source: PackSource) -> None:
    from core.errors import ValidationFailed
    from core.packs import PackError
    from plugins.crm.blacklist import add

    line = source.lines.get("blacklist")
    if not isinstance(data, list):
        raise PackError(source.path, line, "blacklist 应为列表 / blacklist must be a list")
    for i, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            raise PackError(source.path, line, f"blacklist[{i}] 应为映射 / must be a mapping")
        try:
            await add(ctx, str(entry.get("kind") or ""), entry.get("value"), entry.get("reason"))
        except ValidationFailed as exc:
            raise PackError(source.path, line, f"blacklist[{i}]: " + "；".join(
                e.message("zh-CN") for e in exc.errors) + " / " + "; ".join(
                e.message("en") for e in exc.errors)) from None
        except XindaiError as exc:
            raise PackError(source.path, line, f"blacklist[{i}]: {exc.message('zh-CN')} / "
                            f"{exc.message('en')}") from None


async def export_blacklist(ctx: Context) -> Any:
    return None
