"""Domain events: `emit` writes the event to the outbox in the writer's transaction.

The event exists exactly when the change committed; the relay and workers deliver it to
the subscriptions of the plugins enabled for the tenant (core.outbox), each handler once in
effect. A subscription to "*" receives every event (the kernel's webhooks use it).

An event whose payload carries a `notify` key also notifies people in the app
(core.notifications), here, in the same transaction: the notification exists exactly when
the change does, and the thousands of events without one (the nightly close's) cost no
delivery work for it.
"""

from __future__ import annotations

import uuid
from typing import Any

from core.tenancy import Context


async def emit(ctx: Context, event: str, payload: dict[str, Any]) -> uuid.UUID:
    """Record `event` for delivery after commit; returns its id (the webhook delivery id)."""
    from core.notifications import NOTIFY_KEY, on_event
    from core.outbox import EVENT, write

    message_id = await write(ctx, EVENT, event, payload)
    if isinstance(payload, dict) and payload.get(NOTIFY_KEY):
        await on_event(ctx, payload, event)
    return message_id


async def emit_many(ctx: Context, event: str, payloads: list[dict[str, Any]]) -> int:
    """Record one `event` per payload in one bulk write (e.g. the nightly close's reminders)."""
    from core.notifications import NOTIFY_KEY, on_event
    from core.outbox import EVENT, write_many

    written = await write_many(ctx, EVENT, event, payloads)
    for payload in payloads:
        if isinstance(payload, dict) and payload.get(NOTIFY_KEY):
            await on_event(ctx, payload, event)
    return written
