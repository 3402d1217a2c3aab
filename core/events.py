"""Domain events: `emit` hands an event to the handlers of the plugins enabled for the tenant.

The kernel dispatches in-process, inside the writer's transaction, so a failing handler
rolls the change back. The events issue moves delivery to an outbox and background jobs;
the `emit` call sites stay the same.
"""

from __future__ import annotations

import inspect
from typing import Any

from core.tenancy import Context


async def emit(ctx: Context, event: str, payload: dict[str, Any]) -> int:
    """Run every subscription to `event` of the plugins enabled for ctx's tenant.

    Returns how many handlers ran.
    """
    from core.kernel import kernel

    ran = 0
    for sub in kernel().subscriptions_for(ctx.tenant, event):
        result = sub.handler(ctx, payload)
        if inspect.isawaitable(result):
            await result
        ran += 1
    return ran
