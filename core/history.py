"""The change history of one record, from the audit chain, as the reader may see it.

The audit log page (`/audit`, `audit.read`) shows everything to auditors. A record's own
page shows its history to whoever may read the record, so each change is filtered through
the reader's field policies: a field hidden from the reader is left out, a masked field
or a secret one says only that it changed (secret values are keyed digests in the chain
anyway, never clear text). Read-only: reading the history appends nothing.
"""

from __future__ import annotations

import json
from typing import Any

from core import records
from core.access import field_policy
from core.tables import AuditEntry
from core.tenancy import Context, tenant_scope

RECORD_ACTIONS = ("create", "update", "delete")
MAX_TEXT = 120


def _text(f: Any, value: Any, lang: str) -> str:
    if value is None or value == "":
        return ""
    if f is not None and f.options and isinstance(value, str):
        for c in f.options:
            if c.value == value:
                return c.en if lang == "en" else c.zh
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


async def record_history(ctx: Context, entity_name: str, record_id: Any, limit: int = 50
                         ) -> list[dict[str, Any]]:
    """Newest first: {"at", "action", "username", "changes": [{"key", "label", "old",
    "new", "concealed"}]} for the record's create / update / delete entries."""
    record = await records.get(ctx, entity_name, record_id)  # read permission, object rules
    entity = await records.entity_for(ctx, entity_name)
    async with tenant_scope(ctx, write=False):
        rows = await AuditEntry.select(
            AuditEntry.seq, AuditEntry.at, AuditEntry.username, AuditEntry.action,
            AuditEntry.diff).where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.entity == entity.name,
            AuditEntry.record_id == record["id"], AuditEntry.action.is_in(RECORD_ACTIONS),
        ).order_by(AuditEntry.seq, ascending=False).limit(limit).output(load_json=True).run()
    lang = ctx.locale
    out = []
    for row in rows:
        changes = []
        diff = row["diff"] if isinstance(row["diff"], dict) else {}
        for key, change in diff.items():
            f = entity.field(key)
            if f is None:
                continue
            policy = field_policy(ctx, entity, f)
            if policy == "hidden":
                continue
            old, new = change if isinstance(change, list) and len(change) == 2 else (None,
                                                                                      change)
            concealed = f.is_secret or policy == "masked" or any(
                isinstance(v, str) and v.startswith("hmac:") for v in (old, new))
            changes.append({"key": key, "label": f.label(lang), "concealed": concealed,
                            "old": "" if concealed else _text(f, old, lang),
                            "new": "" if concealed else _text(f, new, lang)})
        out.append({"seq": row["seq"], "at": row["at"], "action": row["action"],
                    "username": row["username"] or "", "changes": changes})
    return out
