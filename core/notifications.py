"""In-app notifications: short messages to users (a bell with an unread count in the shell).

Two ways in, one table:

- `await notify(ctx, users=[...], roles=[...], kind=..., title={"zh-CN": .., "en": ..},
  link="/...", ref=...)` inside the caller's transaction (kernel code, a plugin's job);
- any domain event whose payload carries a `notify` key (see `NOTIFY_KEY`):
  `core.events.emit` turns it into notifications in the emitter's transaction, so a plugin
  notifies people by emitting an event and never needs this module. The payload shape is documented in
  docs/events-and-jobs.md#notifications.

`ref` makes a notification idempotent per recipient (a unique index on tenant, user and
ref): a reminder job that runs twice, or an event delivered twice, notifies once. A
notification is a derived message, not a business record: what caused it is already in
the audit chain, so creating or reading one appends no audit entry. Titles are stored in
clear: put no personal data (names, ID numbers, mobiles) in them; link to the record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog

from core.errors import FieldError, NotFound, ValidationFailed
from core.i18n import register_messages
from core.tables import Notification, User
from core.tenancy import Context, tenant_scope

log = structlog.get_logger("xindai.notifications")

NOTIFY_KEY = "notify"
MAX_TITLE = 300
MAX_LINK = 500
MAX_REF = 200
PAGE = 50
register_messages({
    "notification_link": {"zh-CN": "{label}必须是本系统内以 / 开头的路径",
                          "en": "{label} must be a path of this system starting with /"},
    "notification_payload": {"zh-CN": "{label}格式不正确", "en": "{label} is malformed"},
})
LABELS = {"title": {"zh-CN": "标题", "en": "Title"}, "link": {"zh-CN": "链接", "en": "Link"},
          "recipients": {"zh-CN": "收件人", "en": "Recipients"}}


def _error(field: str, code: str, **params: Any) -> FieldError:
    return FieldError(field, code, {"field": field, **params}, LABELS.get(field, {}))


def _check(title: Any, link: Any) -> tuple[str, str, str | None]:
    """(zh title, en title, link) or ValidationFailed: both languages, a local link."""
    errors = []
    zh = en = ""
    if not isinstance(title, dict) or not all(
            isinstance(title.get(lang), str) and title[lang].strip() for lang in ("zh-CN", "en")):
        errors.append(_error("title", "required"))
    else:
        zh, en = title["zh-CN"].strip()[:MAX_TITLE], title["en"].strip()[:MAX_TITLE]
    if link is not None and (not isinstance(link, str) or not link.startswith("/")
                             or link.startswith("//") or "\\" in link or len(link) > MAX_LINK
                             or any(ord(c) < 32 for c in link)):
        errors.append(_error("link", "notification_link"))
    if errors:
        raise ValidationFailed(errors)
    return zh, en, link


async def recipients(ctx: Context, users: Iterable[str] = (), roles: Iterable[str] = ()
                     ) -> list[uuid.UUID]:
    """Active users of ctx's tenant named by id or username, or holding one of `roles`
    (in the order given, each once). Unknown names are skipped."""
    wanted = {str(u) for u in users if u}
    role_set = {str(r) for r in roles if r}
    if not wanted and not role_set:
        return []
    rows = await User.select(User.id, User.username, User.roles).where(
        User.tenant_id == ctx.tenant_id, User.active.eq(True)).output(load_json=True).run()
    found: list[uuid.UUID] = []
    for row in rows:
        named = str(row["id"]) in wanted or row["username"] in wanted
        if named or role_set.intersection(row["roles"] or ()):
            found.append(row["id"])
    return found


async def notify(ctx: Context, *, users: Iterable[str] = (), roles: Iterable[str] = (),
                 kind: str, title: dict[str, str], link: str | None = None,
                 ref: str | None = None) -> int:
    """Notify the named users and every holder of `roles`; returns how many notifications
    were created (a recipient who already has `ref` gets none). Runs in ctx's tenant
    transaction (joins the caller's)."""
    zh, en, link = _check(title, link)
    async with tenant_scope(ctx):
        targets = await recipients(ctx, users, roles)
        if not targets:
            return 0
        now = datetime.now(UTC)
        ref = ref[:MAX_REF] if ref else None
        existing: set[uuid.UUID] = set()
        if ref is not None:
            existing = {r["user_id"] for r in await Notification.select(
                Notification.user_id).where(Notification.tenant_id == ctx.tenant_id,
                                            Notification.ref == ref,
                                            Notification.user_id.is_in(targets)).run()}
        new = [Notification(tenant_id=ctx.tenant_id, user_id=u, kind=kind[:60], title_zh=zh,
                            title_en=en, link=link, ref=ref, created_at=now)
               for u in targets if u not in existing]
        if new:  # a racing writer of the same ref loses quietly on the unique index
            await Notification.insert(*new).on_conflict(action="DO NOTHING").run()
    return len(new)


def _uid(ctx: Context) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(ctx.user_id)) if ctx.user_id else None
    except ValueError:
        return None


async def unread_count(ctx: Context) -> int:
    """How many unread notifications the signed-in user has (0 for the system)."""
    uid = _uid(ctx)
    if uid is None:
        return 0
    async with tenant_scope(ctx, write=False):
        return await Notification.count().where(
            Notification.tenant_id == ctx.tenant_id, Notification.user_id == uid,
            Notification.read_at.is_null()).run()


def _view(row: dict[str, Any], lang: str) -> dict[str, Any]:
    return {"id": str(row["id"]), "kind": row["kind"],
            "title": row["title_en"] if lang == "en" else row["title_zh"],
            "link": row["link"], "ref": row["ref"],
            "created_at": row["created_at"].isoformat(),
            "read_at": row["read_at"].isoformat() if row["read_at"] else None}


async def list_for(ctx: Context, unread_only: bool = False, limit: int = PAGE
                   ) -> list[dict[str, Any]]:
    """The signed-in user's notifications, newest first, titled in ctx's language."""
    uid = _uid(ctx)
    if uid is None:
        return []
    where = [Notification.tenant_id == ctx.tenant_id, Notification.user_id == uid]
    if unread_only:
        where.append(Notification.read_at.is_null())
    async with tenant_scope(ctx, write=False):
        rows = await Notification.select().where(*where).order_by(
            Notification.created_at, ascending=False).limit(max(1, min(limit, 200))).run()
    return [_view(r, ctx.locale) for r in rows]


async def mark_read(ctx: Context, notification_id: Any) -> dict[str, Any]:
    """Mark one of the user's own notifications read; returns it (404 for anyone else's)."""
    uid = _uid(ctx)
    try:
        nid = uuid.UUID(str(notification_id))
    except ValueError:
        raise NotFound() from None
    async with tenant_scope(ctx):
        where = [Notification.tenant_id == ctx.tenant_id, Notification.id == nid,
                 Notification.user_id == uid]
        rows = await Notification.select().where(*where).run()
        if not rows or uid is None:
            raise NotFound()
        if rows[0]["read_at"] is None:
            rows[0]["read_at"] = datetime.now(UTC)
            await Notification.update({Notification.read_at: rows[0]["read_at"]}).where(
                *where).run()
    return _view(rows[0], ctx.locale)


async def mark_all_read(ctx: Context) -> int:
    """Mark every unread notification of the user read; returns how many."""
    uid = _uid(ctx)
    if uid is None:
        return 0
    async with tenant_scope(ctx):
        done = await Notification.update({Notification.read_at: datetime.now(UTC)}).where(
            Notification.tenant_id == ctx.tenant_id, Notification.user_id == uid,
            Notification.read_at.is_null()).returning(Notification.id).run()
    return len(done)


async def on_event(ctx: Context, payload: dict[str, Any], event: str) -> int:
    """Called by `core.events.emit` in the emitter's transaction: an event whose payload
    has `notify` notifies.

    `notify`: {"users": [ids or usernames], "roles": [role names], "title": {"zh-CN": ..,
    "en": ..}, "link": "/..." (optional), "kind": .. (optional, default the event name),
    "ref": .. (optional: idempotency across events; default: none, the outbox already
    delivers each event once)}. A malformed `notify` is logged and dropped: retrying
    cannot mend it, and the event's other handlers are unaffected."""
    spec = payload.get(NOTIFY_KEY) if isinstance(payload, dict) else None
    if not spec:
        return 0
    try:
        if not isinstance(spec, dict):
            raise ValidationFailed([_error("recipients", "notification_payload")])
        return await notify(
            ctx, users=_names(spec.get("users")), roles=_names(spec.get("roles")),
            kind=str(spec.get("kind") or event), title=spec.get("title"),  # type: ignore[arg-type]
            link=spec.get("link"), ref=spec.get("ref"))
    except ValidationFailed as exc:
        log.error("notify_payload_refused", tenant=str(ctx.tenant_id), domain_event=event,
                  problem="; ".join(e.message("en") for e in exc.errors))
        return 0


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []
