"""Domain events: `emit` writes the event to the outbox in the writer's transaction.

The event exists exactly when the change committed; the relay and workers deliver it to
the subscriptions of the plugins enabled for the tenant (core.outbox), each handler once in
effect. A subscription to "*" receives every event (the kernel's webhooks use it).
"""

from __future__ import annotations

import uuid
from typing import Any

from core.tenancy import Context


async def emit(ctx: Context, event: str, payload: dict[str, Any]) -> uuid.UUID:
    """Record `event` for delivery after commit; returns its id (the webhook delivery id)."""
    from core.outbox import EVENT, write

    return await write(ctx, EVENT, event, payload)


async def emit_many(ctx: Context, event: str, payloads: list[dict[str, Any]]) -> int:
    """Record one `event` per payload in one bulk write (e.g. the nightly close's reminders)."""
    from core.outbox import EVENT, write_many

    return await write_many(ctx, EVENT, event, payloads)
