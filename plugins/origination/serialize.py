"""Instances and events as JSON-able data, for storage and for the API.

The definition is stored once per version elsewhere, so an instance's data names it by id
and version; loading checks that the caller passes that very version, because routing an
in-flight application with another version is exactly what versioning forbids.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any

from plugins.origination.definition import Definition
from plugins.origination.instance import Decision, Event, Instance, Task, task_data


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, MappingProxyType | dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def event_data(e: Event) -> dict[str, Any]:
    return {"seq": e.seq, "kind": e.kind, "at": e.at.isoformat(), "actor": e.actor,
            "step": e.step, "task": e.task, "data": _jsonable(e.data)}


def instance_data(inst: Instance) -> dict[str, Any]:
    return {
        "id": inst.id,
        "definition": {"id": inst.definition.id, "version": inst.definition.version},
        "facts": _jsonable(inst.facts), "created_by": inst.created_by,
        "submitted_by": inst.submitted_by, "status": inst.status, "step": inst.step,
        "entry": inst.entry, "tasks": [task_data(t) for t in inst.tasks],
        "path": list(inst.path), "entered_at": _time(inst.entered_at),
        "reminded": inst.reminded, "escalated": inst.escalated,
        "decisions": [{"step": d.step, "entry": d.entry, "task": d.task, "user": d.user,
                       "action": d.action, "at": d.at.isoformat(), "comment": d.comment}
                      for d in inst.decisions],
        "seq": inst.seq, "updated_at": inst.updated_at.isoformat(),
    }


def load_instance(data: dict[str, Any], definition: Definition) -> Instance:
    """Rebuild an instance from `instance_data`, with the definition version it started on."""
    named = data["definition"]
    if (named["id"], named["version"]) != (definition.id, definition.version):
        raise ValueError(f"the instance {data['id']} runs {named['id']} version "
                         f"{named['version']}, not {definition.id} version {definition.version}")
    decisions = tuple(Decision(d["step"], d["entry"], d["task"], d["user"], d["action"],
                               datetime.fromisoformat(d["at"]), d["comment"])
                      for d in data["decisions"])
    updated_at = _parse_time(data["updated_at"])
    assert updated_at is not None
    return Instance(data["id"], definition, MappingProxyType(dict(data["facts"])),
                    data["created_by"], data["submitted_by"], data["status"], data["step"],
                    data["entry"], tuple(Task(**t) for t in data["tasks"]),
                    tuple(data["path"]), _parse_time(data["entered_at"]), data["reminded"],
                    data["escalated"], decisions, data["seq"], updated_at)
