"""Refusals of the workflow engine, each a zh-CN / en pair that names its step and field.

The engine is pure and does not depend on the kernel's message catalogue: a workflow
editor shows the problems of a definition next to the input they concern (`step`,
`field`), and an inbox shows why an action was refused, in either language. Codes are
stable so tests and the web layer can match on them instead of on prose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located by `step` (a step id) and `field` (a path inside it)."""

    code: str
    zh: str
    en: str
    step: str | None = None
    field: str | None = None

    def message(self, locale: str = "zh-CN") -> str:
        return self.en if locale.lower().startswith("en") else self.zh

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "step": self.step, "field": self.field,
                "message_zh": self.zh, "message_en": self.en}


def problem(code: str, zh: str, en: str, *, step: str | None = None,
            field: str | None = None) -> Problem:
    """A problem whose messages start with where it is, so they read well on their own."""
    where_zh = where_en = ""
    if step and field:
        where_zh, where_en = f"步骤“{step}”的 {field}：", f"step '{step}', {field}: "
    elif step:
        where_zh, where_en = f"步骤“{step}”：", f"step '{step}': "
    elif field:
        where_zh, where_en = f"{field}：", f"{field}: "
    return Problem(code, where_zh + zh, where_en + en, step, field)


class WorkflowError(Exception):
    """Base of the engine's refusals; `problems` holds one or more `Problem`s."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("a WorkflowError needs at least one problem")
        first = self.problems[0]
        self.code, self.step, self.field = first.code, first.step, first.field
        self.zh = "；".join(p.zh for p in self.problems)
        self.en = "; ".join(p.en for p in self.problems)
        super().__init__(f"{self.zh} / {self.en}")

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]


class DefinitionError(WorkflowError, ValueError):
    """A workflow definition was refused; every problem found is listed, not just the first."""


class ActionRefused(WorkflowError):
    """An action on an instance was refused; the instance is unchanged."""

    def __init__(self, code: str, zh: str, en: str, *, step: str | None = None,
                 field: str | None = None) -> None:
        super().__init__([problem(code, zh, en, step=step, field=field)])


class FactsError(ActionRefused):
    """An application's facts cannot be routed (a float, a malformed number or date...)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        WorkflowError.__init__(self, problems)
