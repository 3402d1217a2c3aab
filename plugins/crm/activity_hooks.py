"""The crm plugin's hook implementations for follow-ups, tasks and the customer 360 view.

They are imported into `plugins.crm` (whose module pluggy registers); each carries
`specname`, so they sit beside crm's other implementations of the same hooks
(`register_permissions`, `register_pages`, ...) without replacing them.

The 360 view is the generic detail page `/e/customer/<id>` (profile masked by field policy,
reveal, documents) plus the panels of `record_panels`: crm adds follow-ups (with the form),
tasks, the timeline (every plugin's `timeline_items` merged with the audited changes) and
the change history; servicing adds loans and repayments; other plugins add theirs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from core.plugins import hookimpl

FOLLOWUP_ENTITIES = ("customer", "lead")


@hookimpl(specname="register_permissions")
def activity_permissions(register):  # type: ignore[no-untyped-def]
    from core.declarations import Permission

    for code, zh, en in (
        ("followup.read", "查看跟进记录", "View follow-ups"),
        ("followup.create", "登记跟进记录", "Log follow-ups"),
        ("task.read", "查看任务", "View tasks"),
        ("task.manage", "新建与处理任务", "Create and handle tasks"),
    ):
        register(Permission(code, zh, en))


@hookimpl(specname="register_role_grants")
def activity_role_grants(register):  # type: ignore[no-untyped-def]
    from core.declarations import RoleGrant

    work = ("followup.read", "followup.create", "task.read", "task.manage")
    read = ("followup.read", "task.read")
    for role, perms in (("loan_officer", work), ("branch_manager", work), ("collector", work),
                        ("general_manager", work), ("risk_reviewer", read),
                        ("finance", read), ("compliance", read)):
        register(RoleGrant(role, perms))


@hookimpl(specname="register_jobs")
def activity_jobs(register):  # type: ignore[no-untyped-def]
    from core.declarations import Job
    from plugins.crm.activity import remind_due_tasks

    register(Job("crm.task_reminders", remind_due_tasks, time_limit_s=600, max_retries=3))


@hookimpl(specname="register_periodic_jobs")
def activity_periodic_jobs(register):  # type: ignore[no-untyped-def]
    from core.declarations import PeriodicJob

    # half past eight in the tenant's time zone, when the working day starts
    register(PeriodicJob("crm.task_reminders", "30 8 * * *", "crm.task_reminders"))


@hookimpl(specname="register_pages")
def activity_pages(register):  # type: ignore[no-untyped-def]
    from plugins.crm.pages_activity import ACTIVITY_PAGES

    for page in ACTIVITY_PAGES:
        register(page)


@hookimpl(specname="register_routes")
def activity_routes(register):  # type: ignore[no-untyped-def]
    from plugins.crm.pages_activity import ACTIVITY_ROUTES

    for route in ACTIVITY_ROUTES:
        register(route)


@hookimpl(specname="template_dirs")
def activity_template_dirs() -> list[str]:
    from pathlib import Path

    return [str(Path(__file__).resolve().parent / "templates")]


@hookimpl(specname="register_menu_items")
def activity_menu_items(register):  # type: ignore[no-untyped-def]
    from core.declarations import MenuItem

    register(MenuItem("my_tasks", "我的任务", "My tasks", "/tasks", "task.read", 21))


@hookimpl(specname="register_pack_sections")
def activity_pack_sections(register):  # type: ignore[no-untyped-def]
    from core.declarations import PackSection
    from plugins.crm.activity_pack import export_activity, load_activity

    register(PackSection("crm_activity", load_activity, export_activity, order=220,
                         after_records=True))


# --- the customer 360 view ---------------------------------------------------------------

def _local(value: Any, tz: str) -> str:
    from core.web.ui.render import local_time

    return local_time(value, tz)


@hookimpl(specname="record_panels")
def activity_panels(ctx, entity, record_id):  # type: ignore[no-untyped-def]
    if entity not in FOLLOWUP_ENTITIES:
        return None
    return _panels(ctx, entity, record_id)


async def _panels(ctx: Any, entity: str, record_id: str) -> list[Any]:
    from core.declarations import Panel
    from core.history import record_history
    from plugins.crm import activity
    from plugins.crm.pages_activity import followup_widgets, task_widgets

    tz = ctx.tenant.timezone
    panels = []
    base = f"/crm/{entity}/{record_id}"
    if ctx.access.can("followup.read"):
        items = await activity.list_followups(ctx, entity, record_id)
        for f in items:
            f["when"] = _local(f["occurred_at"], tz)
        panels.append(Panel("followups", "跟进记录", "Follow-ups", "crm/_followups_panel.html", {
            "items": items, "can_log": ctx.access.can("followup.create"),
            "form": {"widgets": followup_widgets(ctx, {
                "occurred_at": activity.local_datetime_input(datetime.now(UTC).isoformat(),
                                                             tz)}),
                "action": f"{base}/followups", "create_task": False, "general": "",
                "back": ""}}, order=10))
    if ctx.access.can("task.read"):
        tasks = await activity.list_tasks(ctx, entity=entity, record_id=record_id, status=None)
        panels.append(Panel("tasks", "任务", "Tasks", "crm/_tasks_panel.html", {
            "items": tasks, "can_manage": ctx.access.can("task.manage"),
            "form": {"widgets": task_widgets(ctx), "action": f"{base}/tasks", "general": "",
                     "back": ""}}, order=20))
    panels.append(Panel("timeline", "时间线", "Timeline", "crm/_timeline_panel.html",
                        {"items": await timeline(ctx, entity, record_id)}, order=60))
    history = await record_history(ctx, entity, record_id)
    for h in history:
        h["when"] = _local(h["at"], tz)
    panels.append(Panel("history", "变更记录", "Change history", "crm/_history_panel.html",
                        {"items": history}, order=90))
    return panels


async def timeline(ctx: Any, entity: str, record_id: str) -> list[dict[str, Any]]:
    """Every plugin's `timeline_items` for the record and its audited changes, newest
    first, as dicts for the template."""
    from core.history import record_history
    from core.kernel import kernel
    from core.web.ui.i18n import gettext_for
    from plugins.crm.pages_activity import HISTORY_ACTIONS

    _ = gettext_for(ctx.locale)
    tz = ctx.tenant.timezone
    items = await kernel().gather("timeline_items", ctx.tenant, ctx=ctx, entity=entity,
                                  record_id=record_id)
    out = [{"at": _sort_key(i.at, tz), "when": _local(i.at, tz) if isinstance(i.at, datetime)
            else i.at.isoformat(), "kind": i.kind, "title": i.title(ctx.locale),
            "detail": i.detail, "link": i.link, "by": i.by} for i in items]
    actions = {k: _(v) for k, v in HISTORY_ACTIONS.items()}
    for h in await record_history(ctx, entity, record_id):
        fields = "、".join(c["label"] for c in h["changes"]) if ctx.locale != "en" \
            else ", ".join(c["label"] for c in h["changes"])
        out.append({"at": _sort_key(h["at"], tz), "when": _local(h["at"], tz),
                    "kind": "change", "title": actions.get(h["action"], h["action"]),
                    "detail": fields if h["action"] == "update" else "", "link": None,
                    "by": h["username"]})
    out.sort(key=lambda i: i["at"], reverse=True)
    return out


def _sort_key(value: Any, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):  # a day's events sort at the end of that day
        return datetime(value.year, value.month, value.day, 23, 59, tzinfo=ZoneInfo(tz))
    return datetime.min.replace(tzinfo=UTC)


@hookimpl(specname="timeline_items")
def activity_timeline_items(ctx, entity, record_id):  # type: ignore[no-untyped-def]
    if entity not in FOLLOWUP_ENTITIES:
        return None
    return _timeline_items(ctx, entity, record_id)


async def _timeline_items(ctx: Any, entity: str, record_id: str) -> list[Any]:
    from core.declarations import TimelineItem
    from plugins.crm import activity

    items: list[Any] = []
    if ctx.access.can("followup.read"):
        for f in await activity.list_followups(ctx, entity, record_id):
            zh = f"跟进（{_label(activity.KINDS, f['kind'], 'zh-CN')}）"
            en = f"Follow-up ({_label(activity.KINDS, f['kind'], 'en')})"
            if f["outcome"]:
                zh += " · " + _label(activity.OUTCOMES, f["outcome"], "zh-CN")
                en += " · " + _label(activity.OUTCOMES, f["outcome"], "en")
            items.append(TimelineItem(datetime.fromisoformat(f["occurred_at"]), "followup",
                                      zh, en, detail=f["content"] or "",
                                      by=f["created_by_name"]))
    if ctx.access.can("task.read"):
        for t in await activity.list_tasks(ctx, entity=entity, record_id=record_id,
                                           status=None):
            items.append(TimelineItem(
                datetime.fromisoformat(t["created_at"]), "task",
                f"新建任务：{t['title']}（{t['due_on']} 到期）",
                f"Task created: {t['title']} (due {t['due_on']})", link=f"/tasks/{t['id']}",
                by=t["assignee_name"]))
    return items


def _label(options: Any, value: str | None, lang: str) -> str:
    from plugins.crm.activity import choice_label

    return choice_label(options, value, lang)
