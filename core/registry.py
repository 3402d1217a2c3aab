"""The registry: entity types declared by plugins plus each tenant's custom fields.

Forms, validation, the generic API, masking, encryption, packs and (later) list views,
imports and reports are all driven from here: declare a field once and every layer knows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from core.fields import FieldDef

if TYPE_CHECKING:
    from core.errors import FieldError

EntityCheck = Callable[[dict[str, Any]], "list[FieldError]"]


@dataclass(frozen=True)
class EntityType:
    """A kind of business record (customer, lead, loan ...) and its fields."""

    name: str
    table: type[Table]
    label_zh: str
    label_en: str
    fields: tuple[FieldDef, ...]
    api_path: str = ""  # URL segment under /api/v1, e.g. "customers"
    title_field: str = "name"
    checks: tuple[EntityCheck, ...] = ()  # cross-field rules on the merged record
    plugin: str = ""
    default_sort: str = "-created_at"
    # Idempotency-Key on the API create route: False (not used), "optional" (used when the
    # client sends one) or True (required: entities that move money or are financial records)
    idempotent: bool | str = False
    # False: the generic create/update/delete routes (API and UI) are not mounted, because
    # the owning plugin's service must check more than the registry can (an application
    # against its product's ranges, a blacklist): the service still writes via core.records.
    generic_writes: bool = True
    # async (ctx, data, owner) -> (owner, system columns): called by core.records.create
    # before its write transaction opens (after the permission check), for a plugin's rules
    # on capture: it may refuse (recording the refusal in its own transaction), choose the
    # owner, and set readonly columns of the new row (e.g. crm's blacklist, duplicates and
    # assignment rules for leads)
    before_create: Callable[..., Awaitable[tuple[dict[str, Any] | None, dict[str, Any]]]] \
        | None = None
    # async (ctx) -> placer: what before_create decides, for a bulk import (core.records_bulk):
    # made once per import, `placer.place(values) -> (owner, system columns)` per row with
    # no query (e.g. crm's assignment rules from rules loaded once), then
    # `await placer.finish(ctx)` in the import's transaction (e.g. round-robin cursors)
    bulk_placer: Callable[..., Awaitable[Any]] | None = None

    def label(self, locale: str | None = None) -> str:
        return self.label_en if locale == "en" else self.label_zh

    def field(self, key: str) -> FieldDef | None:
        for f in self.fields:
            if f.key == key:
                return f
        return None

    def with_custom(self, custom: list[FieldDef]) -> EntityType:
        """This entity as one tenant sees it: built-in fields followed by its custom fields."""
        return replace(self, fields=self.fields + tuple(sorted(custom, key=lambda f: f.position)))


@dataclass
class Registry:
    """All entity types of the loaded plugins, by name."""

    entities: dict[str, EntityType] = field(default_factory=dict)

    def add(self, entity: EntityType) -> None:
        if entity.name in self.entities:
            raise ValueError(f"entity {entity.name!r} declared twice")
        keys = [f.key for f in entity.fields]
        if len(keys) != len(set(keys)):
            raise ValueError(f"entity {entity.name!r} declares a field twice")
        self.entities[entity.name] = replace(entity, api_path=entity.api_path or entity.name + "s")

    def get(self, name: str) -> EntityType | None:
        return self.entities.get(name)

    def by_path(self, api_path: str) -> EntityType | None:
        for entity in self.entities.values():
            if entity.api_path == api_path:
                return entity
        return None

    def tables(self) -> list[type[Table]]:
        return [e.table for e in self.entities.values()]
