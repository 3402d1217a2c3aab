"""Workflow definitions: parsed from JSON/YAML-able data and validated as a whole.

A definition is what business staff edit, so `parse_definition` reports every problem at
once, each naming its step and the path of the input (`next[1].when.value`), in zh-CN and
en. What it refuses is exactly what would make an application stall or take a path nobody
designed: a route to a step that does not exist, a step no route reaches, a cycle, a
condition on a field the application does not have, a step nobody can act on, a step
whose routes can all be false.

The parsed `Definition` is immutable; an instance keeps the one it started with, so editing
a workflow (a new version) never changes the path of an application already in flight.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plugins.origination import conditions as c
from plugins.origination.errors import DefinitionError, Problem, problem

TERMINALS = {"approved": ("通过", "Approved"), "rejected": ("拒绝", "Rejected")}
MODES = {"any": ("或签", "any of"), "all": ("会签", "countersign")}
MAX_HOURS = 24 * 366
_ID = re.compile(r"[a-z][a-z0-9_]{0,62}")
_DEF_KEYS = ("id", "version", "name", "description", "distinct_approvers", "start", "steps")
_STEP_KEYS = ("id", "name", "description", "mode", "assignees", "next", "deadline_hours",
              "remind_before_hours", "escalate_to")


@dataclass(frozen=True)
class Assignee:
    """One slot of a step: any holder of `role`, or the named `user`."""

    role: str | None = None
    user: str | None = None

    def matches(self, user: str, roles: frozenset[str]) -> bool:
        return user == self.user if self.user is not None else self.role in roles

    def as_data(self) -> dict[str, str]:
        return {"user": self.user} if self.user is not None else {"role": str(self.role)}

    def label(self, locale: str = "zh-CN") -> str:
        en = locale.lower().startswith("en")
        if self.user is not None:
            return f"user {self.user}" if en else f"用户 {self.user}"
        return f"role {self.role}" if en else f"角色 {self.role}"


@dataclass(frozen=True)
class Route:
    """Go to `to` (a step id, `approved` or `rejected`) when `when` holds (None: always)."""

    to: str
    when: c.Condition | None = None


@dataclass(frozen=True)
class Step:
    id: str
    name_zh: str
    name_en: str
    mode: str  # "any" (或签: one approval suffices) or "all" (会签: every slot approves)
    assignees: tuple[Assignee, ...]
    next: tuple[Route, ...]
    deadline_hours: int | None = None
    remind_before_hours: int | None = None
    escalate_to: Assignee | None = None

    def name(self, locale: str = "zh-CN") -> str:
        return self.name_en if locale.lower().startswith("en") else self.name_zh


@dataclass(frozen=True)
class Definition:
    id: str
    version: int
    name_zh: str
    name_en: str
    start: tuple[Route, ...]
    steps: tuple[Step, ...]
    fields: tuple[tuple[str, str], ...]  # (field, type) of every field a condition uses
    # Nobody approves two different steps of one application (the point of serial steps:
    # two pairs of eyes). On by default; a lender with very few staff may turn it off.
    distinct_approvers: bool = True

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def name(self, locale: str = "zh-CN") -> str:
        return self.name_en if locale.lower().startswith("en") else self.name_zh


def route(routes: Sequence[Route], facts: Mapping[str, Any]) -> str:
    """The target of the first route whose condition holds (validation ensures one does)."""
    for r in routes:
        if r.when is None or c.evaluate(r.when, facts):
            return r.to
    raise AssertionError("a validated definition always ends its routes with a default")


class _Parser:
    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = fields
        self.problems: list[Problem] = []

    def bad(self, code: str, zh: str, en: str, *, step: str | None = None,
            field: str | None = None) -> None:
        self.problems.append(problem(code, zh, en, step=step, field=field))

    def keys(self, data: Mapping[str, Any], known: Sequence[str], step: str | None,
             prefix: str = "") -> None:
        for key in data:
            if key not in known:
                self.bad("unknown_key", f"未知的键“{key}”（可用：{'、'.join(known)}）",
                         f"unknown key '{key}' (known: {', '.join(known)})",
                         step=step, field=f"{prefix}{key}")

    def name(self, data: Any, fallback: str, step: str | None) -> tuple[str, str]:
        if data is None:
            return fallback, fallback
        if isinstance(data, str) and data.strip():
            return data, data
        if (isinstance(data, Mapping) and set(data) <= {"zh-CN", "en"} and data
                and all(isinstance(v, str) and v.strip() for v in data.values())):
            zh = data.get("zh-CN") or data["en"]
            return zh, data.get("en") or zh
        self.bad("bad_name", "名称应为文本，或 {zh-CN: …, en: …}",
                 "the name must be text or {zh-CN: ..., en: ...}", step=step, field="name")
        return fallback, fallback

    def routes(self, data: Any, step: str | None, where: str) -> tuple[Route, ...]:
        if isinstance(data, str):
            data = [{"to": data}]
        if not isinstance(data, Sequence) or isinstance(data, str) or not data:
            self.bad("bad_routes", "应为一个步骤 id，或非空的路由列表 [{when, to}, …]",
                     "must be a step id or a non-empty list of routes [{when, to}, ...]",
                     step=step, field=where)
            return ()
        out: list[Route] = []
        conditional: list[bool] = []
        for j, item in enumerate(data):
            path = f"{where}[{j}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("to"), str):
                self.bad("bad_routes", "路由应为 {when: 条件, to: 步骤 id}，to 必填",
                         "a route must be {when: condition, to: step id}; to is required",
                         step=step, field=path)
                continue
            self.keys(item, ("when", "to"), step, f"{path}.")
            when = None
            if "when" in item:
                when, problems = c.parse_condition(item["when"], self.fields,
                                                   path=f"{path}.when", step=step)
                self.problems.extend(problems)
            if conditional and not conditional[-1]:
                self.bad("route_after_default", "此路由在无条件路由之后，永远不会被使用",
                         "this route comes after an unconditional route and can never be "
                         "taken", step=step, field=path)
            out.append(Route(item["to"], when))
            conditional.append("when" in item)
        if conditional and conditional[-1]:
            self.bad("no_default_route",
                     "最后一条路由须不带条件（兜底），否则条件都不满足时申请将无处可去",
                     "the last route must have no condition (the default); otherwise an "
                     "application that matches none would have nowhere to go",
                     step=step, field=where)
        return tuple(out)

    def hours(self, data: Mapping[str, Any], key: str, step: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOURS:
            self.bad("bad_deadline", f"应为 1 到 {MAX_HOURS} 之间的整数小时数",
                     f"must be a whole number of hours from 1 to {MAX_HOURS}",
                     step=step, field=key)
            return None
        return value

    def assignee(self, data: Any, step: str, where: str) -> Assignee | None:
        if (isinstance(data, Mapping) and len(data) == 1 and set(data) <= {"role", "user"}
                and isinstance(next(iter(data.values())), str)
                and next(iter(data.values())).strip()):
            return Assignee(role=data.get("role"), user=data.get("user"))
        self.bad("bad_assignee", "应为 {role: 角色} 或 {user: 用户名}",
                 "must be {role: a role} or {user: a username}", step=step, field=where)
        return None

    def assignees(self, data: Any, step: str, mode: str) -> tuple[Assignee, ...]:
        out: list[Assignee] = []
        if data is not None and not isinstance(data, Mapping):
            self.bad("bad_assignee", "应为 {roles: [...], users: [...]}",
                     "must be {roles: [...], users: [...]}", step=step, field="assignees")
            return ()
        data = data or {}
        self.keys(data, ("roles", "users"), step, "assignees.")
        for key, kind in (("roles", "role"), ("users", "user")):
            items = data.get(key) or []
            if isinstance(items, str) or not isinstance(items, Sequence) or not all(
                    isinstance(i, str) and i.strip() for i in items):
                self.bad("bad_assignee", "应为非空文本的列表", "must be a list of non-empty texts",
                         step=step, field=f"assignees.{key}")
                continue
            for name in items:
                a = Assignee(**{kind: name})
                if a in out:
                    self.bad("duplicate_assignee", f"重复的审批人“{name}”",
                             f"the approver '{name}' is listed twice", step=step,
                             field=f"assignees.{key}")
                else:
                    out.append(a)
        if not out and mode == "all":
            self.bad("countersign_no_assignees", "会签步骤没有审批人：须列出至少一个角色或用户",
                     "a countersign step has no approvers: list at least one role or user",
                     step=step, field="assignees")
        elif not out:
            self.bad("no_assignees", "审批人为空：须列出至少一个角色或用户",
                     "no approvers: list at least one role or user", step=step,
                     field="assignees")
        return tuple(out)

    def step(self, data: Any, index: int, seen: set[str]) -> Step | None:
        if not isinstance(data, Mapping):
            self.bad("bad_step", "步骤应为一个对象", "a step must be an object",
                     field=f"steps[{index}]")
            return None
        sid = data.get("id")
        if not isinstance(sid, str) or not _ID.fullmatch(sid) or sid in TERMINALS:
            self.bad("bad_step_id", f"步骤 id“{sid}”无效：须为小写字母开头的字母、数字、下划线，"
                     "且不能是 approved 或 rejected",
                     f"the step id '{sid}' is invalid: lowercase letters, digits and "
                     "underscores starting with a letter, and not approved or rejected",
                     field=f"steps[{index}].id")
            return None
        if sid in seen:
            self.bad("duplicate_step", f"步骤 id“{sid}”重复", f"the step id '{sid}' is used twice",
                     step=sid, field="id")
            return None
        seen.add(sid)
        self.keys(data, _STEP_KEYS, sid)
        mode = data.get("mode", "any")
        if mode not in MODES:
            self.bad("bad_mode", f"未知的审批方式“{mode}”（any 或签 / all 会签）",
                     f"unknown mode '{mode}' (any or all)", step=sid, field="mode")
            mode = "any"
        deadline = self.hours(data, "deadline_hours", sid)
        remind = self.hours(data, "remind_before_hours", sid)
        escalate = None
        if data.get("escalate_to") is not None:
            escalate = self.assignee(data["escalate_to"], sid, "escalate_to")
        if (remind is not None or escalate is not None) and data.get("deadline_hours") is None:
            self.bad("bad_deadline", "设置提醒或升级时须同时设置 deadline_hours",
                     "a reminder or escalation needs deadline_hours", step=sid,
                     field="deadline_hours")
        if remind is not None and deadline is not None and remind >= deadline:
            self.bad("bad_deadline", f"提前提醒的小时数（{remind}）须小于时限（{deadline}）",
                     f"the reminder ({remind} h before) must be less than the deadline "
                     f"({deadline} h)", step=sid, field="remind_before_hours")
        zh, en = self.name(data.get("name"), sid, sid)
        return Step(sid, zh, en, mode, self.assignees(data.get("assignees"), sid, mode),
                    self.routes(data.get("next", "approved"), sid, "next"), deadline,
                    remind, escalate)

    def graph(self, start: tuple[Route, ...], steps: list[Step]) -> None:
        ids = {s.id for s in steps}
        for where, step, routes in [("start", None, start),
                                    *[("next", s.id, s.next) for s in steps]]:
            for j, r in enumerate(routes):
                if r.to not in ids and r.to not in TERMINALS:
                    self.bad("unknown_step", f"路由指向不存在的步骤“{r.to}”",
                             f"the route goes to an unknown step '{r.to}'", step=step,
                             field=f"{where}[{j}].to")
        edges = {s.id: [r.to for r in s.next if r.to in ids] for s in steps}
        reached: set[str] = set()
        todo = [r.to for r in start if r.to in ids]
        while todo:
            sid = todo.pop()
            if sid not in reached:
                reached.add(sid)
                todo.extend(edges[sid])
        for s in steps:
            if s.id not in reached:
                self.bad("unreachable_step", "没有任何路由指向此步骤（从开始无法到达）",
                         "no route leads to this step (unreachable from the start)",
                         step=s.id)
        cycle = _find_cycle(edges)
        if cycle:
            shown = " → ".join(cycle)
            self.bad("cycle", f"路由形成循环：{shown}（退回补充用“退回”操作，不用路由）",
                     f"the routes form a cycle: {shown} (use the return action to send an "
                     "application back, not a route)", step=cycle[0], field="next")


def _find_cycle(edges: Mapping[str, list[str]]) -> list[str]:
    """One cycle as a path that returns to its first step, or [] if the graph is acyclic."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def parse_definition(data: Any, fields: Mapping[str, str] | None = None) -> Definition:
    """Parse and validate a definition, or raise `DefinitionError` listing every problem.

    `fields` maps each field an application has to its type (the kernel's field types:
    money, integer, text, single_select, region, date...); conditions may use only these.
    """
    fields = c.APPLICATION_FIELDS if fields is None else fields
    p = _Parser(fields)
    if not isinstance(data, Mapping):
        raise DefinitionError([problem("bad_definition", "工作流定义应为一个对象",
                                       "a workflow definition must be an object")])
    p.keys(data, _DEF_KEYS, None)
    wid, version = data.get("id"), data.get("version")
    if not isinstance(wid, str) or not _ID.fullmatch(wid):
        p.bad("bad_id", f"工作流 id“{wid}”无效：须为小写字母开头的字母、数字、下划线",
              f"the workflow id '{wid}' is invalid: lowercase letters, digits and "
              "underscores starting with a letter", field="id")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        p.bad("bad_version", f"版本号“{version}”无效：须为正整数",
              f"the version '{version}' is invalid: it must be a positive whole number",
              field="version")
    distinct = data.get("distinct_approvers", True)
    if not isinstance(distinct, bool):
        p.bad("bad_option", "distinct_approvers 须为 true 或 false",
              "distinct_approvers must be true or false", field="distinct_approvers")
    raw_steps = data.get("steps")
    if isinstance(raw_steps, str) or not isinstance(raw_steps, Sequence) or not raw_steps:
        p.bad("no_steps", "须至少有一个步骤", "there must be at least one step", field="steps")
        raw_steps = []
    seen: set[str] = set()
    steps = [s for i, d in enumerate(raw_steps) if (s := p.step(d, i, seen)) is not None]
    first = steps[0].id if steps else "approved"
    start = p.routes(data.get("start", first), None, "start")
    if start and len(steps) == len(raw_steps):  # a refused step or start would add noise
        p.graph(start, steps)
    if p.problems:
        raise DefinitionError(p.problems)
    used: dict[str, str] = {}
    for r in (*start, *(r for s in steps for r in s.next)):
        for leaf in c.leaves(r.when) if r.when is not None else []:
            used[leaf.field] = leaf.type
    zh, en = p.name(data.get("name"), str(wid), None)
    return Definition(str(wid), int(version), zh, en, start, tuple(steps),
                      tuple(sorted(used.items())), distinct)


def _routes_data(routes: tuple[Route, ...]) -> list[dict[str, Any]]:
    return [{"to": r.to} if r.when is None else {"when": c.to_data(r.when), "to": r.to}
            for r in routes]


def to_data(d: Definition) -> dict[str, Any]:
    """The JSON-able form of a definition; `parse_definition` reads it back to an equal one."""
    steps = []
    for s in d.steps:
        item: dict[str, Any] = {"id": s.id, "name": {"zh-CN": s.name_zh, "en": s.name_en},
                                "mode": s.mode}
        roles = [a.role for a in s.assignees if a.user is None]
        users = [a.user for a in s.assignees if a.user is not None]
        item["assignees"] = {k: v for k, v in (("roles", roles), ("users", users)) if v}
        item["next"] = _routes_data(s.next)
        for key in ("deadline_hours", "remind_before_hours"):
            if getattr(s, key) is not None:
                item[key] = getattr(s, key)
        if s.escalate_to is not None:
            item["escalate_to"] = s.escalate_to.as_data()
        steps.append(item)
    return {"id": d.id, "version": d.version, "name": {"zh-CN": d.name_zh, "en": d.name_en},
            "distinct_approvers": d.distinct_approvers, "start": _routes_data(d.start),
            "steps": steps}
