"""Outgoing webhooks: a tenant subscribes URLs to event types, and every matching event is
POSTed to them as signed JSON, with retries, so integrators need not poll.

- A kernel subscription to "*" (`on_event`) runs once in effect per event, in the event
  handler's transaction: for each active webhook that wants the event it enqueues the job
  `core.webhooks.deliver`. So a committed event gives exactly one delivery job per webhook.
- The job POSTs `{"id", "type", "created_at", "tenant", "data"}` signed with the webhook's
  secret (`X-Xindai-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`). A 2xx
  answer is delivered; anything else raises, and the outbox retries with backoff until the
  delivery is dead (`XINDAI_WEBHOOK_ATTEMPTS`; a tenant admin can retry it). Each attempt is
  logged in `webhook_delivery`, committed on its own, failures included. Receivers see the
  same `id` on every attempt and de-duplicate by it.
- The secret (`whsec_...`) is shown once at creation and stored sealed with the tenant's
  data key (entity "webhook", field "secret", the webhook's id).
- In the saas profile a URL whose host resolves to a loopback, private, link-local or other
  non-public address is refused, at creation and again at each delivery, and the request
  goes to the address that was checked (no DNS rebinding); banks' own installs (embedded,
  onprem) may call internal systems.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from core.access import require
from core.declarations import Job, PeriodicJob, Subscription
from core.errors import FieldError, NotFound, ValidationFailed
from core.settings import Settings
from core.tables import Webhook, WebhookDelivery
from core.tenancy import KERNEL, Context, tenant_scope

PERMISSION = "webhooks.manage"
DELIVER_JOB = "core.webhooks.deliver"
CLEANUP_JOB = "core.webhooks.cleanup"
SECRET_PREFIX = "whsec_"
TIMEOUT_S = 10.0
TOLERANCE_S = 300  # receivers refuse signatures older than this (replays)
MAX_URL = 500
MAX_EVENTS = 50
MAX_DESCRIPTION = 200
LOG_LIMIT = 100
KEEP_DAYS = 30
ACTIONS = ("created", "updated", "deleted")
EVENT_RE = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*(\.\*)?$")
USER_AGENT = "xindai-webhooks/1"


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryFailed(Exception):
    """One attempt did not get a 2xx answer; the outbox retries the job."""


# -- signatures --------------------------------------------------------------------------

def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` keyed with the whole secret (UTF-8)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                    hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Xindai-Signature` value: `t=<unix seconds>,v1=<hex>`."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: int = TOLERANCE_S,
                     now: float | None = None) -> bool:
    """What a receiver does: the header's timestamp is recent and one of its `v1` values is
    the HMAC of this exact body (compared in constant time)."""
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


def envelope(delivery_id: str, event: str, created_at: str, tenant: str,
             data: dict[str, Any]) -> bytes:
    """The body POSTed to receivers (compact UTF-8 JSON); the same bytes on every attempt."""
    return json.dumps({"id": delivery_id, "type": event, "created_at": created_at,
                       "tenant": tenant, "data": data},
                      ensure_ascii=False, separators=(",", ":")).encode()


# -- validation and the destination check (SSRF) ------------------------------------------

def _invalid(field: str, code: str, **params: Any) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, params)])


def check_url(url: str) -> str:
    """A full http(s) URL with a host and without credentials; returns it stripped."""
    url = (url or "").strip()
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise _invalid("url", "webhook_url") from None
    if parts.scheme not in ("http", "https") or not parts.host or parts.userinfo \
            or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise _invalid("url", "webhook_url")
    return url


def check_events(events: list[str]) -> list[str]:
    """Event types (`customer.created`), prefixes (`customer.*`) or `*`; de-duplicated."""
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise _invalid("events", "webhook_events")
    cleaned = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    if not cleaned or len(cleaned) > MAX_EVENTS:
        raise _invalid("events", "webhook_events")
    for e in cleaned:
        if e != "*" and (len(e) > 100 or not EVENT_RE.match(e)):
            raise _invalid("events", "webhook_event_name", event=e[:100])
    return ["*"] if "*" in cleaned else cleaned


def matches(wanted: list[str], event: str) -> bool:
    return any(w == "*" or w == event or (w.endswith(".*") and event.startswith(w[:-1]))
               for w in wanted)


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def public_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, if every one of them is public; else a
    ValidationFailed naming the host (a mix of public and private answers is refused too)."""
    try:
        found = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise _invalid("url", "webhook_unresolved", host=host) from None
        found = [ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos]
    if not found or not all(is_public(ip) for ip in found):
        raise _invalid("url", "webhook_private_address", host=host)
    return [str(ip) for ip in dict.fromkeys(found)]


def _saas() -> bool:
    from core.kernel import kernel

    return kernel().settings.profile == "saas"


async def check_destination(url: str) -> None:
    """Refuse non-public destinations in the saas profile (no-op in embedded and onprem)."""
    if _saas():
        parts = httpx.URL(url)
        await public_addresses(parts.host, parts.port or (443 if parts.scheme == "https"
                                                          else 80))


# -- the tenant's webhooks ----------------------------------------------------------------

def _public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A webhook as the API and the pages show it: never the secret."""
    return {"id": str(row["id"]), "url": row["url"], "events": list(row["events"] or []),
            "description": row["description"] or "", "active": bool(row["active"]),
            "created_at": row["created_at"], "created_by": row["created_by"]}


def _this(ctx: Context, webhook_id: uuid.UUID) -> Any:
    return (Webhook.id == webhook_id) & (Webhook.tenant_id == ctx.tenant_id)


async def _row(ctx: Context, webhook_id: uuid.UUID) -> dict[str, Any] | None:
    async with tenant_scope(ctx, write=False):
        rows = await Webhook.select().where(_this(ctx, webhook_id)).output(
            load_json=True).run()
    return rows[0] if rows else None


async def list_webhooks(ctx: Context) -> list[dict[str, Any]]:
    """The tenant's webhooks, oldest first, each with its latest delivery attempt."""
    require(ctx, PERMISSION)
    async with tenant_scope(ctx, write=False):
        rows = await Webhook.select().where(Webhook.tenant_id == ctx.tenant_id).order_by(
            Webhook.created_at).output(load_json=True).run()
        out = []
        for row in rows:
            last = await WebhookDelivery.select().where(
                WebhookDelivery.tenant_id == ctx.tenant_id,
                WebhookDelivery.webhook_id == row["id"]).order_by(
                WebhookDelivery.at, ascending=False).limit(1).run()
            out.append({**_public_row(row), "last": _delivery(last[0]) if last else None})
    return out


async def get_webhook(ctx: Context, webhook_id: uuid.UUID) -> dict[str, Any]:
    require(ctx, PERMISSION)
    row = await _row(ctx, webhook_id)
    if row is None:
        raise NotFound()
    return _public_row(row)


async def create_webhook(ctx: Context, url: str, events: list[str], description: str = "",
                         active: bool = True) -> tuple[dict[str, Any], str]:
    """Create a webhook; returns it and its signing secret, which is never shown again."""
    from core import audit
    from core.crypto import tenant_keys
    from core.kernel import kernel

    require(ctx, PERMISSION)
    url, events = check_url(url), check_events(events)
    description = _description(description)
    await check_destination(url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row_id = uuid.uuid4()
    async with tenant_scope(ctx):
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        row = Webhook(id=row_id, tenant_id=ctx.tenant_id, url=url, events=events,
                      secret=keys.encrypt("webhook", "secret", row_id, secret),
                      active=bool(active), description=description,
                      created_by=ctx.username)
        await Webhook.insert(row).run()
        await audit.append(ctx, "webhook.create", "webhook", row_id, {
            "url": [None, url], "events": [None, events],
            "description": [None, description], "active": [None, bool(active)],
            "secret": [None, await audit.secret_digest(ctx, "webhook", "secret", secret)]})
    return await get_webhook(ctx, row_id), secret


def _description(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise _invalid("description", "webhook_description")
    return text


async def update_webhook(ctx: Context, webhook_id: uuid.UUID, *, url: str | None = None,
                         events: list[str] | None = None, description: str | None = None,
                         active: bool | None = None) -> dict[str, Any]:
    """Change what is given (None leaves a value as it is); the change is audited."""
    from core import audit

    require(ctx, PERMISSION)
    wanted: dict[str, Any] = {}
    if url is not None:
        wanted["url"] = check_url(url)
        await check_destination(wanted["url"])
    if events is not None:
        wanted["events"] = check_events(events)
    if description is not None:
        wanted["description"] = _description(description)
    if active is not None:
        wanted["active"] = bool(active)
    async with tenant_scope(ctx):
        current = await _row(ctx, webhook_id)
        if current is None:
            raise NotFound()
        diff = {k: [current[k], v] for k, v in wanted.items() if current[k] != v}
        if diff:
            await Webhook.update({getattr(Webhook, k): v for k, v in wanted.items()}).where(
                _this(ctx, webhook_id)).run()
            await audit.append(ctx, "webhook.update", "webhook", webhook_id, diff)
    return await get_webhook(ctx, webhook_id)


async def delete_webhook(ctx: Context, webhook_id: uuid.UUID) -> None:
    """Delete a webhook and its delivery log; queued deliveries to it are skipped."""
    from core import audit

    require(ctx, PERMISSION)
    async with tenant_scope(ctx):
        current = await _row(ctx, webhook_id)
        if current is None:
            raise NotFound()
        await WebhookDelivery.delete().where(WebhookDelivery.tenant_id == ctx.tenant_id,
                                             WebhookDelivery.webhook_id == webhook_id).run()
        await Webhook.delete().where(_this(ctx, webhook_id)).run()
        await audit.append(ctx, "webhook.delete", "webhook", webhook_id, {
            "url": [current["url"], None], "events": [current["events"], None]})


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "webhook_id": str(row["webhook_id"]),
            "delivery_id": str(row["message_id"]), "event": row["event"],
            "attempt": row["attempt"], "status_code": row["status_code"],
            "duration_ms": row["duration_ms"], "error": row["error"],
            "delivered": bool(row["delivered"]), "at": row["at"]}


async def deliveries(ctx: Context, webhook_id: uuid.UUID, limit: int = LOG_LIMIT
                     ) -> list[dict[str, Any]]:
    """The webhook's latest delivery attempts, newest first."""
    require(ctx, PERMISSION)
    if await _row(ctx, webhook_id) is None:
        raise NotFound()
    async with tenant_scope(ctx, write=False):
        rows = await WebhookDelivery.select().where(
            WebhookDelivery.tenant_id == ctx.tenant_id,
            WebhookDelivery.webhook_id == webhook_id).order_by(
            WebhookDelivery.at, ascending=False).limit(limit).run()
    return [_delivery(r) for r in rows]


def known_event_types(ctx: Context) -> list[str]:
    """Event types this tenant's system emits: each enabled entity's created, updated and
    deleted, and the events the enabled plugins subscribe to."""
    from core.kernel import kernel

    k = kernel()
    found = [f"{e.name}.{a}" for e in k.registry.entities.values()
             if ctx.tenant.enabled(e.plugin) for a in ACTIONS]
    found += sorted({s.event for s in k.subscriptions
                     if s.event != "*" and ctx.tenant.enabled(s.plugin)} - set(found))
    return found


# -- delivery -----------------------------------------------------------------------------

async def on_event(ctx: Context, payload: dict[str, Any], event: str) -> None:
    """The kernel's "*" subscription: one delivery job per active webhook wanting `event`,
    written in this handler's transaction (so exactly once per event). The delivery id is
    the event's outbox id (what `emit` returned), the same for every webhook and retry; a
    webhook created after the event does not receive it."""
    from core import jobs
    from core.outbox import current_message

    message = current_message()
    happened = message.created_at if message else utcnow()
    async with tenant_scope(ctx, write=False):
        rows = await Webhook.select(Webhook.id, Webhook.events, Webhook.created_at).where(
            Webhook.tenant_id == ctx.tenant_id, Webhook.active == True  # noqa: E712
        ).order_by(Webhook.created_at).output(load_json=True).run()
    targets = [r for r in rows if matches(list(r["events"] or []), event)
               and r["created_at"] <= happened]
    if not targets:
        return
    delivery_id = str(message.id if message else uuid.uuid4())
    created_at = happened.astimezone(UTC).isoformat().replace("+00:00", "Z")
    for r in targets:
        await jobs.enqueue(ctx, DELIVER_JOB, webhook_id=str(r["id"]),
                           delivery_id=delivery_id, event=event, data=payload,
                           created_at=created_at)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST without following redirects; in saas, to the checked public address."""
    target = httpx.URL(url)
    extensions: dict[str, Any] = {}
    saas = _saas()
    if saas:
        port = target.port or (443 if target.scheme == "https" else 80)
        address = (await public_addresses(target.host, port))[0]
        headers = {**headers, "Host": target.netloc.decode("ascii")}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host  # the certificate is checked for it
        target = target.copy_with(host=address)
    async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False,
                                 trust_env=not saas) as client:
        return await client.post(target, content=body, headers=headers,
                                 extensions=extensions)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationFailed):
        return exc.errors[0].message("en")
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def deliver_job(ctx: Context, webhook_id: str, delivery_id: str, event: str,
                      data: dict[str, Any], created_at: str) -> str:
    """One attempt to deliver one event to one webhook (non-transactional: the attempt is
    logged and committed whatever happens, then a failure raises for the outbox's retry)."""
    from core.crypto import tenant_keys
    from core.kernel import kernel

    hook_id, message_id = uuid.UUID(webhook_id), uuid.UUID(delivery_id)
    hook = await _row(ctx, hook_id)
    if hook is None or not hook["active"]:
        return "skipped"  # deleted or switched off after the event
    mine = (WebhookDelivery.tenant_id == ctx.tenant_id) \
        & (WebhookDelivery.webhook_id == hook_id) & (WebhookDelivery.message_id == message_id)
    async with tenant_scope(ctx, write=False):
        if await WebhookDelivery.exists().where(mine & (WebhookDelivery.delivered == True)  # noqa: E712
                                                ).run():
            return "delivered"  # an earlier run delivered it and then lost its completion
        attempt = await WebhookDelivery.count().where(mine).run() + 1
    body = envelope(delivery_id, event, created_at, ctx.tenant.slug, data)
    status: int | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        async with tenant_scope(ctx, write=False):
            keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        secret = keys.decrypt("webhook", "secret", hook_id, hook["secret"])
        response = await _post(hook["url"], body, {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "X-Xindai-Event": event, "X-Xindai-Delivery": delivery_id,
            "X-Xindai-Signature": signature_header(secret, body)})
        status = response.status_code
        if not 200 <= status < 300:
            snippet = " ".join(response.text[:200].split())
            error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    except Exception as exc:  # noqa: BLE001 - every failed attempt is logged, then retried
        error = _error_text(exc)
    duration = int((time.perf_counter() - started) * 1000)
    async with tenant_scope(ctx):
        await WebhookDelivery.insert(WebhookDelivery(
            tenant_id=ctx.tenant_id, webhook_id=hook_id, message_id=message_id, event=event,
            attempt=attempt, status_code=status, duration_ms=duration,
            error=error[:500] if error else None, delivered=error is None)).run()
    if error is not None:
        raise DeliveryFailed(f"webhook {webhook_id}: {error}"[:600])
    return "delivered"


async def cleanup_job(ctx: Context) -> int:
    """Forget delivery attempts older than KEEP_DAYS."""
    cutoff = utcnow() - timedelta(days=KEEP_DAYS)
    where = (WebhookDelivery.tenant_id == ctx.tenant_id) & (WebhookDelivery.at < cutoff)
    async with tenant_scope(ctx):
        count = await WebhookDelivery.count().where(where).run()
        await WebhookDelivery.delete().where(where).run()
    return count


# -- what the kernel registers -------------------------------------------------------------

KERNEL_SUBSCRIPTIONS: list[Subscription] = [
    Subscription("*", on_event, "webhooks", plugin=KERNEL),
]


def kernel_jobs(settings: Settings) -> list[Job]:
    """The delivery job (attempts from XINDAI_WEBHOOK_ATTEMPTS) and the log's cleanup."""
    return [
        Job(DELIVER_JOB, deliver_job, time_limit_s=60,
            max_retries=settings.webhook_attempts - 1, plugin=KERNEL, transactional=False),
        Job(CLEANUP_JOB, cleanup_job, time_limit_s=1800, max_retries=3, plugin=KERNEL),
    ]


PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob(CLEANUP_JOB, "37 3 * * *", CLEANUP_JOB, plugin=KERNEL),
]
