"""Approvals (审批): the pure workflow engine wired to the database, events and audit.

Subject-agnostic: an application, a classification override or anything else is approved
by calling `start(ctx, subject=..., subject_id=..., facts=...)`; the subject's owner learns
the outcome through `on_outcome(subject)`, called in the transaction of the final decision
(so a failing callback undoes the decision). Other plugins reach this module through
`kernel().provider("approvals", tenant)`.

Each action: read the instance, let the engine decide (`workflow.*`), store the new state
only if nobody changed it meanwhile (the row's version), re-derive the task rows, append
the engine's events, one audit entry and the domain events `approval.<kind>` (with a
`notify` key naming whom to tell) - all in one transaction. A refused action writes
nothing but a security event (audit + sign-in/access log), outside the failed transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core import audit
from core.access import SYSTEM, allows, require
from core.errors import Conflict, FieldError, NotFound, ValidationFailed, XindaiError
from core.events import emit
from core.i18n import register_messages
from core.identity import user_names
from core.tenancy import Context, tenant_scope
from plugins.origination import approval_store as store
from plugins.origination import conditions as c
from plugins.origination import workflow as wf
from plugins.origination.definition import Definition
from plugins.origination.errors import ActionRefused, DefinitionError, Problem, problem
from plugins.origination.instance import APPROVED, IN_PROGRESS, REJECTED, RETURNED, Instance

Outcome = str  # "approved" | "rejected" | "returned"
Callback = Callable[[Context, str, str, str, str], Awaitable[None]]

BASE_FIELDS: dict[str, tuple[str, str, str]] = {
    "amount": ("money", "金额", "Amount"), "product": ("text", "产品", "Product"),
    "grade": ("single_select", "评级", "Grade"), "region": ("region", "地区", "Region"),
}
ACTIONS = ("approve", "reject", "return", "transfer", "add", "resubmit", "reassign")
META_KEYS = ("subject", "when", "priority")
SUBJECT_RE = r"[a-z][a-z0-9_]{0,39}"
DUE_SOON = timedelta(hours=4)  # "due soon": the demo reminds 4 hours before
INBOX_MAX = 2000
DEADLINE_BATCH = 500
# refusal codes -> HTTP status: whose turn it is and who may act are access decisions
_STATUS = {"maker_checker": 403, "not_your_task": 403, "not_submitter": 403,
           "already_acted": 409, "already_approved": 409, "task_closed": 409,
           "finished": 409, "awaiting_resubmission": 409, "not_returned": 409}

register_messages({
    "approval_refused": {"zh-CN": "操作未执行：{reason}", "en": "not done: {reason}"},
    "approval_changed": {"zh-CN": "此审批已被他人处理（或已变化），请刷新后再操作",
                         "en": "someone acted on this approval meanwhile; reload and try again"},
    "approval_running": {"zh-CN": "该{subject}已有进行中的审批，不能重复提交",
                         "en": "this {subject} already has an approval in progress"},
    "approval_no_workflow": {"zh-CN": "没有适用于“{subject}”的审批流程（请先在“审批流程”中配置）",
                             "en": "no approval workflow applies to '{subject}' (set one up "
                                   "under Approval workflows)"},
    "approval_unknown_action": {"zh-CN": "未知的审批操作“{action}”（可用：{known}）",
                                "en": "unknown approval action '{action}' (known: {known})"},
    "approval_target_required": {"zh-CN": "请填写{label}", "en": "{label} is required"},
    "approval_unknown_user": {"zh-CN": "用户“{user}”不存在或已停用",
                              "en": "there is no active user '{user}'"},
    "workflow_invalid": {"zh-CN": "审批流程或事实数据有误：{reason}",
                         "en": "the workflow or the facts are wrong: {reason}"},
})


@dataclass
class ProblemError(FieldError):
    """A field error whose text is the engine's own zh-CN / en pair."""

    zh: str = ""
    en: str = ""

    def message(self, locale: str | None = None) -> str:
        return self.en if (locale or "").lower().startswith("en") else self.zh


def problems_failed(problems: Any, default_field: str = "workflow") -> ValidationFailed:
    """Engine problems as a 422 listing each (field: the step id, else `default_field`)."""
    return ValidationFailed([ProblemError(p.step or p.field or default_field,
                                          "workflow_invalid", {"reason": p.en}, {}, p.zh, p.en)
                             for p in problems])


class ApprovalRefused(XindaiError):
    """The engine refused an action; its zh-CN/en reason is the message."""

    code = "approval_refused"

    def __init__(self, refusal: ActionRefused) -> None:
        self.refusal = refusal
        self.status = _STATUS.get(refusal.code, 422)
        super().__init__(reason=refusal.en)
        self.reason = refusal.code

    def message(self, locale: str | None = None) -> str:
        en = (locale or "").lower().startswith("en")
        return self.refusal.en if en else self.refusal.zh


# --- subjects and their callbacks ---------------------------------------------------------

@dataclass
class Subject:
    """What can be approved, the facts its workflows may route on, and who to tell."""

    name: str
    label_zh: str
    label_en: str
    fields: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # key->(type,zh,en)
    callbacks: list[Callback] = field(default_factory=list)


SUBJECTS: dict[str, Subject] = {}


def register_subject(name: str, label_zh: str, label_en: str,
                     fields: Mapping[str, tuple[str, str, str]] | None = None) -> Subject:
    """Declare a subject (idempotent): its labels and the facts its workflows route on."""
    subject = SUBJECTS.setdefault(name, Subject(name, label_zh, label_en))
    subject.label_zh, subject.label_en = label_zh, label_en
    subject.fields.update(fields or {})
    return subject


register_subject("application", "贷款申请", "loan application", {
    "term": ("integer", "期限（期）", "Term (periods)"), "score": ("integer", "评分", "Score"),
    "purpose": ("text", "用途", "Purpose"),
    "customer_type": ("single_select", "客户类型", "Customer type")})


def on_outcome(subject: str) -> Callable[[Callback], Callback]:
    """Register `async fn(ctx, subject_id, outcome, comment, decided_by)` for a subject."""
    def add(fn: Callback) -> Callback:
        target = SUBJECTS.get(subject) or register_subject(subject, subject, subject)
        if fn not in target.callbacks:
            target.callbacks.append(fn)
        return fn
    return add


def subject_label(subject: str, locale: str = "zh-CN") -> str:
    s = SUBJECTS.get(subject)
    if s is None:
        return subject
    return s.label_en if locale.lower().startswith("en") else s.label_zh


async def subject_fields(ctx: Context, subject: str) -> dict[str, dict[str, str]]:
    """Fields a workflow of `subject` may route on: amount, product, grade, region, the
    subject's declared facts, and the fields (built-in and custom, never secret ones) of
    the registry entity of the same name."""
    from core.customfields import custom_fields
    from core.fields import Sensitivity
    from core.kernel import kernel

    out = {k: {"type": t, "zh-CN": zh, "en": en} for k, (t, zh, en) in BASE_FIELDS.items()}
    declared = SUBJECTS.get(subject)
    for k, (t, zh, en) in (declared.fields if declared else {}).items():
        out[k] = {"type": t, "zh-CN": zh, "en": en}
    entity = kernel().registry.get(subject)
    if entity is not None and ctx.tenant.enabled(entity.plugin):
        defs = [*entity.fields, *await custom_fields(ctx, subject)]
        for f in defs:
            if f.sensitivity != Sensitivity.secret and str(f.type) in c.FIELD_TYPES:
                out.setdefault(f.key, {"type": str(f.type), "zh-CN": f.label_zh,
                                       "en": f.label_en})
    return out


def _types(fields: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {k: v["type"] for k, v in fields.items()}


# --- workflow definitions ----------------------------------------------------------------

@dataclass(frozen=True)
class Parsed:
    subject: str
    selector: Any
    priority: int
    definition: Definition
    data: dict[str, Any]


def parse_workflow(data: Any, fields: Mapping[str, str]) -> Parsed:
    """Split a stored or pack workflow into its selection (`subject`, `when`, `priority`)
    and the engine's definition; raise DefinitionError listing every problem."""
    import re

    if not isinstance(data, Mapping):
        raise DefinitionError([problem("bad_definition", "工作流定义应为一个对象",
                                       "a workflow definition must be an object")])
    problems: list[Problem] = []
    subject = data.get("subject", "application")
    if not isinstance(subject, str) or not re.fullmatch(SUBJECT_RE, subject):
        problems.append(problem("bad_subject", f"审批对象“{subject}”无效：须为小写字母开头的字母、"
                                "数字、下划线", f"the subject '{subject}' is invalid: lowercase "
                                "letters, digits and underscores", field="subject"))
    priority = data.get("priority", 100)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9999:
        problems.append(problem("bad_priority", "priority 须为 0 到 9999 的整数",
                                "priority must be a whole number from 0 to 9999",
                                field="priority"))
        priority = 100
    selector = data.get("when")
    if selector is not None:
        _, found = c.parse_condition(selector, fields, path="when")
        problems.extend(found)
    rest = {k: v for k, v in data.items() if k not in META_KEYS}
    try:
        definition = wf.parse_definition(rest, fields)
    except DefinitionError as exc:
        problems.extend(exc.problems)
    if problems:
        raise DefinitionError(problems)
    return Parsed(str(subject), _plain(selector), priority, definition, wf.to_data(definition))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


async def check_workflow(ctx: Context, data: Any) -> Parsed:
    """Validate a workflow against its subject's fields (DefinitionError if bad)."""
    subject = data.get("subject", "application") if isinstance(data, Mapping) else None
    fields = await subject_fields(ctx, subject) if isinstance(subject, str) else {}
    return parse_workflow(data, _types(fields))


async def save_workflow(ctx: Context, data: Any, *, keep_version: bool = False
                        ) -> dict[str, Any]:
    """Validate and store a workflow as a new version of its id; older versions stay for
    the instances that run them. `keep_version` (packs) keeps the given version number
    when it is above the stored ones; otherwise the next number is used."""
    require(ctx, "workflow.manage")
    async with tenant_scope(ctx):
        subject = data.get("subject", "application") if isinstance(data, Mapping) else ""
        fields = _types(await subject_fields(ctx, subject)) if isinstance(subject, str) else {}
        latest = 0
        if isinstance(data, Mapping) and isinstance(data.get("id"), str):
            latest = await store.latest_number(ctx, data["id"])
        given = data.get("version") if isinstance(data, Mapping) else None
        number = given if keep_version and isinstance(given, int) and not isinstance(
            given, bool) and given > latest else latest + 1
        if isinstance(data, Mapping):
            data = {**data, "version": number}
        try:
            parsed = parse_workflow(data, fields)
        except DefinitionError as exc:
            raise problems_failed(exc.problems) from None
        used = {k: fields[k] for k in fields}  # the types validated against, kept with it
        row_id = await store.insert_version(
            ctx, key=parsed.definition.id, version=number, subject=parsed.subject,
            definition=parsed.definition, data=parsed.data, selector=parsed.selector,
            priority=parsed.priority, fields=used)
        await audit.append(ctx, "workflow.save", "approval_workflow", row_id, {
            "key": parsed.definition.id, "version": number, "subject": parsed.subject})
        await emit(ctx, "workflow.saved", {"id": str(row_id), "key": parsed.definition.id,
                                           "version": number, "subject": parsed.subject})
    return {"id": str(row_id), "key": parsed.definition.id, "version": number,
            "subject": parsed.subject}


async def workflows(ctx: Context) -> list[store.Version]:
    """Every version of every workflow (newest first within a key)."""
    require(ctx, "workflow.read")
    async with tenant_scope(ctx, write=False):
        return await store.versions(ctx)


def export_data(v: store.Version) -> dict[str, Any]:
    """A stored version as pack data (what `save_workflow` reads back)."""
    out: dict[str, Any] = {"subject": v.subject}
    if v.selector_data is not None:
        out["when"] = v.selector_data
    if v.priority != 100:
        out["priority"] = v.priority
    return {**out, **v.data}


async def choose(ctx: Context, subject: str, facts: Mapping[str, Any],
                 key: str | None = None) -> store.Version:
    """The active workflow for the subject: `key`'s, or the first by priority whose
    selection condition holds (a workflow without one always applies)."""
    for v in await store.versions(ctx, subject=subject, key=key, active=True):
        try:
            if v.selector is None or c.evaluate(v.selector, facts):
                return v
        except c.BadValue as exc:
            raise problems_failed([problem("bad_fact", exc.zh, exc.en)], "facts") from None
    raise ValidationFailed([FieldError("subject", "approval_no_workflow",
                                       {"subject": subject_label(subject)}, {})])


# --- notifications ------------------------------------------------------------------------

def _who(items: list[Mapping[str, Any]]) -> dict[str, list[str]]:
    users = sorted({i["user"] for i in items if i.get("user")})
    roles = sorted({i["role"] for i in items if i.get("role") and not i.get("user")})
    return {"users": users, "roles": roles}


_NOTE = {
    "step_entered": ("待审批：{t}", "To approve: {t}"),
    "returned": ("已退回，请补充后重新提交：{t}", "Returned for more information: {t}"),
    "transferred": ("转办给你审批：{t}", "Transferred to you to approve: {t}"),
    "reassigned": ("转办给你审批：{t}", "Transferred to you to approve: {t}"),
    "approver_added": ("加签：请审批 {t}", "Added as an approver: {t}"),
    "reminded": ("审批即将超时：{t}", "Approval due soon: {t}"),
    "escalated": ("审批已超时并升级给你：{t}", "Approval overdue, escalated: {t}"),
    "overdue": ("审批已超时：{t}", "Approval overdue: {t}"),
    "approved_end": ("审批通过：{t}", "Approved: {t}"),
    "rejected_end": ("审批被拒绝：{t}", "Rejected: {t}"),
}


def _notify(kind: str, e: Any, inst: Instance, title: Mapping[str, str], link: str
            ) -> dict[str, Any] | None:
    data = e.data
    if kind == "step_entered":
        who = _who(list(data.get("tasks") or []))
    elif kind == "returned":
        who = {"users": [inst.submitted_by], "roles": []}
    elif kind in ("transferred", "reassigned"):
        who = {"users": [data["to"]], "roles": []}
    elif kind == "approver_added":
        who = {"users": [data["user"]], "roles": []}
    elif kind in ("reminded", "escalated", "overdue"):
        who = _who(list(data.get("notify") or []))
    elif kind == "finished":
        kind = f"{data.get('outcome')}_end"
        who = {"users": sorted({inst.submitted_by, inst.created_by}), "roles": []}
    else:
        return None
    if kind not in _NOTE or not (who["users"] or who["roles"]):
        return None
    zh, en = _NOTE[kind]
    return {**who, "title": {"zh-CN": zh.format(t=title.get("zh-CN", "")),
                             "en": en.format(t=title.get("en", ""))}, "link": link}


async def _publish(ctx: Context, row: Mapping[str, Any], inst: Instance,
                   events: tuple[Any, ...]) -> None:
    """The engine's events: stored for the timeline, emitted as `approval.<kind>`."""
    instance_id = row["id"]
    await store.insert_events(ctx, instance_id, row["subject"], row["subject_id"], events)
    for e in events:
        payload: dict[str, Any] = {
            "instance_id": str(instance_id), "subject": row["subject"],
            "subject_id": row["subject_id"], "workflow": row["workflow_key"],
            "version": row["workflow_version"], "step": e.step, "actor": e.actor,
            "task": e.task, "seq": e.seq}
        for key in ("outcome", "to", "user", "action"):
            if key in e.data:
                payload[key] = e.data[key]
        note = _notify(e.kind, e, inst, row["title"], row["link"])
        if note:
            payload["notify"] = note
        await emit(ctx, f"approval.{e.kind}", payload)


async def _decided(ctx: Context, row: Mapping[str, Any], before: Instance, after: Instance,
                   comment: str, by: str) -> None:
    """Tell the subject's owner of a final decision or a return, in this transaction."""
    if after.status == before.status or after.status not in (APPROVED, REJECTED, RETURNED):
        return
    subject = SUBJECTS.get(row["subject"])
    owner_ctx = replace(ctx, access=SYSTEM)  # the owner's code: the engine authorised it
    for fn in subject.callbacks if subject else []:
        await fn(owner_ctx, row["subject_id"], after.status, comment, by)


def _title(title: Mapping[str, str] | str) -> dict[str, str]:
    if isinstance(title, str):
        return {"zh-CN": title[:200], "en": title[:200]}
    zh = str(title.get("zh-CN") or title.get("en") or "")
    return {"zh-CN": zh[:200], "en": str(title.get("en") or zh)[:200]}


def _now() -> datetime:
    return datetime.now(UTC)


def summary(row: Mapping[str, Any], inst: Instance | None = None) -> dict[str, Any]:
    """An instance as the API returns it."""
    state = row["state"] if inst is None else store.instance_data(inst)
    return {"id": str(row["id"]), "subject": row["subject"], "subject_id": row["subject_id"],
            "workflow": row["workflow_key"], "workflow_version": row["workflow_version"],
            "title": row["title"], "link": row["link"], "status": state["status"],
            "step": state["step"], "tasks": state["tasks"], "submitted_by": row["submitted_by"],
            "version": row["version"] + (0 if inst is None else 1)}


# --- start and act ------------------------------------------------------------------------

async def start(ctx: Context, *, subject: str, subject_id: Any, facts: Mapping[str, Any],
                submitted_by: str, title: Mapping[str, str] | str, link: str = "",
                workflow_key: str | None = None, created_by: str | None = None
                ) -> dict[str, Any]:
    """Submit `subject_id` for approval with the workflow that applies to its facts.

    Joins the caller's transaction when there is one (the owner's submit and the approval
    commit together). Refused: no applicable workflow, an approval already in progress,
    facts that cannot be routed (a float, a malformed amount).
    """
    sid = str(subject_id)[:64]
    now = _now()
    title_ = _title(title)
    async with tenant_scope(ctx):
        if await store.open_instance(ctx, subject, sid):
            raise Conflict("approval_running", subject=subject_label(subject, ctx.locale))
        version = await choose(ctx, subject, facts, workflow_key)
        instance_id = uuid.uuid4()
        try:
            outcome = wf.start(version.definition, instance_id=str(instance_id), facts=facts,
                               created_by=created_by or submitted_by, now=now,
                               submitted_by=submitted_by)
        except wf.FactsError as exc:
            raise problems_failed(exc.problems, "facts") from None
        inst = outcome.instance
        await store.insert_instance(ctx, inst, version, subject=subject, subject_id=sid,
                                    title=title_, link=link[:300])
        row = await store.instance_row(ctx, instance_id)
        assert row is not None
        await store.sync_tasks(ctx, row, None, inst, now)
        await audit.append(ctx, "approval.start", "approval", instance_id, {
            "subject": subject, "subject_id": sid, "workflow": version.key,
            "version": version.version, "step": inst.step})
        await _publish(ctx, row, inst, outcome.events)
        if inst.status in (APPROVED, REJECTED):
            before = replace(inst, status=IN_PROGRESS)
            await _decided(ctx, row, before, inst, "", "system")
    return {**summary(row), "version": row["version"]}


def _actor(ctx: Context) -> wf.Actor:
    return wf.Actor(ctx.username or "", frozenset(ctx.roles))


def _run(inst: Instance, ctx: Context, action: str, comment: str, now: datetime,
         args: Mapping[str, Any]) -> wf.Outcome:
    actor, task = _actor(ctx), args.get("task")
    if action == "approve":
        return wf.approve(inst, actor, now, comment, task=task)
    if action == "reject":
        return wf.reject(inst, actor, now, comment, task=task)
    if action == "return":
        return wf.return_for_info(inst, actor, now, comment, task=task)
    if action == "resubmit":
        return wf.resubmit(inst, actor, now, args.get("facts"), comment)
    target = str(args.get("to_user") or args.get("user") or "").strip()
    if not target:
        label = {"zh-CN": "加签人" if action == "add" else "转办给谁",
                 "en": "the approver to add" if action == "add" else "the user to transfer to"}
        raise ValidationFailed([FieldError("to_user", "approval_target_required", {}, label)])
    if action == "reassign":
        if not task:
            raise ValidationFailed([FieldError("task", "approval_target_required", {},
                                               {"zh-CN": "要重新分配的任务",
                                                "en": "the task to reassign"})])
        return wf.reassign(inst, actor.user, str(task), target, now, comment)
    if action == "transfer":
        return wf.transfer(inst, actor, target, now, comment, task=task)
    return wf.add_approver(inst, actor, target, now, comment, task=task)


async def _active_user(ctx: Context, username: str) -> None:
    """A task goes only to someone who can sign in and act on it."""
    from core.tables import User

    async with tenant_scope(ctx, write=False):
        found = await User.exists().where(User.tenant_id == ctx.tenant_id,
                                          User.username == username,
                                          User.active.eq(True)).run()
    if not found:
        raise ValidationFailed([FieldError("to_user", "approval_unknown_user",
                                           {"user": username[:63]}, {})])


async def _refused(ctx: Context, instance_id: Any, action: str, exc: ActionRefused) -> None:
    """A refused attempt is a security event: audited and in the access log."""
    from core.identity import record

    await record(ctx, "approval_refused", None, username=ctx.username, entity="approval",
                 record=str(instance_id), action=action, reason=exc.code, step=exc.step)


async def act(ctx: Context, instance_id: Any, action: str, comment: str = "", *,
              expected_version: int | None = None, **args: Any) -> dict[str, Any]:
    """Approve, reject, return (退回补充), transfer (转办, `to_user`), add an approver
    (加签, `user`) or resubmit (the submitter; optional new `facts`).

    `expected_version` (the version the person saw) refuses a stale form; two actions that
    race on one instance cannot both land (the row's version is checked on write).
    """
    if action not in ACTIONS:
        raise ValidationFailed([FieldError("action", "approval_unknown_action", {
            "action": str(action)[:20], "known": ", ".join(ACTIONS)}, {})])
    if action == "reassign":  # an administrator's move of someone else's task
        require(ctx, "approval.reassign")
    try:
        iid = uuid.UUID(str(instance_id))
    except ValueError:
        raise NotFound() from None
    comment = (comment or "").strip()[:2000]
    now = _now()
    target = str(args.get("to_user") or args.get("user") or "").strip()
    if action in ("transfer", "add", "reassign") and target:
        await _active_user(ctx, target)
    try:
        async with tenant_scope(ctx):
            row = await store.instance_row(ctx, iid)
            if row is None:
                raise NotFound()
            if expected_version is not None and expected_version != row["version"]:
                raise Conflict("approval_changed")
            before, _ = await store.load(ctx, row)
            outcome = _run(before, ctx, action, comment, now, args)
            after = outcome.instance
            if not await store.save_instance(ctx, row, after):
                raise Conflict("approval_changed")
            await store.sync_tasks(ctx, row, before, after, now)
            await audit.append(ctx, f"approval.{action}", "approval", iid, {
                "step": before.step, "status": [before.status, after.status],
                "comment": comment[:500],
                **({"to": args.get("to_user") or args.get("user")}
                   if action in ("transfer", "add", "reassign") else {}),
                **({"task": args.get("task")} if action == "reassign" else {})})
            await _publish(ctx, row, after, outcome.events)
            await _decided(ctx, row, before, after, comment, ctx.username or "")
    except ActionRefused as exc:
        await _refused(ctx, iid, action, exc)
        raise ApprovalRefused(exc) from None
    return summary(row, after)


async def bulk(ctx: Context, instance_ids: list[str], action: str, comment: str
               ) -> list[dict[str, Any]]:
    """One comment, many instances: each is acted on (and checked) on its own; returns
    one result per item, so one refusal does not stop the others."""
    if action not in ("approve", "reject"):
        raise ValidationFailed([FieldError("action", "approval_unknown_action", {
            "action": str(action)[:20], "known": "approve, reject"}, {})])
    results = []
    for iid in dict.fromkeys(instance_ids):
        try:
            done = await act(ctx, iid, action, comment)
            results.append({"id": iid, "ok": True, "status": done["status"],
                            "title": done["title"], "message": ""})
        except XindaiError as exc:
            results.append({"id": iid, "ok": False, "status": None, "title": None,
                            "message": exc.message(ctx.locale), "code": exc.code})
    return results


# --- reading --------------------------------------------------------------------------

def involved(ctx: Context, row: Mapping[str, Any], tasks: list[Mapping[str, Any]]) -> bool:
    """Whether ctx may see this approval: its submitter, a holder of one of its tasks, or
    someone with workflow.read."""
    if allows(ctx, "workflow.read") or ctx.username in (row["submitted_by"],
                                                        row["state"].get("created_by")):
        return True
    mine = set(store.holders_of(ctx))
    return any(t["assignee"] in mine or t["acted_by"] == ctx.username for t in tasks)


async def detail(ctx: Context, instance_id: Any) -> dict[str, Any]:
    """An instance for its page: state, definition, task rows, what ctx may do now."""
    try:
        iid = uuid.UUID(str(instance_id))
    except ValueError:
        raise NotFound() from None
    async with tenant_scope(ctx, write=False):
        row = await store.instance_row(ctx, iid)
        if row is None:
            raise NotFound()
        inst, version = await store.load(ctx, row)
        tasks = await store.tasks_of(ctx, iid)
        if not involved(ctx, row, tasks):
            raise NotFound()
        items = await timeline(ctx, row["subject"], row["subject_id"])
    eligible = wf.eligible_tasks(inst, _actor(ctx))
    can_resubmit = inst.status == RETURNED and ctx.username in (inst.created_by,
                                                                 inst.submitted_by)
    return {"row": row, "instance": inst, "version": version, "tasks": tasks,
            "eligible": eligible, "can_resubmit": can_resubmit, "timeline": items}


_LABELS = {
    "started": ("提交审批", "Submitted for approval"), "approved": ("同意", "Approved"),
    "rejected": ("拒绝", "Rejected"), "returned": ("退回补充", "Returned for more information"),
    "transferred": ("转办", "Transferred"), "approver_added": ("加签", "Approver added"),
    "reassigned": ("管理员转办", "Reassigned"), "resubmitted": ("重新提交", "Resubmitted"),
    "step_entered": ("进入步骤", "Step started"), "rerouted": ("按新信息重新路由", "Rerouted"),
    "reminded": ("超时提醒", "Reminder sent"), "escalated": ("超时升级", "Escalated"),
    "overdue": ("已超时", "Overdue"), "finished": ("审批结束", "Approval finished"),
}
TIMELINE_KINDS = frozenset(_LABELS) - {"step_completed"}


async def timeline(ctx: Context, subject: str, subject_id: Any) -> list[dict[str, Any]]:
    """Every event of the subject's approvals, oldest first, each decision with its comment
    (for the subject's page: `{% include "origination/approvals/_timeline.html" %}` with
    `items`). The caller checks that ctx may see the subject."""
    sid = str(subject_id)
    async with tenant_scope(ctx, write=False):
        rows = await store.events_of(ctx, subject, sid)
        names: dict[str, dict[str, str]] = {}
        for inst_row in await store.instances_of(ctx, subject, sid):
            version = await store.version_by_id(ctx, inst_row["workflow_id"])
            for s in version.definition.steps:
                names[f"{inst_row['id']}:{s.id}"] = {"zh-CN": s.name_zh, "en": s.name_en}
    out = []
    for r in rows:
        if r["kind"] not in TIMELINE_KINDS:
            continue
        data = r["data"] or {}
        zh, en = _LABELS[r["kind"]]
        if r["kind"] == "finished":
            zh, en = {"approved": ("审批通过", "Approval granted"),
                      "rejected": ("审批拒绝", "Approval refused")}.get(data.get("outcome"), (zh, en))
        out.append({"at": r["at"], "kind": r["kind"], "actor": r["actor"], "step": r["step"],
                    "step_name": names.get(f"{r['instance_id']}:{r['step']}",
                                           {"zh-CN": r["step"] or "", "en": r["step"] or ""}),
                    "label": {"zh-CN": zh, "en": en}, "comment": data.get("comment") or "",
                    "to": data.get("to") or data.get("user"), "instance_id":
                        str(r["instance_id"]), "outcome": data.get("outcome")})
    people = await user_names(ctx, usernames=[i["actor"] for i in out] + [i["to"] for i in out])
    for i in out:
        i["actor_name"] = people.get(i["actor"] or "", i["actor"] or "")
        i["to_name"] = people.get(i["to"] or "", i["to"] or "")
    return out


# --- inbox -------------------------------------------------------------------------------

@dataclass
class InboxFilter:
    subject: str = ""
    amount_min: int | None = None  # 分
    amount_max: int | None = None
    product: str = ""
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    overdue: bool = False

    def keeps(self, r: Mapping[str, Any], now: datetime) -> bool:
        amount = r["amount"]
        return not (
            (self.subject and r["subject"] != self.subject)
            or (self.product and (r["product"] or "") != self.product)
            or (self.amount_min is not None and (amount is None or amount < self.amount_min))
            or (self.amount_max is not None and (amount is None or amount > self.amount_max))
            or (self.submitted_from and r["submitted_at"] < self.submitted_from)
            or (self.submitted_to and r["submitted_at"] >= self.submitted_to)
            or (self.overdue and not (r["due_at"] and r["due_at"] <= now)))


async def inbox(ctx: Context, flt: InboxFilter | None = None, now: datetime | None = None
                ) -> dict[str, Any]:
    """The open approvals ctx may act on now: one row per instance, oldest first, with the
    counts (pending, due soon, overdue) of the whole inbox and the filtered items."""
    now = now or _now()
    flt = flt or InboxFilter()
    async with tenant_scope(ctx, write=False):
        rows = await store.pending_for(ctx, INBOX_MAX)
        me = ctx.username
        rows = [r for r in rows if r["kind"] == "resubmit"
                or me not in (r["submitted_by"], r["created_by"])]
        mine = await store.acted_by(ctx, me or "", list({r["instance_id"] for r in rows}))
    acted = {(m["instance_id"], m["entry"]) for m in mine if m["status"] != "resubmitted"}
    approved = {m["instance_id"] for m in mine if m["status"] == "approved"}
    items: dict[Any, dict[str, Any]] = {}
    for r in rows:
        if r["kind"] != "resubmit" and ((r["instance_id"], r["entry"]) in acted or (
                r["distinct_approvers"] and r["instance_id"] in approved)):
            continue
        items.setdefault(r["instance_id"], r)
    everything = list(items.values())
    counts = {"pending": len(everything),
              "due_soon": sum(1 for r in everything if r["due_at"]
                              and now < r["due_at"] <= now + DUE_SOON),
              "overdue": sum(1 for r in everything if r["due_at"] and r["due_at"] <= now)}
    shown = [r for r in everything if flt.keeps(r, now)]
    shown.sort(key=lambda r: (r["due_at"] is None, r["due_at"] or r["submitted_at"],
                              r["submitted_at"]))
    return {"items": shown, "counts": counts, "products": sorted(
        {r["product"] for r in everything if r["product"]}),
        "subjects": sorted({r["subject"] for r in everything})}


async def done_by(ctx: Context, limit: int = 200) -> list[dict[str, Any]]:
    """What ctx decided, transferred or resubmitted, newest first (one row per task)."""
    async with tenant_scope(ctx, write=False):
        rows = await store.acted_by(ctx, ctx.username or "", None, limit * 2)
    seen: set[tuple[Any, int, str]] = set()
    out = []
    for r in rows:
        key = (r["instance_id"], r["entry"], r["task"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out[:limit]


async def count_pending(ctx: Context) -> int:
    return (await inbox(ctx))["counts"]["pending"]


# --- deadlines ---------------------------------------------------------------------------

async def run_deadlines(ctx: Context, now: datetime | str | None = None) -> dict[str, int]:
    """Send the due reminders and escalations (the periodic job). Idempotent: the state
    remembers what was done for the current step, so a second run sends nothing."""
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    now = now or _now()
    done = {"instances": 0, "reminded": 0, "escalated": 0, "overdue": 0}
    async with tenant_scope(ctx):
        for row in await store.due_rows(ctx, now, DEADLINE_BATCH):
            before, _ = await store.load(ctx, row)
            outcome = wf.apply_due(before, now)
            if not outcome.events:
                continue
            after = outcome.instance
            if not await store.save_instance(ctx, row, after):
                continue  # someone acted meanwhile: the next run looks again
            await store.sync_tasks(ctx, row, before, after, now)
            await _publish(ctx, row, after, outcome.events)
            done["instances"] += 1
            for e in outcome.events:
                if e.kind in done:
                    done[e.kind] += 1
        if done["instances"]:
            await audit.append(ctx, "approval.deadlines", "approval", None, done)
    return done


async def deadlines_job(ctx: Context, now: str | None = None) -> dict[str, int]:
    return await run_deadlines(ctx, now)
