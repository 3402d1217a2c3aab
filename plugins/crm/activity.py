"""Follow-ups (跟进记录) and tasks (任务) of any registry record: services over
plugins.crm.activity_tables.

Access follows the record, as for core documents: the parent must be visible to ctx through
core.records (object rules: another branch's customer answers 404, so do its follow-ups),
plus `followup.read` / `followup.create` and `task.read` / `task.manage`. Input is
validated by the kernel's registry validation (`core.records.validate` over the FORM
declarations below), so messages name the field in zh-CN and en like every other form.
Texts people write are sealed with the tenant's key; every write appends an audit entry
(sealed values only as keyed digests) and an event in the same transaction:

- `followup.logged` {"id", "entity", "record_id", "kind", "occurred_at",
  "next_follow_up_on", "task_id"}: other plugins update a record's last activity from it;
- `task.created` / `task.updated` / `task.completed` {"id", "entity", "record_id",
  "assignee_id", "due_on", "status"}; a task given to someone else carries `notify`, so the
  kernel notifies the assignee (core.notifications).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import audit, records
from core.access import require
from core.crypto import tenant_keys
from core.errors import NotFound, ValidationFailed
from core.events import emit
from core.fields import Choice, FieldDef, FieldType
from core.i18n import register_messages
from core.identity import user_names
from core.registry import EntityType
from core.tables import User
from core.tenancy import Context, tenant_scope
from plugins.crm.activity_tables import FollowUp, Task

KINDS = (Choice("call", "电话", "Call"), Choice("visit", "拜访", "Visit"),
         Choice("wechat", "微信", "WeChat"), Choice("note", "备注", "Note"))
OUTCOMES = (Choice("reached", "已联系上", "Reached"), Choice("no_answer", "未接通", "No answer"),
            Choice("interested", "有意向", "Interested"),
            Choice("not_interested", "无意向", "Not interested"),
            Choice("agreed", "已约定下一步", "Next step agreed"), Choice("other", "其他", "Other"))
STATUSES = (Choice("open", "待办", "Open"), Choice("done", "已完成", "Done"),
            Choice("cancelled", "已取消", "Cancelled"))
MAX_CONTENT = 2000
LIST_LIMIT = 200

register_messages({
    "task_assignee_unknown": {"zh-CN": "{label}不是本机构的在职用户",
                              "en": "{label} is not an active user of this lender"},
    "occurred_in_future": {"zh-CN": "{label}不能晚于现在", "en": "{label} cannot be in the future"},
    "next_step_needs_date": {"zh-CN": "要把下一步建成任务，请填写{label}",
                             "en": "to make the next step a task, fill in {label}"},
})

# The shapes of the input, declared like registry fields (never registered: these rows are
# not registry records) so that validation and form widgets are the kernel's.
FOLLOWUP_FORM = EntityType(
    name="followup", table=FollowUp, label_zh="跟进记录", label_en="Follow-up",
    fields=(
        FieldDef("kind", FieldType.single_select, "跟进方式", "Channel", required=True,
                 options=KINDS),
        FieldDef("occurred_at", FieldType.datetime, "跟进时间", "When"),
        FieldDef("outcome", FieldType.single_select, "结果", "Outcome", options=OUTCOMES),
        FieldDef("content", FieldType.long_text, "跟进内容", "What was said", required=True,
                 max_length=MAX_CONTENT),
        FieldDef("next_step", FieldType.text, "下一步", "Next step", max_length=200),
        FieldDef("next_follow_up_on", FieldType.date, "下次跟进日期", "Next follow-up on"),
        FieldDef("create_task", FieldType.boolean, "生成任务", "Make the next step a task"),
    ))
TASK_FORM = EntityType(
    name="task", table=Task, label_zh="任务", label_en="Task",
    fields=(
        FieldDef("title", FieldType.text, "任务", "Task", required=True, max_length=200),
        FieldDef("due_on", FieldType.date, "到期日", "Due on", required=True),
        FieldDef("assignee", FieldType.text, "负责人", "Assignee", max_length=64),
        FieldDef("note", FieldType.long_text, "备注", "Note", max_length=MAX_CONTENT),
        FieldDef("status", FieldType.single_select, "状态", "Status", options=STATUSES),
    ))


def choice_label(options: Iterable[Choice], value: str | None, lang: str) -> str:
    for c in options:
        if c.value == value:
            return c.en if lang == "en" else c.zh
    return value or ""


def _error(form: EntityType, key: str, code: str, **params: Any) -> ValidationFailed:
    return ValidationFailed([records.field_error(form, key, code, **params)])


def _master() -> bytes:
    from core.kernel import kernel

    return kernel().master_key


def _uuid(value: Any) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound() from None


async def parent(ctx: Context, entity: str, record_id: Any) -> tuple[str, uuid.UUID]:
    """The record follow-ups and tasks attach to, if ctx sees it (else 404 / 403)."""
    found = await records.get(ctx, entity, record_id)  # permission and object rules
    return (await records.entity_for(ctx, entity)).name, uuid.UUID(found["id"])


def _aware(value: datetime | None, tz: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))


# --- follow-ups --------------------------------------------------------------------------

async def log_followup(ctx: Context, entity: str, record_id: Any, data: dict[str, Any]
                       ) -> dict[str, Any]:
    """Record a call, visit, WeChat exchange or note on a record; with `create_task` and a
    next step, the next step also becomes a task for ctx's user due on
    `next_follow_up_on`. One transaction: the follow-up, its task, audit and events."""
    require(ctx, "followup.create")
    data = dict(data or {})
    data["occurred_at"] = _wall_clock(data.get("occurred_at"), ctx.tenant.timezone)
    values = records.validate(FOLLOWUP_FORM, data, None)
    occurred = _aware(values.get("occurred_at"), ctx.tenant.timezone)
    if occurred > datetime.now(UTC).replace(microsecond=0) + _SLACK:
        raise _error(FOLLOWUP_FORM, "occurred_at", "occurred_in_future")
    wants_task = bool(values.get("create_task")) and bool(values.get("next_step"))
    if wants_task and not values.get("next_follow_up_on"):
        raise _error(FOLLOWUP_FORM, "next_follow_up_on", "next_step_needs_date")
    async with tenant_scope(ctx):
        name, rid = await parent(ctx, entity, record_id)
        keys = await tenant_keys(_master(), ctx.tenant_id)
        fid = uuid.uuid4()
        task_id = None
        if wants_task:
            task = await _insert_task(ctx, keys, {
                "title": values["next_step"], "due_on": values["next_follow_up_on"],
                "note": None}, _uuid(ctx.user_id) if ctx.user_id else None, name, rid, fid)
            task_id = task["id"]
        row = {
            "id": fid, "tenant_id": ctx.tenant_id, "entity": name, "record_id": rid,
            "kind": values["kind"], "occurred_at": occurred, "outcome": values.get("outcome"),
            "content_sealed": keys.encrypt("crm_followup", "content", fid, values["content"]),
            "next_step_sealed": keys.encrypt("crm_followup", "next_step", fid,
                                             values["next_step"])
            if values.get("next_step") else None,
            "next_follow_up_on": values.get("next_follow_up_on"),
            "task_id": task_id, "created_by": ctx.user_id, "created_at": datetime.now(UTC),
        }
        await FollowUp.insert(FollowUp(**row)).run()
        await audit.append(ctx, "followup.log", "followup", fid, {
            "record": [None, f"{name}/{rid}"], "kind": [None, values["kind"]],
            "outcome": [None, values.get("outcome")],
            "content": [None, await audit.secret_digest(ctx, "followup", "content",
                                                        values["content"])],
            "next_follow_up_on": [None, _iso(values.get("next_follow_up_on"))],
            "task": [None, str(task_id) if task_id else None]})
        await emit(ctx, "followup.logged", {
            "id": str(fid), "entity": name, "record_id": str(rid), "kind": values["kind"],
            "occurred_at": occurred.isoformat(),
            "next_follow_up_on": _iso(values.get("next_follow_up_on")),
            "task_id": str(task_id) if task_id else None})
    return {**_followup_view(row, values.get("content"), values.get("next_step"), ctx.locale),
            "created_by_name": ""}


_SLACK = timedelta(minutes=5)  # clocks differ a little


def _wall_clock(raw: Any, tz: str) -> Any:
    """A time without a zone (a form's `2026-11-20T10:30`) is the tenant's wall clock;
    anything else goes to validation as it is."""
    if isinstance(raw, str) and raw.strip():
        try:
            moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            return raw
        if moment.tzinfo is None:
            return moment.replace(tzinfo=ZoneInfo(tz)).isoformat()
    return raw


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value else None


def _followup_view(row: dict[str, Any], content: str | None, next_step: str | None,
                   lang: str) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "entity": row["entity"], "record_id": str(row["record_id"]),
        "kind": row["kind"], "kind_label": choice_label(KINDS, row["kind"], lang),
        "occurred_at": row["occurred_at"].isoformat(), "outcome": row["outcome"],
        "outcome_label": choice_label(OUTCOMES, row["outcome"], lang),
        "content": content, "next_step": next_step,
        "next_follow_up_on": _iso(row["next_follow_up_on"]),
        "task_id": str(row["task_id"]) if row["task_id"] else None,
        "created_by": row["created_by"], "created_at": row["created_at"].isoformat(),
    }


async def list_followups(ctx: Context, entity: str, record_id: Any,
                         limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """A record's follow-ups, latest first, content decrypted for a reader of the record."""
    require(ctx, "followup.read")
    async with tenant_scope(ctx, write=False):
        name, rid = await parent(ctx, entity, record_id)
        rows = await FollowUp.select().where(
            FollowUp.tenant_id == ctx.tenant_id, FollowUp.entity == name,
            FollowUp.record_id == rid).order_by(FollowUp.occurred_at, ascending=False
                                                ).limit(limit).run()
        keys = await tenant_keys(_master(), ctx.tenant_id) if rows else None
    names = await user_names(ctx, (r["created_by"] for r in rows))
    out = []
    for r in rows:
        assert keys is not None
        content = keys.decrypt("crm_followup", "content", r["id"], r["content_sealed"])
        step = keys.decrypt("crm_followup", "next_step", r["id"], r["next_step_sealed"]) \
            if r["next_step_sealed"] else None
        out.append({**_followup_view(r, content, step, ctx.locale),
                    "created_by_name": names.get(r["created_by"] or "", "")})
    return out


# --- tasks -------------------------------------------------------------------------------

async def _assignee(ctx: Context, raw: Any) -> uuid.UUID:
    """An active user of the tenant, by id or username; default ctx's user."""
    if raw in (None, ""):
        if not ctx.user_id:
            raise _error(TASK_FORM, "assignee", "required")
        return _uuid(ctx.user_id)
    text = str(raw).strip()
    where = [User.tenant_id == ctx.tenant_id, User.active.eq(True)]
    try:
        where.append(User.id == uuid.UUID(text))
    except ValueError:
        where.append(User.username == text)
    rows = await User.select(User.id).where(*where).run()
    if not rows:
        raise _error(TASK_FORM, "assignee", "task_assignee_unknown")
    return rows[0]["id"]


def _task_payload(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "entity": row["entity"],
            "record_id": str(row["record_id"]) if row["record_id"] else None,
            "assignee_id": str(row["assignee_id"]), "due_on": row["due_on"].isoformat(),
            "status": row["status"]}


def _assigned_notice(row: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    if str(row["assignee_id"]) == str(ctx.user_id):
        return None
    return {"users": [str(row["assignee_id"])], "link": f"/tasks/{row['id']}",
            "title": {"zh-CN": f"您有一项新任务，{row['due_on'].isoformat()} 到期",
                      "en": f"A task was assigned to you, due {row['due_on'].isoformat()}"},
            "ref": f"task-assigned:{row['id']}:{row['assignee_id']}"}


async def _insert_task(ctx: Context, keys: Any, values: dict[str, Any],
                       assignee: uuid.UUID | None, entity: str | None,
                       record_id: uuid.UUID | None, followup_id: uuid.UUID | None = None
                       ) -> dict[str, Any]:
    if assignee is None:
        raise _error(TASK_FORM, "assignee", "required")
    tid = uuid.uuid4()
    now = datetime.now(UTC)
    row = {"id": tid, "tenant_id": ctx.tenant_id,
           "title_sealed": keys.encrypt("crm_task", "title", tid, values["title"]),
           "note_sealed": keys.encrypt("crm_task", "note", tid, values["note"])
           if values.get("note") else None,
           "due_on": values["due_on"], "assignee_id": assignee, "status": "open",
           "entity": entity, "record_id": record_id, "followup_id": followup_id,
           "version": 1, "created_by": ctx.user_id, "created_at": now, "updated_at": now}
    await Task.insert(Task(**row)).run()
    await audit.append(ctx, "task.create", "task", tid, {
        "title": [None, await audit.secret_digest(ctx, "task", "title", values["title"])],
        "due_on": [None, values["due_on"].isoformat()], "assignee": [None, str(assignee)],
        "record": [None, f"{entity}/{record_id}" if entity else None]})
    payload = _task_payload(row)
    notice = _assigned_notice(row, ctx)
    if notice:
        payload["notify"] = notice
    await emit(ctx, "task.created", payload)
    return row


async def create_task(ctx: Context, data: dict[str, Any], entity: str | None = None,
                      record_id: Any = None) -> dict[str, Any]:
    """A task with a due date for an assignee (default: ctx's user), optionally linked to a
    record ctx can see."""
    require(ctx, "task.manage")
    values = records.validate(TASK_FORM, {k: v for k, v in (data or {}).items()
                                          if k != "status"}, None)
    async with tenant_scope(ctx):
        name, rid = (await parent(ctx, entity, record_id)) if entity else (None, None)
        assignee = await _assignee(ctx, values.get("assignee"))
        keys = await tenant_keys(_master(), ctx.tenant_id)
        row = await _insert_task(ctx, keys, values, assignee, name, rid)
    return _task_view(row, values["title"], values.get("note"), ctx.locale)


def _task_view(row: dict[str, Any], title: str, note: str | None, lang: str,
               today: date | None = None) -> dict[str, Any]:
    due = row["due_on"]
    state = ""
    if row["status"] == "open" and today is not None:
        state = "overdue" if due < today else "today" if due == today else ""
    return {"id": str(row["id"]), "title": title, "note": note, "due_on": due.isoformat(),
            "status": row["status"], "status_label": choice_label(STATUSES, row["status"], lang),
            "assignee_id": str(row["assignee_id"]), "entity": row["entity"],
            "record_id": str(row["record_id"]) if row["record_id"] else None,
            "followup_id": str(row["followup_id"]) if row["followup_id"] else None,
            "version": row["version"], "due_state": state,
            "created_at": row["created_at"].isoformat()}


async def _task_views(ctx: Context, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    async with tenant_scope(ctx, write=False):
        keys = await tenant_keys(_master(), ctx.tenant_id)
    names = await user_names(ctx, (r["assignee_id"] for r in rows))
    today = ctx.tenant.business_date
    out = []
    for r in rows:
        title = keys.decrypt("crm_task", "title", r["id"], r["title_sealed"])
        note = keys.decrypt("crm_task", "note", r["id"], r["note_sealed"]) \
            if r["note_sealed"] else None
        out.append({**_task_view(r, title, note, ctx.locale, today),
                    "assignee_name": names.get(str(r["assignee_id"]), "")})
    return out


async def _visible_task(ctx: Context, task_id: Any) -> dict[str, Any]:
    """A task ctx may act on: assigned to or created by ctx, or linked to a record ctx sees
    (a user whose object rule covers all records sees every task)."""
    rows = await Task.select().where(Task.tenant_id == ctx.tenant_id,
                                     Task.id == _uuid(task_id)).run()
    if not rows:
        raise NotFound()
    row = rows[0]
    mine = str(ctx.user_id) in (str(row["assignee_id"]), str(row["created_by"]))
    if mine or ctx.access.scope == "all":
        return row
    if row["entity"]:
        await parent(ctx, row["entity"], row["record_id"])  # 404 when not visible
        return row
    raise NotFound()


async def get_task(ctx: Context, task_id: Any) -> dict[str, Any]:
    require(ctx, "task.read")
    async with tenant_scope(ctx, write=False):
        row = await _visible_task(ctx, task_id)
    return (await _task_views(ctx, [row]))[0]


async def update_task(ctx: Context, task_id: Any, data: dict[str, Any],
                      expected_version: int | None = None) -> dict[str, Any]:
    """Change a task's title, due date, assignee, note or status (done / cancelled / open
    again); emits `task.completed` when it is done, else `task.updated`."""
    from core.errors import Conflict

    require(ctx, "task.manage")
    values = records.validate(TASK_FORM, data or {}, {"title": "x", "due_on": date.today()})
    async with tenant_scope(ctx):
        row = await _visible_task(ctx, task_id)
        if expected_version is not None and expected_version != row["version"]:
            raise Conflict("version_conflict")
        keys = await tenant_keys(_master(), ctx.tenant_id)
        changes: dict[Any, Any] = {}
        diff: dict[str, Any] = {}
        if "title" in values:
            changes[Task.title_sealed] = keys.encrypt("crm_task", "title", row["id"],
                                                      values["title"])
            diff["title"] = [None, await audit.secret_digest(ctx, "task", "title",
                                                             values["title"])]
        if "note" in values:
            changes[Task.note_sealed] = keys.encrypt("crm_task", "note", row["id"],
                                                     values["note"]) if values["note"] else None
            diff["note"] = [None, "changed"]
        if values.get("due_on") and values["due_on"] != row["due_on"]:
            changes[Task.due_on] = values["due_on"]
            diff["due_on"] = [row["due_on"].isoformat(), values["due_on"].isoformat()]
        if values.get("assignee") not in (None, ""):
            who = await _assignee(ctx, values["assignee"])
            if who != row["assignee_id"]:
                changes[Task.assignee_id] = who
                diff["assignee"] = [str(row["assignee_id"]), str(who)]
        status = values.get("status")
        if status and status != row["status"]:
            changes[Task.status] = status
            changes[Task.done_at] = datetime.now(UTC) if status == "done" else None
            changes[Task.done_by] = ctx.user_id if status == "done" else None
            diff["status"] = [row["status"], status]
        if not changes:
            return (await _task_views(ctx, [row]))[0]
        changes[Task.version] = row["version"] + 1
        changes[Task.updated_at] = datetime.now(UTC)
        written = await Task.update(changes).where(
            Task.tenant_id == ctx.tenant_id, Task.id == row["id"],
            Task.version == row["version"]).returning(Task.id).run()
        if not written:
            raise Conflict("version_conflict")
        fresh = (await Task.select().where(Task.tenant_id == ctx.tenant_id,
                                           Task.id == row["id"]).run())[0]
        await audit.append(ctx, "task.done" if status == "done" else "task.update", "task",
                           row["id"], diff)
        payload = _task_payload(fresh)
        if "assignee" in diff and (notice := _assigned_notice(fresh, ctx)):
            payload["notify"] = notice
        await emit(ctx, "task.completed" if status == "done" else "task.updated", payload)
    return (await _task_views(ctx, [fresh]))[0]


async def list_tasks(ctx: Context, *, assignee: Any = None, entity: str | None = None,
                     record_id: Any = None, status: str | None = "open",
                     limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Tasks of a record ctx sees, or of an assignee (default ctx's user), by due date."""
    require(ctx, "task.read")
    async with tenant_scope(ctx, write=False):
        where = [Task.tenant_id == ctx.tenant_id]
        if entity:
            name, rid = await parent(ctx, entity, record_id)
            where += [Task.entity == name, Task.record_id == rid]
        else:
            who = _uuid(assignee or ctx.user_id) if (assignee or ctx.user_id) else None
            if who is None:
                return []
            if str(who) != str(ctx.user_id) and ctx.access.scope != "all":
                raise NotFound()
            where.append(Task.assignee_id == who)
        if status:
            where.append(Task.status == status)
        rows = await Task.select().where(*where).order_by(Task.due_on).order_by(
            Task.created_at).limit(limit).run()
    return await _task_views(ctx, rows)


async def task_counts(ctx: Context, today: date | None = None) -> dict[str, int]:
    """The signed-in user's open tasks: overdue, due today, later, and done."""
    require(ctx, "task.read")
    today = today or ctx.tenant.business_date
    if not ctx.user_id:
        return {"overdue": 0, "today": 0, "upcoming": 0, "done": 0}
    me = _uuid(ctx.user_id)
    async with tenant_scope(ctx, write=False):
        rows = await Task.select(Task.status, Task.due_on).where(
            Task.tenant_id == ctx.tenant_id, Task.assignee_id == me,
            Task.status.is_in(["open", "done"])).run()
    counts = {"overdue": 0, "today": 0, "upcoming": 0, "done": 0}
    for r in rows:
        if r["status"] == "done":
            counts["done"] += 1
        elif r["due_on"] < today:
            counts["overdue"] += 1
        elif r["due_on"] == today:
            counts["today"] += 1
        else:
            counts["upcoming"] += 1
    return counts


async def remind_due_tasks(ctx: Context, on: str | None = None) -> int:
    """The periodic job `crm.task_reminders`: notify each assignee of every open task due on
    or before the tenant's business date (or `on`), once per task and day (`ref`), so a
    run repeated the same day notifies nobody twice. Returns how many notifications."""
    from core.notifications import notify

    today = date.fromisoformat(on) if on else ctx.tenant.business_date
    made = 0
    async with tenant_scope(ctx):
        rows = await Task.select(Task.id, Task.assignee_id, Task.due_on).where(
            Task.tenant_id == ctx.tenant_id, Task.status == "open",
            Task.due_on <= today).run()
        for r in rows:
            overdue = r["due_on"] < today
            title = ({"zh-CN": f"任务已逾期（{r['due_on'].isoformat()} 到期）",
                      "en": f"A task is overdue (due {r['due_on'].isoformat()})"} if overdue else
                     {"zh-CN": "任务今日到期", "en": "A task is due today"})
            made += await notify(ctx, users=[str(r["assignee_id"])],
                                 kind="task.overdue" if overdue else "task.due", title=title,
                                 link=f"/tasks/{r['id']}",
                                 ref=f"task-due:{r['id']}:{today.isoformat()}")
    return made


def local_datetime_input(value: str | None, tz: str) -> str:
    """An ISO timestamp as a `datetime-local` input value in the tenant's zone."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def field_errors(exc: ValidationFailed, lang: str) -> dict[str, str]:
    return {e.field: e.message(lang) for e in exc.errors}


__all__ = ["FOLLOWUP_FORM", "KINDS", "OUTCOMES", "TASK_FORM", "create_task",
           "get_task", "list_followups", "list_tasks", "log_followup", "remind_due_tasks",
           "task_counts", "update_task"]
